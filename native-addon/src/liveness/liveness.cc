// See liveness.h.
#include "liveness/liveness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>

namespace gwc::liveness {
namespace {

double monotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void put16(uint8_t* p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
void put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = (v >> (24 - 8 * i)) & 0xff; }
void put64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = (v >> (56 - 8 * i)) & 0xff; }
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) { uint32_t v = 0; for (int i = 0; i < 4; ++i) v = v << 8 | p[i]; return v; }
uint64_t get64(const uint8_t* p) { uint64_t v = 0; for (int i = 0; i < 8; ++i) v = v << 8 | p[i]; return v; }

constexpr uint8_t kMagic[4] = {'G', 'W', 'L', 'V'};
constexpr size_t kAuthed = 32;  // bytes covered by the MAC
static_assert(crypto_auth_BYTES == kDatagramBytes - kAuthed, "MAC fills the rest of the datagram");
static_assert(crypto_auth_KEYBYTES == kKeyBytes, "key size");

Event errorEvent(const char* syscall, int errnum, const std::string& what) {
  Event e;
  e.type = Event::Type::Error;
  e.syscall = syscall;
  e.errnum = errnum;
  e.message = what + ": " + std::strerror(errnum);
  return e;
}

}  // namespace

uint32_t watchdogPeriods(double p, double k, uint32_t minN, uint32_t maxN) {
  for (uint32_t n = std::max<uint32_t>(1, minN); n <= maxN; ++n)
    if (static_cast<double>(n) * std::pow(p, static_cast<double>(n)) < 1.0 / k) return n;
  return maxN;
}

void seal(uint8_t out[kDatagramBytes], uint8_t state, uint16_t intervalMs, uint32_t selfV4, uint32_t toV4,
          uint64_t incarnation, uint64_t seq, const uint8_t key[kKeyBytes]) {
  std::memcpy(out, kMagic, 4);
  out[4] = kVersion;
  out[5] = state;
  put16(out + 6, intervalMs);
  put32(out + 8, selfV4);
  put32(out + 12, toV4);
  put64(out + 16, incarnation);
  put64(out + 24, seq);
  crypto_auth(out + kAuthed, out, kAuthed, key);
}

Liveness::Liveness(Config config, std::function<bool(Event&&)> post) : config_(config), post_(std::move(post)) {
  if (sodium_init() < 0) throw LivenessError("sodium_init", 0, "libsodium failed to initialise");
  sock_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock_ < 0) throw LivenessError("socket", errno, std::string("socket: ") + std::strerror(errno));
  // Heartbeats are the cluster's most urgent traffic: the highest priority the socket may have
  // (interactive band of the default qdisc; DSCP CS6, network control, as VRRP and BFD use).
  int prio = 6;
  setsockopt(sock_, SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio);
  int tos = 0xc0;
  setsockopt(sock_, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(config_.port);
  a.sin_addr.s_addr = htonl(config_.selfV4);
  if (bind(sock_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    close(sock_);
    throw LivenessError("bind", e, std::string("bind: ") + std::strerror(e));
  }
  socklen_t len = sizeof a;
  getsockname(sock_, reinterpret_cast<sockaddr*>(&a), &len);
  boundPort_ = ntohs(a.sin_port);
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_ < 0) {
    const int e = errno;
    close(sock_);
    throw LivenessError("eventfd", e, std::string("eventfd: ") + std::strerror(e));
  }
}

Liveness::~Liveness() {
  stop(false);
  if (sock_ >= 0) close(sock_);
  if (wake_ >= 0) close(wake_);
}

void Liveness::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { run(); });
}

void Liveness::stop(bool announceLeaving) {
  if (!running_.exchange(false)) return;
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  if (announceLeaving) sendAll(kStateLeaving);
}

void Liveness::setPeers(const std::vector<PeerSpec>& specs) {
  std::lock_guard<std::mutex> g(mu_);
  std::unordered_map<uint32_t, Peer> next;
  for (const auto& s : specs) {
    auto it = peers_.find(s.v4);
    // Same peer and keys: keep what was learnt (armed, freshness); new keys: a new relationship.
    if (it != peers_.end() && std::memcmp(it->second.spec.rxKey, s.rxKey, kKeyBytes) == 0 && std::memcmp(it->second.spec.txKey, s.txKey, kKeyBytes) == 0) {
      next.emplace(s.v4, it->second);
    } else {
      Peer p;
      p.spec = s;
      p.periods = config_.minPeriods;
      p.intervalMs = config_.intervalMs;
      if (it != peers_.end()) {  // rekeyed (a new certificate): freshness carries over
        p.incarnation = it->second.incarnation;
        p.seq = it->second.seq;
      }
      next.emplace(s.v4, p);
    }
  }
  for (auto& [v4, p] : peers_) {
    if (next.count(v4) == 0) sodium_memzero(&p.spec, sizeof p.spec);
  }
  peers_.swap(next);
}

std::vector<PeerView> Liveness::peers() const {
  std::lock_guard<std::mutex> g(mu_);
  const double now = monotonicMs();
  std::vector<PeerView> out;
  for (const auto& [v4, p] : peers_) {
    PeerView v;
    v.v4 = v4;
    v.armed = p.armed;
    v.down = p.down;
    v.silentMs = p.lastHeard > 0 ? now - p.lastHeard : -1;
    v.loss = p.loss;
    v.periods = p.periods;
    v.limitMs = limitOf(p, now);
    v.gapMaxMs = p.gapMax * std::exp2(-(now - p.gapAt) / kGapHalfLifeMs);
    v.intervalMs = p.intervalMs;
    v.incarnation = p.incarnation;
    v.seq = p.seq;
    out.push_back(v);
  }
  return out;
}

Stats Liveness::stats() const {
  std::lock_guard<std::mutex> g(mu_);
  return stats_;
}

bool Liveness::post(Event&& e) {
  if (post_(std::move(e))) return true;
  std::lock_guard<std::mutex> g(mu_);
  stats_.eventDrops++;
  return false;
}

void Liveness::sendAll(uint8_t state) {
  std::vector<std::pair<uint32_t, std::array<uint8_t, kDatagramBytes>>> out;
  {
    std::lock_guard<std::mutex> g(mu_);
    const uint64_t seq = ++txSeq_;
    const uint16_t interval = static_cast<uint16_t>(std::min<uint32_t>(config_.intervalMs, 65535));
    for (const auto& [v4, p] : peers_) {
      std::array<uint8_t, kDatagramBytes> d{};
      seal(d.data(), state, interval, config_.selfV4, v4, config_.incarnation, seq, p.spec.txKey);
      out.emplace_back(v4, d);
    }
  }
  uint64_t sent = 0, errors = 0;
  for (const auto& [v4, d] : out) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(boundPort_);
    to.sin_addr.s_addr = htonl(v4);
    if (sendto(sock_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == static_cast<ssize_t>(d.size())) sent++;
    else errors++;
  }
  std::lock_guard<std::mutex> g(mu_);
  stats_.sent += sent;
  stats_.sendErrors += errors;
}

void Liveness::receiveAll() {
  std::vector<Event> events;
  for (int i = 0; i < 256; ++i) {  // bounded: the loop returns to sending and checking
    uint8_t buf[kDatagramBytes + 1];
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    const ssize_t n = recvfrom(sock_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < 0) break;
    const double now = monotonicMs();
    std::lock_guard<std::mutex> g(mu_);
    stats_.received++;
    if (n != static_cast<ssize_t>(kDatagramBytes) || std::memcmp(buf, kMagic, 4) != 0 || buf[4] != kVersion ||
        (buf[5] != kStateUp && buf[5] != kStateLeaving)) {
      stats_.malformed++;
      continue;
    }
    const uint32_t sender = get32(buf + 8);
    if (from.sin_family != AF_INET || ntohl(from.sin_addr.s_addr) != sender || get32(buf + 12) != config_.selfV4) {
      stats_.wrongAddress++;
      continue;
    }
    auto it = peers_.find(sender);
    if (it == peers_.end()) {
      stats_.unknownPeer++;
      continue;
    }
    Peer& p = it->second;
    if (crypto_auth_verify(buf + kAuthed, buf, kAuthed, p.spec.rxKey) != 0) {
      stats_.badMac++;
      continue;
    }
    const uint64_t inc = get64(buf + 16), seq = get64(buf + 24);
    if (inc < p.incarnation || (inc == p.incarnation && seq <= p.seq)) {
      stats_.replay++;
      continue;
    }
    stats_.accepted++;
    if (inc == p.incarnation && p.seq > 0) {
      const uint64_t lost = seq - p.seq - 1;
      p.loss = p.loss * 127.0 / 128.0 + static_cast<double>(std::min<uint64_t>(lost, 1000)) / 128.0;
      p.periods = watchdogPeriods(p.loss, config_.lossToleranceK, config_.minPeriods, config_.maxPeriods);
    } else if (inc != p.incarnation) {
      p.loss = 0;
      p.periods = config_.minPeriods;
    }
    if (inc == p.incarnation && p.lastHeard > 0) {
      const double gap = now - p.lastHeard;
      const double decayed = p.gapMax * std::exp2(-(now - p.gapAt) / kGapHalfLifeMs);
      p.gapMax = std::max(gap, decayed);
      p.gapAt = now;
    } else if (inc != p.incarnation) {
      p.gapMax = 0;
      p.gapAt = now;
    }
    p.incarnation = inc;
    p.seq = seq;
    p.lastHeard = now;
    p.intervalMs = std::max<uint16_t>(1, get16(buf + 6));
    if (buf[5] == kStateLeaving) {
      stats_.leaving++;
      p.armed = false;
      continue;
    }
    // Armed for the first time, or heard again after a report: the peer is alive ('up').
    if (!p.armed || p.down) {
      p.armed = true;
      p.down = false;
      stats_.upEvents++;
      Event e;
      e.type = Event::Type::Up;
      e.peer = sender;
      events.push_back(e);
    }
  }
  for (auto& e : events) post(std::move(e));
}

double silenceLimitMs(uint32_t n, uint32_t maxN, uint32_t intervalMs, double gapMaxMs, double gapAgeMs) {
  const double interval = static_cast<double>(intervalMs);
  const double byLoss = (static_cast<double>(n) + 0.5) * interval;
  const double byGap = kGapFactor * gapMaxMs * std::exp2(-std::max(0.0, gapAgeMs) / kGapHalfLifeMs);
  const double cap = (static_cast<double>(std::max(maxN, n)) + 0.5) * interval;
  return std::max(byLoss, std::min(byGap, cap));
}

double Liveness::limitOf(const Peer& p, double now) const {
  return silenceLimitMs(p.periods, config_.maxPeriods, p.intervalMs, p.gapMax, now - p.gapAt);
}

void Liveness::check(double now) {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [v4, p] : peers_) {
      if (!p.armed || p.down) continue;
      const double limit = limitOf(p, now);
      if (now - p.lastHeard > limit) {
        p.down = true;
        stats_.downEvents++;
        Event e;
        e.type = Event::Type::Down;
        e.peer = v4;
        e.silentMs = now - p.lastHeard;
        e.periods = p.periods;
        events.push_back(e);
      }
    }
  }
  for (auto& e : events) post(std::move(e));
}

void Liveness::run() {
  if (config_.realtimePriority > 0) {
    sched_param sp{};
    sp.sched_priority = config_.realtimePriority;
    const int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    {
      std::lock_guard<std::mutex> g(mu_);
      stats_.realtime = err == 0;
    }
    if (err != 0) post(errorEvent("pthread_setschedparam", err, "real-time priority refused (the thread runs with normal scheduling)"));
  }
  const double interval = static_cast<double>(std::max<uint32_t>(1, config_.intervalMs));
  double nextSend = monotonicMs();
  pollfd fds[2] = {{sock_, POLLIN, 0}, {wake_, POLLIN, 0}};
  while (running_.load()) {
    double now = monotonicMs();
    if (now >= nextSend) {
      receiveAll();  // what arrived while this thread waited counts before any silence is judged
      sendAll(kStateUp);
      check(monotonicMs());
      nextSend += interval;
      if (nextSend < now) nextSend = now + interval;  // the thread was not scheduled: no burst
    }
    const int timeout = static_cast<int>(std::ceil(std::max(0.0, nextSend - monotonicMs())));
    const int r = poll(fds, 2, timeout);
    if (r < 0 && errno != EINTR) {
      post(errorEvent("poll", errno, "poll"));
      break;
    }
    if (r > 0 && (fds[0].revents & POLLIN)) receiveAll();
  }
}

}  // namespace gwc::liveness
