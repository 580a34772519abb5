// Fast liveness: the member's data-plane heartbeat, on a native thread (docs/protocol.md, "Fast
// liveness"). Every `intervalMs` the thread sends each peer one authenticated 64-byte datagram and checks
// how long each armed peer has been silent; a peer silent for (n + 0.5) x its advertised interval is
// reported down once ('up' when it is first heard, and again after a 'down') (n adaptive: the smallest n >= minPeriods with n * P^n < 1/K, P the running loss
// estimate of that peer's heartbeats, as the cluster protocol's keepalive watchdog). The cluster protocol
// (JavaScript) acts on the report; this thread never decides membership. It does not depend on the
// JavaScript event loop, so a busy or collecting event loop neither delays heartbeats nor causes a false
// death, and it may run at real-time priority (as VRRP daemons do).
//
// Datagram (big-endian), kDatagramBytes:
//   0-3 magic "GWLV" | 4 version (1) | 5 state (1 up, 2 leaving) | 6-7 sender's interval, ms
//   8-11 sender IPv4 | 12-15 receiver IPv4 | 16-23 sender incarnation | 24-31 sequence number
//   32-63 HMAC-SHA-512-256 (libsodium crypto_auth) of bytes 0-31 under the key of direction
//         sender -> receiver (derived by the caller from the members' certificates)
// Checks in order, cheapest first: length, magic and version, source address = sender field and a known
// peer, receiver field = this member, MAC, then freshness ((incarnation, sequence) strictly greater than
// the last accepted one of that peer). A refused datagram changes nothing.
//
// Threading: one thread owns the socket. setPeers/peers/stats (JS thread) take the mutex; events go out
// through `post` (never under the mutex), which must not block.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace gwc::liveness {

constexpr size_t kDatagramBytes = 64;
constexpr size_t kKeyBytes = 32;
constexpr uint8_t kVersion = 1;
constexpr uint8_t kStateUp = 1;
constexpr uint8_t kStateLeaving = 2;

struct Config {
  uint32_t selfV4 = 0;          // host order: bound address and the sender field
  uint16_t port = 0;            // 0: any (tests)
  uint32_t intervalMs = 10;     // own transmit interval
  uint32_t minPeriods = 4;
  uint32_t maxPeriods = 20;
  double lossToleranceK = 9000;
  uint64_t incarnation = 0;
  int realtimePriority = 0;     // SCHED_FIFO priority of the thread; 0: normal scheduling
};

struct PeerSpec {
  uint32_t v4 = 0;              // host order
  uint8_t txKey[kKeyBytes];     // self -> peer
  uint8_t rxKey[kKeyBytes];     // peer -> self
};

struct Event {
  enum class Type { Down, Up, Error } type = Type::Down;
  uint32_t peer = 0;
  double silentMs = 0;
  uint32_t periods = 0;
  std::string syscall;
  int errnum = 0;
  std::string message;
};

struct Stats {
  uint64_t sent = 0, sendErrors = 0, received = 0, accepted = 0, malformed = 0, wrongAddress = 0;
  uint64_t unknownPeer = 0, badMac = 0, replay = 0, downEvents = 0, upEvents = 0, eventDrops = 0, leaving = 0;
  bool realtime = false;
};

struct PeerView {
  uint32_t v4 = 0;
  bool armed = false, down = false;
  double silentMs = -1;         // -1: never heard
  double loss = 0;
  uint32_t periods = 0, intervalMs = 0;
  uint64_t incarnation = 0, seq = 0;
  double limitMs = 0;           // the silence that is reported down now
  double gapMaxMs = 0;          // the longest recent gap between heartbeats (decayed)
};

/**
 * Heartbeats delayed rather than lost (a loaded host defers packet processing to a non-real-time
 * kernel thread) never show in the loss estimate; so the limit is also at least kGapFactor times the
 * longest recent gap between two heartbeats, which decays with a half-life of kGapHalfLifeMs.
 */
constexpr double kGapFactor = 2.0;
constexpr double kGapHalfLifeMs = 10000.0;

/** max((n + 0.5) x interval, kGapFactor x decayed gap), at most (maxN + 0.5) x interval. */
double silenceLimitMs(uint32_t n, uint32_t maxN, uint32_t intervalMs, double gapMaxMs, double gapAgeMs);

class LivenessError : public std::runtime_error {
 public:
  LivenessError(const std::string& syscall, int errnum, const std::string& what)
      : std::runtime_error(what), syscall(syscall), errnum(errnum) {}
  std::string syscall;
  int errnum;
};

/** The smallest n in [minN, maxN] with n * p^n < 1/k (maxN when none). */
uint32_t watchdogPeriods(double p, double k, uint32_t minN, uint32_t maxN);

/** Builds the datagram of `seq` from `self` to `to` (tests and the sender). */
void seal(uint8_t out[kDatagramBytes], uint8_t state, uint16_t intervalMs, uint32_t selfV4, uint32_t toV4,
          uint64_t incarnation, uint64_t seq, const uint8_t key[kKeyBytes]);

class Liveness {
 public:
  /** Binds the socket (throws LivenessError); the thread starts with start(). */
  Liveness(Config config, std::function<bool(Event&&)> post);
  ~Liveness();

  void start();
  /** Sends each peer a `leaving` datagram (they disarm instead of reporting a death), then stops. */
  void stop(bool announceLeaving);
  void setPeers(const std::vector<PeerSpec>& peers);
  std::vector<PeerView> peers() const;
  Stats stats() const;
  uint16_t boundPort() const { return boundPort_; }

 private:
  struct Peer {
    PeerSpec spec;
    bool armed = false, down = false;
    double lastHeard = 0;
    double loss = 0;
    uint32_t periods = 0, intervalMs = 0;
    uint64_t incarnation = 0, seq = 0;
    // The longest recent gap between two accepted heartbeats (ms), decaying with kGapHalfLifeMs.
    double gapMax = 0, gapAt = 0;
  };
  /** The silence after which the peer is reported down, ms (limitMs()). */
  double limitOf(const Peer& p, double now) const;
  void run();
  void sendAll(uint8_t state);
  void receiveAll();
  void check(double now);
  bool post(Event&& e);

  Config config_;
  std::function<bool(Event&&)> post_;
  int sock_ = -1, wake_ = -1;
  uint16_t boundPort_ = 0;
  std::thread thread_;
  std::atomic<bool> running_{false};
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, Peer> peers_;
  Stats stats_;
  uint64_t txSeq_ = 0;
};

}  // namespace gwc::liveness
