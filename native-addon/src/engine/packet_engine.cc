#include "engine/packet_engine.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netfilter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libnfnetlink/libnfnetlink.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace gwc {
namespace {

constexpr int kBurst = 64;             // queue messages read per wake-up before the verdicts are sent
constexpr int kIdleReads = 32;         // empty reads tolerated within a burst before the verdicts go out
constexpr size_t kRecvBufBytes = 0xffff + 4096;  // one copied packet (copy range 0xffff) + netlink headers
constexpr uint16_t kArpRequest = 1;
constexpr uint16_t kArpReply = 2;
constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

[[noreturn]] void fail(const std::string& call, const std::string& what) {
  const int e = errno;
  throw EngineError(call, e, call + "(" + what + "): " + std::strerror(e));
}

int ifindexOf(const std::string& name) {
  const unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) fail("if_nametoindex", name);
  return static_cast<int>(idx);
}

Mac hwaddrOf(int fd, const std::string& name) {
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) fail("ioctl(SIOCGIFHWADDR)", name);
  Mac m;
  std::memcpy(m.data(), ifr.ifr_hwaddr.sa_data, 6);
  return m;
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// An Ethernet + ARP (IPv4 over Ethernet, RFC 826) frame of 42 bytes.
std::array<uint8_t, 42> arpFrame(const Mac& ethDst, const Mac& ethSrc, uint16_t op, const Mac& sha, uint32_t spa,
                                 const Mac& tha, uint32_t tpa) {
  std::array<uint8_t, 42> f{};
  std::memcpy(&f[0], ethDst.data(), 6);
  std::memcpy(&f[6], ethSrc.data(), 6);
  put16(&f[12], ETH_P_ARP);
  put16(&f[14], 1);  // hardware type Ethernet
  put16(&f[16], ETH_P_IP);
  f[18] = 6;
  f[19] = 4;
  put16(&f[20], op);
  std::memcpy(&f[22], sha.data(), 6);
  put32(&f[28], spa);
  std::memcpy(&f[32], tha.data(), 6);
  put32(&f[38], tpa);
  return f;
}

}  // namespace

PacketEngine::PacketEngine(EngineConfig config, EventSink sink)
    : config_(std::move(config)), sink_(std::move(sink)), filter_(config_.hold) {
  filter_.cluster = config_.cluster;
  filter_.localSlot = config_.localSlot;
  filter_.master = config_.master;
  filter_.method = config_.method;
  try {
    wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd_ < 0) fail("eventfd", "");

    if (!config_.forwardInterface.empty()) {
      fwdIfindex_ = ifindexOf(config_.forwardInterface);
      // SOCK_DGRAM with protocol 0: send only (receives nothing); the kernel writes the Ethernet header.
      fwdFd_ = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fwdFd_ < 0) fail("socket(AF_PACKET, SOCK_DGRAM)", config_.forwardInterface);
    }
    raw4Fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (raw4Fd_ < 0) fail("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", "");
    raw6Fd_ = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);  // may be absent (IPv6 disabled)

    for (const ArpInterfaceConfig& ac : config_.arpInterfaces) {
      ArpPort port;
      port.config = ac;
      port.ifindex = ifindexOf(ac.name);
      port.fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP));
      if (port.fd < 0) fail("socket(AF_PACKET, SOCK_RAW, ETH_P_ARP)", ac.name);
      arpPorts_.push_back(port);  // closed by CloseAll from here on
      ArpPort& p = arpPorts_.back();
      p.ownMac = hwaddrOf(p.fd, ac.name);
      struct sockaddr_ll sll;
      std::memset(&sll, 0, sizeof sll);
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = htons(ETH_P_ARP);
      sll.sll_ifindex = p.ifindex;
      if (bind(p.fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) fail("bind(AF_PACKET)", ac.name);
    }

    nfq_ = nfq_open();
    if (!nfq_) fail("nfq_open", "");
    qh_ = nfq_create_queue(nfq_, config_.queueNum, &PacketEngine::OnQueuedPacket, this);
    if (!qh_) fail("nfq_create_queue", "queue " + std::to_string(config_.queueNum));
    if (nfq_set_mode(qh_, NFQNL_COPY_PACKET, 0xffff) < 0) fail("nfq_set_mode", "NFQNL_COPY_PACKET");
    if (nfq_set_queue_maxlen(qh_, config_.queueMaxLen) < 0) fail("nfq_set_queue_maxlen", std::to_string(config_.queueMaxLen));
    // Fail-open OFF (mask FAIL_OPEN, value 0): a full queue drops instead of accepting unfiltered.
    if (nfq_set_queue_flags(qh_, NFQA_CFG_F_FAIL_OPEN, 0) < 0) fail("nfq_set_queue_flags", "FAIL_OPEN off");
    nfqFd_ = nfq_fd(nfq_);
    nfnl_rcvbufsiz(nfq_nfnlh(nfq_), config_.rcvbufBytes);
  } catch (...) {
    CloseAll();
    throw;
  }
  recvBuf_.resize(kRecvBufBytes);
  pending_.reserve(kBurst);
}

PacketEngine::~PacketEngine() { stop(); }

void PacketEngine::start() {
  if (thread_.joinable() || !nfq_) return;
  thread_ = std::thread([this] { Run(); });
}

void PacketEngine::stop() {
  stopping_.store(true);
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (write(wakeFd_, &one, sizeof one) < 0) { /* the eventfd cannot be full at 1 */ }
    thread_.join();
  }
  CloseAll();
}

void PacketEngine::CloseAll() {
  if (qh_) nfq_destroy_queue(qh_);  // unbinds: the kernel drops what is still queued (no bypass)
  qh_ = nullptr;
  if (nfq_) nfq_close(nfq_);
  nfq_ = nullptr;
  nfqFd_ = -1;
  for (ArpPort& p : arpPorts_)
    if (p.fd >= 0) close(p.fd), p.fd = -1;
  for (int* fd : {&fwdFd_, &raw4Fd_, &raw6Fd_, &wakeFd_})
    if (*fd >= 0) close(*fd), *fd = -1;
}

// ---- the engine thread ----

void PacketEngine::Run() {
  using Clock = std::chrono::steady_clock;
  std::vector<pollfd> fds;
  fds.push_back({wakeFd_, POLLIN, 0});
  fds.push_back({nfqFd_, POLLIN, 0});
  for (const ArpPort& p : arpPorts_) fds.push_back({p.fd, POLLIN, 0});
  uint32_t roundsLeft = 0;
  uint32_t framesBefore = 0;
  Clock::time_point nextRound;

  while (!stopping_.load()) {
    int timeout = -1;
    if (roundsLeft > 0) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(nextRound - Clock::now()).count();
      timeout = ms < 0 ? 0 : static_cast<int>(ms);
    }
    const int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      EngineEvent e;
      e.type = EngineEvent::Type::Error;
      e.syscall = "poll";
      e.errnum = errno;
      e.message = std::string("poll: ") + std::strerror(errno);
      Emit(std::move(e), kNoUnit);
      return;
    }
    if (stopping_.load()) break;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      uint64_t v;
      if (read(wakeFd_, &v, sizeof v) < 0) { /* EAGAIN: already drained */ }
    }
    if (announceRequested_.exchange(false)) {
      // A new announce() restarts the rounds (the master has just taken office again).
      roundsLeft = config_.announceRounds;
      nextRound = Clock::now();
      std::lock_guard<std::mutex> lock(mu_);
      framesBefore = static_cast<uint32_t>(stats_.garpSent);
    }
    if (n > 0 && (fds[1].revents & (POLLIN | POLLERR))) {
      ReadQueue();
      if (stopping_.load()) break;
    }
    for (size_t i = 0; n > 0 && i < arpPorts_.size(); ++i)
      if (fds[2 + i].revents & POLLIN) ReadArp(arpPorts_[i]);
    if (roundsLeft > 0 && Clock::now() >= nextRound) {
      SendAnnounceRound();
      --roundsLeft;
      nextRound += std::chrono::milliseconds(config_.announceIntervalMs);
      if (roundsLeft == 0) {
        EngineEvent e;
        e.type = EngineEvent::Type::Announced;
        {
          std::lock_guard<std::mutex> lock(mu_);
          e.frames = static_cast<uint32_t>(stats_.garpSent) - framesBefore;
        }
        Emit(std::move(e), kNoUnit);
      }
    }
  }
}

void PacketEngine::ReadQueue() {
  // Under load, a few empty reads before going back to poll() save a sleep and a wake-up per packet.
  int idle = 0;
  for (int k = 0; k < kBurst;) {
    const ssize_t n = recv(nfqFd_, recvBuf_.data(), recvBuf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && k > 0 && ++idle <= kIdleReads) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // the kernel could not queue messages to us; they are lost (dropped)
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.recvOverruns;
        continue;
      }
      FlushVerdicts();
      EngineEvent e;
      e.type = EngineEvent::Type::Error;
      e.syscall = "recv";
      e.errnum = errno;
      e.message = std::string("recv(nfqueue ") + std::to_string(config_.queueNum) + "): " + std::strerror(errno);
      Emit(std::move(e), kNoUnit);
      stopping_.store(true);
      return;
    }
    nfq_handle_packet(nfq_, reinterpret_cast<char*>(recvBuf_.data()), static_cast<int>(n));
    ++k;
  }
  FlushVerdicts();
}

// Consecutive packets with the same verdict share one nfq_set_verdict_batch (it applies to every
// pending id <= the last one; nothing earlier is pending because no verdict is ever deferred).
void PacketEngine::setSessions(sess::SessionTable* table) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_ = table;
}

void PacketEngine::FlushVerdicts() {
  uint64_t errors = 0;
  for (size_t i = 0; i < pending_.size();) {
    size_t j = i;
    while (j + 1 < pending_.size() && pending_[j + 1].verdict == pending_[i].verdict) ++j;
    const int rc = j == i ? nfq_set_verdict(qh_, pending_[i].id, pending_[i].verdict, 0, nullptr)
                          : nfq_set_verdict_batch(qh_, pending_[j].id, pending_[i].verdict);
    if (rc < 0) ++errors;
    i = j + 1;
  }
  pending_.clear();
  if (errors) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.verdictErrors += errors;
  }
}

int PacketEngine::OnQueuedPacket(nfq_q_handle*, nfgenmsg*, nfq_data* nfa, void* data) {
  auto* self = static_cast<PacketEngine*>(data);
  const nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  const uint32_t id = ntohl(ph->packet_id);
  unsigned char* payload = nullptr;
  const int plen = nfq_get_payload(nfa, &payload);
  const size_t len = plen > 0 ? static_cast<size_t>(plen) : 0;

  uint32_t nfVerdict = NF_DROP;
  bool forward = false;
  bool notify = false;
  Mac mac{};
  Classification c;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    ++self->stats_.received;
    Verdict v = self->filter_.verdict(payload, len, false, &c);
    // The master assigned a held unit to itself and has not released it yet: keep holding, so that
    // no packet overtakes the held ones (Figure 9's LOCAL comes first in WorkUnitFilter::verdict).
    if (v == Verdict::Local && c.hasUnit() && self->filter_.master && self->filter_.holdQueue().isHeld(c.unit)) {
      self->filter_.holdQueue().push(c.unit, payload, len);
      v = Verdict::Hold;
    }
    VerdictCounts* counts[2] = {&self->stats_.verdicts, &self->sinceReset_};
    switch (v) {
      case Verdict::Local: {
        // Only traffic the cluster routes is tracked: a packet for a cluster IP ends at this member's own
        // stack, which is the stateful endpoint (its replies leave through OUTPUT, unseen here).
        if (self->sessions_ != nullptr && c.status == Status::Forwarded) {
          const int64_t nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
          sess::TrackResult tr;
          {
            std::lock_guard<std::mutex> sl(self->sessions_->mutex());
            tr = self->sessions_->track(payload, len, nowMs, c.unit);
          }
          ++self->stats_.sessionTracked;
          if (tr.verdict == sess::Verdict::Drop) {
            ++self->stats_.sessionDrops;
            if (tr.reason == sess::Reason::NoSession) ++self->stats_.sessionDropNoSession;
            if (tr.reason == sess::Reason::OutOfWindow) ++self->stats_.sessionDropWindow;
            for (auto* vc : counts) ++vc->dropped;
            break;
          }
        }
        nfVerdict = NF_ACCEPT;
        for (auto* vc : counts) ++vc->accepted;
        break;
      }
      case Verdict::ForwardToOwner: {
        auto it = self->fwdFd_ >= 0 ? self->slotMacs_.find(self->filter_.owners[c.unit]) : self->slotMacs_.end();
        if (it != self->slotMacs_.end()) {
          forward = true;
          mac = it->second;
          for (auto* vc : counts) ++vc->forwarded;
        } else {
          ++self->stats_.forwardNoMac;
          for (auto* vc : counts) ++vc->dropped;
        }
        break;
      }
      case Verdict::Drop:
        for (auto* vc : counts) ++vc->dropped;
        break;
      case Verdict::Hold:
        for (auto* vc : counts) ++vc->held;
        if (!self->notified_[c.unit]) {
          self->notified_[c.unit] = true;
          notify = true;
        }
        break;
      case Verdict::Invalid:
        for (auto* vc : counts) ++vc->invalid;
        break;
    }
  }
  if (forward && !self->SendToMac(payload, len, mac)) {
    std::lock_guard<std::mutex> lock(self->mu_);
    ++self->stats_.forwardErrors;
  }
  if (notify) {
    EngineEvent e;
    e.type = EngineEvent::Type::NeedsOwner;
    e.unit = c.unit;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      e.owner = self->filter_.owners[c.unit];
      ++self->stats_.needsOwnerEvents;
    }
    self->Emit(std::move(e), c.unit);
  }
  self->pending_.push_back({id, nfVerdict});
  return 0;
}

void PacketEngine::Emit(EngineEvent&& e, uint16_t unitToUnmark) {
  if (sink_ && sink_(std::move(e))) return;
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.eventDrops;
  if (unitToUnmark != kNoUnit) notified_[unitToUnmark] = false;  // the next packet tries again
}

bool PacketEngine::SendToMac(const uint8_t* p, size_t len, const Mac& mac) {
  if (fwdFd_ < 0 || len == 0) return false;
  struct sockaddr_ll sll;
  std::memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons((p[0] >> 4) == 6 ? ETH_P_IPV6 : ETH_P_IP);
  sll.sll_ifindex = fwdIfindex_;
  sll.sll_halen = 6;
  std::memcpy(sll.sll_addr, mac.data(), 6);
  return sendto(fwdFd_, p, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sll), sizeof sll) == static_cast<ssize_t>(len);
}

bool PacketEngine::Reinject(const uint8_t* p, size_t len) {
  if (len < 20) return false;
  if ((p[0] >> 4) == 4) {
    struct sockaddr_in to;
    std::memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    std::memcpy(&to.sin_addr, p + 16, 4);
    return sendto(raw4Fd_, p, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), sizeof to) == static_cast<ssize_t>(len);
  }
  if ((p[0] >> 4) == 6 && len >= 40 && raw6Fd_ >= 0) {
    struct sockaddr_in6 to;
    std::memset(&to, 0, sizeof to);
    to.sin6_family = AF_INET6;
    std::memcpy(&to.sin6_addr, p + 24, 16);
    return sendto(raw6Fd_, p, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), sizeof to) == static_cast<ssize_t>(len);
  }
  return false;
}

Mac PacketEngine::AnswerMacLocked(const ArpPort& port) const {
  if (filter_.method == 1) return port.config.hasMac ? port.config.mac : port.ownMac;
  return config_.clusterMac;
}

void PacketEngine::ReadArp(ArpPort& port) {
  uint8_t buf[256];
  for (int k = 0; k < kBurst; ++k) {
    struct sockaddr_ll from;
    socklen_t fromLen = sizeof from;
    const ssize_t n = recvfrom(port.fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n < 0) return;  // EAGAIN, or an error the next poll reports again
    if (from.sll_pkttype == PACKET_OUTGOING || n < 42) continue;  // our own frames; runts
    const uint8_t* a = buf + 14;
    if (get16(buf + 12) != ETH_P_ARP || get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4 ||
        get16(a + 6) != kArpRequest)
      continue;
    const uint32_t spa = get32(a + 14);
    const uint32_t tpa = get32(a + 24);
    if (spa == tpa) continue;  // someone else's gratuitous ARP
    bool ours = false;
    for (uint32_t ip : port.config.clusterIps) ours = ours || ip == tpa;
    if (!ours) continue;
    Mac answer;
    Mac requester;
    std::memcpy(requester.data(), a + 8, 6);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.arpRequests;
      if (!answering_ || (filter_.method != 1 && !config_.hasClusterMac)) continue;
      answer = AnswerMacLocked(port);
    }
    // Ethernet source: the interface's own MAC (a switch must never learn the shared MAC of methods
    // 2 and 3, and a multicast MAC is not a valid source); ARP sender hardware address: the answer.
    const auto f = arpFrame(requester, port.ownMac, kArpReply, answer, tpa, requester, spa);
    const bool ok = send(port.fd, f.data(), f.size(), MSG_DONTWAIT) == static_cast<ssize_t>(f.size());
    std::lock_guard<std::mutex> lock(mu_);
    ++(ok ? stats_.arpAnswered : stats_.arpErrors);
  }
}

// One round: per interface and cluster IP, a gratuitous request (broadcast, sender = target = the
// cluster IP, target MAC zero) and a gratuitous reply (broadcast, target MAC = the answer MAC).
void PacketEngine::SendAnnounceRound() {
  uint64_t sent = 0;
  uint64_t errors = 0;
  for (const ArpPort& port : arpPorts_) {
    Mac answer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (filter_.method != 1 && !config_.hasClusterMac) continue;
      answer = AnswerMacLocked(port);
    }
    for (uint32_t ip : port.config.clusterIps) {
      const auto req = arpFrame(kBroadcast, port.ownMac, kArpRequest, answer, ip, Mac{}, ip);
      const auto rep = arpFrame(kBroadcast, port.ownMac, kArpReply, answer, ip, answer, ip);
      for (const auto* f : {&req, &rep}) {
        if (send(port.fd, f->data(), f->size(), MSG_DONTWAIT) == static_cast<ssize_t>(f->size())) ++sent;
        else ++errors;
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.garpSent += sent;
  stats_.arpErrors += errors;
}

// ---- the JS thread ----

void PacketEngine::setOwner(uint16_t unit, uint16_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  if (filter_.owners[unit] != slot) notified_[unit] = false;
  filter_.owners[unit] = slot;
}

void PacketEngine::setOwners(const uint16_t* units, size_t n, uint16_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < n; ++i) {
    if (filter_.owners[units[i]] != slot) notified_[units[i]] = false;
    filter_.owners[units[i]] = slot;
  }
}

void PacketEngine::setTable(const uint16_t* table) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t u = 0; u < kWorkUnits; ++u) {
    if (filter_.owners[u] != table[u]) notified_[u] = false;
    filter_.owners[u] = table[u];
  }
}

void PacketEngine::owners(uint16_t* out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::memcpy(out, filter_.owners.data(), sizeof(uint16_t) * kWorkUnits);
}

void PacketEngine::setRole(uint16_t localSlot, bool master, uint8_t method) {
  std::lock_guard<std::mutex> lock(mu_);
  filter_.localSlot = localSlot;
  filter_.master = master;
  filter_.method = method;
}

void PacketEngine::setSlotMac(uint16_t slot, const Mac* mac) {
  std::lock_guard<std::mutex> lock(mu_);
  if (mac) slotMacs_[slot] = *mac;
  else slotMacs_.erase(slot);
}

void PacketEngine::setClusterMac(const Mac* mac) {
  std::lock_guard<std::mutex> lock(mu_);
  config_.hasClusterMac = mac != nullptr;
  if (mac) config_.clusterMac = *mac;
}

void PacketEngine::setAnswering(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  answering_ = on;
}

void PacketEngine::hold(uint16_t unit) {
  std::lock_guard<std::mutex> lock(mu_);
  filter_.holdQueue().hold(unit);
}

bool PacketEngine::isHeld(uint16_t unit) {
  std::lock_guard<std::mutex> lock(mu_);
  return filter_.holdQueue().isHeld(unit);
}

ReleaseResult PacketEngine::release(uint16_t unit) {
  ReleaseResult r;
  std::lock_guard<std::mutex> lock(mu_);
  notified_[unit] = false;
  const std::vector<std::vector<uint8_t>> packets = filter_.holdQueue().release(unit);
  const uint16_t owner = filter_.owners[unit];
  const bool local = owner != 0 && owner == filter_.localSlot;
  auto mac = slotMacs_.find(owner);
  for (const std::vector<uint8_t>& p : packets) {
    if (local) {
      if (Reinject(p.data(), p.size())) ++r.reinjected, ++stats_.reinjected;
      else ++r.dropped, ++stats_.reinjectErrors;
    } else if (owner != 0 && mac != slotMacs_.end() && fwdFd_ >= 0) {
      if (SendToMac(p.data(), p.size(), mac->second)) ++r.forwarded, ++stats_.releasedForwarded;
      else ++r.dropped, ++stats_.forwardErrors;
    } else {
      ++r.dropped;
      ++stats_.releasedDropped;
      if (owner != 0) ++stats_.forwardNoMac;
    }
  }
  return r;
}

uint32_t PacketEngine::dropHeld(uint16_t unit) {
  std::lock_guard<std::mutex> lock(mu_);
  notified_[unit] = false;
  return filter_.holdQueue().discard(unit);
}

void PacketEngine::announce() {
  announceRequested_.store(true);
  const uint64_t one = 1;
  if (wakeFd_ >= 0 && write(wakeFd_, &one, sizeof one) < 0) { /* cannot fail below 2^64-1 */ }
}

void PacketEngine::counters(bool reset, uint64_t* packets, uint64_t* bytes, VerdictCounts* verdicts) {
  std::lock_guard<std::mutex> lock(mu_);
  std::memcpy(packets, filter_.unitPackets.data(), sizeof(uint64_t) * kWorkUnits);
  std::memcpy(bytes, filter_.unitBytes.data(), sizeof(uint64_t) * kWorkUnits);
  *verdicts = sinceReset_;
  if (reset) {
    filter_.unitPackets.fill(0);
    filter_.unitBytes.fill(0);
    sinceReset_ = VerdictCounts();
  }
}

EngineStats PacketEngine::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

FilterCounters PacketEngine::filterCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  return filter_.counters;
}

HoldStats PacketEngine::holdStats() {
  std::lock_guard<std::mutex> lock(mu_);
  return filter_.holdQueue().stats();
}

}  // namespace gwc
