// A member's WireGuard endpoint I/O: one UDP socket (the listen address and port) and one TUN device,
// served by one thread. Transport messages are decrypted and written to the TUN device; packets read from
// the TUN device are encrypted to the peer their destination routes to (cryptokey routing) and sent, in
// batches (recvmmsg/sendmmsg, up to kBatch per system call). Handshake messages (types 1..3) and the need
// for a keypair go to JS as events: the handshake core lives there.
//
// Threading: the device thread reads both descriptors; sendDatagram/sendKeepalive (JS thread) write to the
// UDP socket directly (sendto is thread-safe). stop() joins the thread; the destructor stops and closes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tunnel/transport.h"

namespace gwc::tunnel {

struct DeviceConfig {
  std::string tunName;     // created if missing (IFF_TUN | IFF_NO_PI); brought up with `mtu`
  uint32_t mtu = 1420;
  uint32_t listenV4 = 0;   // host order; 0 = any
  uint16_t listenPort = 51820;
  /** The inside-to-owner path (docs/tunnels.md): a UDP socket on the member's own address that sends
   *  packets of tunnels another member owns to it, and receives the packets other members forward. 0: none. */
  uint32_t forwardV4 = 0;  // host order
  uint16_t forwardPort = 0;
};

struct DeviceEvent {
  enum class Type { Handshake, NeedKeypair, Error } type = Type::Handshake;
  std::vector<uint8_t> bytes;  // Handshake: the datagram
  Endpoint from;               // Handshake
  uint32_t peer = 0;           // NeedKeypair
  std::string syscall;         // Error
  int errnum = 0;
  std::string message;
};

struct DeviceStats {
  uint64_t udpReceived = 0, udpBatches = 0, handshakeMessages = 0, otherTypes = 0, truncated = 0;
  uint64_t tunWritten = 0, tunWriteErrors = 0, tunRead = 0, tunBatches = 0, udpSent = 0, sendErrors = 0;
  uint64_t needKeypairEvents = 0, eventDrops = 0;
  uint64_t forwarded = 0, forwardReceived = 0, forwardRefused = 0, forwardLoops = 0;
};

class DeviceError : public std::runtime_error {
 public:
  DeviceError(const std::string& syscall, int errnum, const std::string& what)
      : std::runtime_error(what), syscall(syscall), errnum(errnum) {}
  std::string syscall;
  int errnum;
};

class TunnelDevice {
 public:
  static constexpr int kBatch = 32;
  static constexpr size_t kSlot = 65536;

  /** Opens the TUN device and binds the socket; throws DeviceError. `post` returns false when the
   *  event could not be queued (counted in eventDrops). */
  TunnelDevice(DeviceConfig config, std::shared_ptr<Transport> transport, std::function<bool(DeviceEvent&&)> post);
  ~TunnelDevice();

  void start();
  void stop();

  /** Sends a handshake message (or any datagram) from the listen socket. Returns errno, 0 on success. */
  int sendDatagram(const uint8_t* bytes, size_t len, const Endpoint& to);
  /** Sends an empty transport message to `peer`: EncryptStatus. */
  EncryptStatus sendKeepalive(uint32_t peer);
  DeviceStats stats() const;
  uint16_t boundPort() const { return boundPort_; }

 private:
  void run();
  void onUdp();
  void onTun();
  void onForward();
  bool postEvent(DeviceEvent&& e);

  DeviceConfig config_;
  std::shared_ptr<Transport> transport_;
  std::function<bool(DeviceEvent&&)> post_;
  int udp_ = -1, tun_ = -1, wake_ = -1, fwd_ = -1;
  uint16_t boundPort_ = 0;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::vector<uint8_t> in_, out_;  // kBatch slots each
  std::vector<uint8_t> plain_;
  std::unordered_map<uint32_t, uint64_t> lastNeedKeypairMs_;
  mutable std::mutex statsMu_;
  DeviceStats stats_;
};

}  // namespace gwc::tunnel
