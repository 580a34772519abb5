// The WireGuard transport data path (whitepaper 5.4.6): keypairs by receiver index, encryption and
// decryption of transport messages with libsodium's ChaCha20-Poly1305 (IETF, 96-bit nonce = 32 zero
// bits || 64-bit little-endian counter), the replay window, cryptokey routing and per-peer counters.
// The keys come from the handshake core in TypeScript (setKeypairs); this file never negotiates.
//
// Threading: every public method takes the one mutex; the JS thread (setKeypairs, stats) and a device
// thread (decrypt/encrypt batches) may call concurrently.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tunnel/allowed_ips.h"
#include "tunnel/replay_window.h"

namespace gwc::tunnel {

constexpr size_t kKeySize = 32;
constexpr size_t kTagSize = 16;
constexpr size_t kHeaderSize = 16;
constexpr uint8_t kTransportType = 4;
/** No keypair encrypts or accepts a counter at or beyond this (2^64 - 2^13 - 1). */
constexpr uint64_t kRejectAfterMessages = UINT64_MAX - (1ull << 13);

/** Outcome of one datagram (the order is the TypeScript DECRYPT_STATUS list). */
enum class DecryptStatus : uint8_t {
  Data = 0,             // an inner IP packet, in the output
  Keepalive = 1,        // empty plaintext
  Malformed = 2,        // not a transport message (size, type, reserved bytes)
  UnknownIndex = 3,     // no keypair with this receiver index
  CounterLimit = 4,     // counter at or beyond REJECT_AFTER_MESSAGES
  Replayed = 5,         // seen already, or older than the window
  AuthFailed = 6,       // the tag does not verify
  BadInnerPacket = 7,   // the plaintext is not an IPv4/IPv6 packet of a consistent length
  SourceNotAllowed = 8, // the inner source is outside the peer's allowed IPs
};
constexpr size_t kDecryptStatusCount = 9;

enum class EncryptStatus : uint8_t {
  Sent = 0,
  NoPeer = 1,       // the inner destination is in no peer's allowed IPs
  NoKeypair = 2,    // the peer has no keypair that may send (the core must handshake)
  NoEndpoint = 3,   // the peer has never been heard from and has no configured endpoint
  BadPacket = 4,    // not an IPv4/IPv6 packet
  SendLimit = 5,    // the peer's keypairs reached their send limit (the counter lease, docs/tunnels.md)
  Forward = 6,      // another member owns the tunnel: the plain packet goes to it (out, *to = the owner)
};
constexpr size_t kEncryptStatusCount = 7;

struct KeypairSpec {
  uint32_t localIndex = 0;
  uint32_t remoteIndex = 0;
  std::array<uint8_t, kKeySize> sendKey{};
  std::array<uint8_t, kKeySize> receiveKey{};
  bool canSend = false;
  /** No counter at or beyond this is used to send (the replicated reservation; kRejectAfterMessages: none). */
  uint64_t sendLimit = UINT64_MAX - (1ull << 13);
  /** A replica's state (takeover): the send counter moves up to seedSendCounter, and every receive
   *  counter below seedReceiveNext counts as seen. Never moves either back. */
  bool hasSeed = false;
  uint64_t seedSendCounter = 0;
  uint64_t seedReceiveNext = 0;
};

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

struct PeerCounters {
  uint64_t rxPackets = 0, rxBytes = 0, txPackets = 0, txBytes = 0;
};

/** What happened on one keypair since the last drain (the core's transport-activity event). */
struct KeypairActivity {
  uint32_t localIndex = 0;
  uint32_t peer = 0;
  uint64_t received = 0, receivedData = 0, sent = 0, sentData = 0;
  uint64_t sendCounter = 0;
  /** The counter after the greatest accepted (0: none accepted). */
  uint64_t receiveNext = 0;
  bool hasFrom = false;
  Endpoint from;
};

struct DecryptResult {
  DecryptStatus status = DecryptStatus::Malformed;
  uint32_t peer = 0;
  /** Bytes of the inner packet written to the output (0 unless Data). */
  size_t length = 0;
};

class Transport {
 public:
  Transport();

  /** Replaces every keypair of `peer` (the core's `keypairs` effect). A keypair the data path already
   *  confirmed (the peer sent on it) stays able to send. */
  void setKeypairs(uint32_t peer, const std::vector<KeypairSpec>& keypairs);
  void setAllowedIps(uint32_t peer, const std::vector<Prefix>& prefixes);
  void setEndpoint(uint32_t peer, const Endpoint& ep);
  void removePeer(uint32_t peer);
  /** Packets for `peer` go, unencrypted, to `ep` (the member that owns the tunnel); null: encrypt here. */
  void setForward(uint32_t peer, const Endpoint* ep);
  /** The IPv4 addresses (network order) whose forwarded packets this member encrypts (the members). */
  void setForwarders(const std::vector<uint32_t>& v4);
  bool isForwarder(const sockaddr_storage& from) const;

  /**
   * Decrypts one datagram from `from` into `out` (capacity at least the datagram's length). On success the
   * peer's endpoint becomes `from` (roaming, whitepaper 2.1).
   */
  DecryptResult decrypt(const uint8_t* datagram, size_t len, const Endpoint* from, uint8_t* out);

  /**
   * Encrypts one inner packet (plaintext, `len` bytes; 0 = keepalive) to `peer`, or (peer < 0) to the peer
   * whose allowed IPs hold the packet's destination. `out` needs len + 16 (padding) + 32 bytes. On Sent,
   * *outLen is the datagram's length and *to the peer's endpoint.
   */
  EncryptStatus encrypt(int64_t peer, const uint8_t* packet, size_t len, uint8_t* out, size_t* outLen, Endpoint* to,
                        uint32_t* peerOut);

  std::vector<KeypairActivity> drainActivity();
  PeerCounters peerCounters(uint32_t peer) const;
  bool peerEndpoint(uint32_t peer, Endpoint* ep) const;
  std::array<uint64_t, kDecryptStatusCount> decryptCounts() const;
  std::array<uint64_t, kEncryptStatusCount> encryptCounts() const;

 private:
  struct Keypair {
    KeypairSpec spec;
    uint32_t peer = 0;
    uint64_t sendCounter = 0;
    bool confirmed = false;
    uint64_t sendableSeq = 0;  // order in which keypairs became able to send; the newest sends
    ReplayWindow replay;
    KeypairActivity activity;
  };
  struct Peer {
    std::vector<uint32_t> indices;  // its keypairs
    bool hasEndpoint = false;
    Endpoint endpoint;
    bool hasForward = false;
    Endpoint forward;
    PeerCounters counters;
  };
  Keypair* sendKeypair(Peer& p);

  mutable std::mutex mu_;
  std::unordered_map<uint32_t, Keypair> keypairs_;
  std::map<uint32_t, Peer> peers_;
  AllowedIps allowed_;
  std::vector<uint32_t> forwarders_;
  uint64_t sendableSeq_ = 0;
  std::array<uint64_t, kDecryptStatusCount> decryptCounts_{};
  std::array<uint64_t, kEncryptStatusCount> encryptCounts_{};
};

/** The inner packet's IP version (4 or 6) and total length from its header, or 0 when inconsistent. */
size_t innerPacketLength(const uint8_t* p, size_t len, uint8_t* family);

}  // namespace gwc::tunnel
