// The packet engine's queue part: set-up and tear-down, the engine thread (poll loop), reading the
// NFQUEUE, the verdict of each queued packet, batched verdicts, events, and the JS thread's calls.
// ARP: arp.cc; forwarding and reinjection: forwarding.cc. See packet_engine.h.
#include "engine/packet_engine.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libnfnetlink/libnfnetlink.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace gwc {
namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr int kIdleReads = 32;  // empty reads tolerated within a burst before the verdicts go out
constexpr size_t kRecvBufBytes = 0xffff + 4096;  // one copied packet (copy range 0xffff) + netlink headers

}  // namespace

PacketEngine::PacketEngine(EngineConfig config, EventSink sink)
    : config_(std::move(config)), sink_(std::move(sink)), filter_(config_.hold) {
  filter_.cluster = config_.cluster;
  filter_.localSlot = config_.localSlot;
  filter_.master = config_.master;
  filter_.method = config_.method;
  try {
    wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd_ < 0) throwOsError("eventfd", "");

    OpenForwarding();
    OpenArpPorts();

    nfq_ = nfq_open();
    if (!nfq_) throwOsError("nfq_open", "");
    qh_ = nfq_create_queue(nfq_, config_.queueNum, &PacketEngine::OnQueuedPacket, this);
    if (!qh_) throwOsError("nfq_create_queue", "queue " + std::to_string(config_.queueNum));
    if (nfq_set_mode(qh_, NFQNL_COPY_PACKET, 0xffff) < 0) throwOsError("nfq_set_mode", "NFQNL_COPY_PACKET");
    if (nfq_set_queue_maxlen(qh_, config_.queueMaxLen) < 0) throwOsError("nfq_set_queue_maxlen", std::to_string(config_.queueMaxLen));
    // Fail-open OFF (mask FAIL_OPEN, value 0): a full queue drops instead of accepting unfiltered.
    if (nfq_set_queue_flags(qh_, NFQA_CFG_F_FAIL_OPEN, 0) < 0) throwOsError("nfq_set_queue_flags", "FAIL_OPEN off");
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
void PacketEngine::FlushVerdicts() {
  uint64_t errors = 0;
  for (size_t i = 0; i < pending_.size();) {
    size_t j = i;
    while (j + 1 < pending_.size() && pending_[j + 1].verdict == pending_[i].verdict) ++j;
    // Accepted packets carry kAcceptMark: the netfilter guard tells them from packets the queue let
    // through with no engine reading it (a dead daemon; daemon dataplane/netfilter.ts).
    const uint32_t v = pending_[i].verdict;
    const int rc = v == NF_ACCEPT
                       ? (j == i ? nfq_set_verdict2(qh_, pending_[i].id, v, kAcceptMark, 0, nullptr)
                                 : nfq_set_verdict_batch2(qh_, pending_[j].id, v, kAcceptMark))
                       : (j == i ? nfq_set_verdict(qh_, pending_[i].id, v, 0, nullptr)
                                 : nfq_set_verdict_batch(qh_, pending_[j].id, v));
    if (rc < 0) ++errors;
    i = j + 1;
  }
  pending_.clear();
  if (errors) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.verdictErrors += errors;
  }
  if (!pendingOffloads_.empty()) {
    std::vector<std::shared_ptr<FlowOffload>> targets;
    {
      std::lock_guard<std::mutex> lock(mu_);
      targets = flowOffloads_;
    }
    // Outside the lock (system calls).
    for (const PendingOffload& p : pendingOffloads_)
      for (const auto& f : targets) f->offload(p.headers.data(), p.headers.size(), p.unit);
    pendingOffloads_.clear();
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
  bool offload = false;
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
          if (!self->TrackOwnedLocked(payload, len, c.unit, &offload)) {
            for (auto* vc : counts) ++vc->dropped;
            break;
          }
          offload = offload && !self->flowOffloads_.empty();
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
  // After this batch's verdicts (FlushVerdicts): the flow's further packets pass in the kernel.
  if (offload) self->pendingOffloads_.push_back({c.unit, std::vector<uint8_t>(payload, payload + std::min<size_t>(len, 128))});
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


// ---- the JS thread ----

bool PacketEngine::TrackOwnedLocked(const uint8_t* p, size_t len, uint16_t unit, bool* offload) {
  const int64_t nowMs = WallMs();
  const int64_t gained = unit < kWorkUnits ? gainedMs_[unit] : 0;
  sess::TrackResult tr;
  {
    std::lock_guard<std::mutex> sl(sessions_->mutex());
    tr = sessions_->track(p, len, nowMs, unit, gained);
  }
  ++stats_.sessionTracked;
  if (tr.verdict != sess::Verdict::Drop) {
    // Established TCP (the flow map refuses SYN/FIN/RST segments) or a UDP session: the kernel may
    // pass the flow's next packets (kernel path).
    if (offload && tr.session && unit < kWorkUnits &&
        ((tr.proto == 6 && tr.state == static_cast<uint8_t>(sess::TcpState::Established)) || tr.proto == 17))
      *offload = true;
    return true;
  }
  ++stats_.sessionDrops;
  if (tr.reason == sess::Reason::NoSession) ++stats_.sessionDropNoSession;
  if (tr.reason == sess::Reason::OutOfWindow) ++stats_.sessionDropWindow;
  return false;
}

void PacketEngine::NoteOwnerLocked(size_t unit, uint16_t slot, int64_t nowMs) {
  if (filter_.owners[unit] == slot) return;
  notified_[unit] = false;
  if (slot == filter_.localSlot && filter_.localSlot != 0) gainedMs_[unit] = nowMs;
  filter_.owners[unit] = slot;
}

void PacketEngine::setOwner(uint16_t unit, uint16_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  NoteOwnerLocked(unit, slot, WallMs());
}

void PacketEngine::setOwners(const uint16_t* units, size_t n, uint16_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = WallMs();
  for (size_t i = 0; i < n; ++i) NoteOwnerLocked(units[i], slot, now);
}

void PacketEngine::setTable(const uint16_t* table) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = WallMs();
  for (size_t u = 0; u < kWorkUnits; ++u) NoteOwnerLocked(u, table[u], now);
}

void PacketEngine::owners(uint16_t* out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::memcpy(out, filter_.owners.data(), sizeof(uint16_t) * kWorkUnits);
}

void PacketEngine::setRole(uint16_t localSlot, bool master, uint8_t method) {
  std::lock_guard<std::mutex> lock(mu_);
  if (localSlot != filter_.localSlot && localSlot != 0) {
    // A new slot: the units the table already gives it are gained now.
    const int64_t now = WallMs();
    for (size_t u = 0; u < kWorkUnits; ++u)
      if (filter_.owners[u] == localSlot) gainedMs_[u] = now;
  }
  filter_.localSlot = localSlot;
  filter_.master = master;
  filter_.method = method;
}

void PacketEngine::setSessions(sess::SessionTable* table) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_ = table;
}

void PacketEngine::setFlowOffloads(std::vector<std::shared_ptr<FlowOffload>> flows) {
  std::lock_guard<std::mutex> lock(mu_);
  flowOffloads_ = std::move(flows);
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
