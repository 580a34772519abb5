// The session table; see session_table.h and README.md ("Session table", "Coalescing rule",
// "Replicas"). The TCP rules are in tcp_tracking.cc, header parsing in parsed_packet.cc, the record
// in session.cc. No Node.js dependency.
#include "sessions/session_table.h"

#include <algorithm>
#include <cstring>

#include "filter/filter.h"
#include "sessions/parsed_packet.h"
#include "sessions/tcp_tracking.h"

namespace gwc {
namespace sess {
namespace {

const ClusterAddrs kNoCluster{};

// Two copies of one TCP connection whose versions do not order them: after a partition or a flapping
// link, two members tracked it at once, each counting its own versions, and the copy with the higher
// version may have seen less of the traffic. Both copies are past the handshake, with the same
// originator, and each direction's sequence numbers within 2^30 of each other (the same sequence
// spaces, not a new connection on the same addresses and ports).
bool sameTcpConnection(const FlowKey& k, const Session& a, const Session& b) {
  if (k.proto != 6 || a.origIsLo != b.origIsLo) return false;
  const auto live = [](const Session& s) {
    return s.state >= static_cast<uint8_t>(TcpState::Established) && s.state < static_cast<uint8_t>(TcpState::Closed);
  };
  if (!live(a) || !live(b)) return false;
  for (int d = 0; d < 2; ++d) {
    const uint32_t diff = a.dir[d].end - b.dir[d].end;
    if (diff >= (1u << 30) && diff <= 0u - (1u << 30)) return false;
  }
  return true;
}

// The furthest of two copies of one connection, field by field: each direction from the copy that saw
// that side send furthest; the edges that only ever advance (the other side's advertised right edge,
// this side's highest ack, its largest window, its latest timestamp) at their furthest; the later state.
// With one writer the newer copy is ahead everywhere and the merge is that copy.
Session mergeTcp(const Session& held, const Session& in) {
  Session m = in;
  for (int d = 0; d < 2; ++d) {
    const TcpDir& h = held.dir[d];
    const TcpDir& n = in.dir[d];
    TcpDir o = seqAfter(h.end, n.end) || (h.end == n.end && held.version > in.version) ? h : n;
    o.maxend = seqAfter(h.maxend, n.maxend) ? h.maxend : n.maxend;
    if ((h.flags & kDirAck) && (!(n.flags & kDirAck) || seqAfter(h.ackEdge, n.ackEdge))) o.ackEdge = h.ackEdge;
    else if (n.flags & kDirAck) o.ackEdge = n.ackEdge;
    if ((h.flags & kDirTsSeen) && (!(n.flags & kDirTsSeen) || seqAfter(h.tsval, n.tsval))) o.tsval = h.tsval;
    else if (n.flags & kDirTsSeen) o.tsval = n.tsval;
    o.maxwin = std::max(h.maxwin, n.maxwin);
    o.flags = static_cast<uint8_t>(h.flags | n.flags);
    m.dir[d] = o;
  }
  m.state = std::max(held.state, in.state);
  m.version = std::max(held.version, in.version);
  return m;
}

bool sameTcpProgress(const Session& a, const Session& b) {
  if (a.state != b.state) return false;
  for (int d = 0; d < 2; ++d) {
    const TcpDir& x = a.dir[d];
    const TcpDir& y = b.dir[d];
    if (x.end != y.end || x.maxend != y.maxend || x.ackEdge != y.ackEdge || x.maxwin != y.maxwin || x.tsval != y.tsval || x.flags != y.flags) return false;
  }
  return true;
}

}  // namespace

SessionTable::SessionTable(size_t maxSessions, Mode mode, Timeouts t) : max_(maxSessions), mode_(mode), to_(t) {}

size_t SessionTable::bytesPerSession() {
  // libstdc++ node: next pointer + value + cached hash; malloc rounds to 16 and adds 8..16 bytes;
  // one bucket pointer per element at load factor 1.
  const size_t node = sizeof(void*) + sizeof(std::pair<const FlowKey, Session>) + sizeof(size_t);
  return ((node + 8 + 15) / 16) * 16 + sizeof(void*);
}

uint32_t SessionTable::timeoutOf(uint8_t proto, const Session& s) const {
  if (proto == 6) return tcpTimeout(to_, s.state);
  if (proto == 17) return s.state == kReplied ? to_.udpReplied : to_.udpUnreplied;
  return s.state == kReplied ? to_.otherReplied : to_.otherUnreplied;
}

TrackResult SessionTable::finish(TrackResult r) {
  if (r.verdict == Verdict::Accept) {
    ++st_.accepted;
  } else {
    ++st_.dropped;
  }
  ++st_.reasons[static_cast<uint8_t>(r.reason)];
  return r;
}

TrackResult SessionTable::track(const uint8_t* p, size_t len, int64_t nowMs, uint16_t unit, int64_t unitGainedMs) {
  Parsed pk;
  TrackResult r;
  if (p == nullptr || !parsePacket(p, len, &pk)) {
    r.verdict = Verdict::Drop;
    r.reason = Reason::Malformed;
    return finish(r);
  }
  if (unit >= kWorkUnits) unit = classifyIp(p, len, kNoCluster).unit;  // symmetric src ^ dst rule
  r.unit = unit;
  r.proto = pk.proto;
  if (pk.fragment) {  // no transport header to track (the kernel's defrag runs before raw PREROUTING)
    r.reason = Reason::Untracked;
    return finish(r);
  }
  bool senderIsLo = true;
  const FlowKey k = flowKeyOf(pk.family, pk.proto, pk.src, pk.sport, pk.dst, pk.dport, &senderIsLo);
  r = pk.proto == 6 ? trackTcp(pk, k, senderIsLo, nowMs, unit, unitGainedMs) : trackOther(pk, k, senderIsLo, nowMs, unit);
  r.proto = pk.proto;
  r.session = map_.find(k) != map_.end();
  return finish(r);
}

void SessionTable::markChanged(const FlowKey& k, Session& s, bool urgent) {
  ++s.version;
  if (urgent) {
    if (s.dirty != Dirty::Urgent) {
      s.dirty = Dirty::Urgent;
      if (!(s.flags & kSessInUrgentQ)) {
        urgentQ_.push_back(k);
        s.flags |= kSessInUrgentQ;
      }
    }
  } else if (s.dirty == Dirty::Clean) {
    s.dirty = Dirty::Lazy;
    if (!(s.flags & kSessInLazyQ)) {
      lazyQ_.push_back(k);
      s.flags |= kSessInLazyQ;
    }
  }
}

// A session with traffic but no essential change still needs its replicas refreshed before they
// expire: once the last replicated last-seen time is older than a quarter of the timeout, a lazy
// change is recorded.
void SessionTable::maybeKeepalive(const FlowKey& k, Session& s, uint8_t proto, int64_t nowMs) {
  if ((s.flags & kSessReplica) || s.dirty != Dirty::Clean) return;
  if (nowMs - s.replSeenMs > static_cast<int64_t>(timeoutOf(proto, s) / 4)) markChanged(k, s, false);
}

void SessionTable::reportRemoval(const FlowKey& k, const Session& s) {
  if ((s.flags & kSessReplica) || !(s.flags & kSessEverSent)) return;
  if (removedQ_.size() >= std::max<size_t>(max_, 1024)) {
    ++st_.removalsDropped;
    return;
  }
  removedQ_.push_back(k);
}

// A new session (the caller checked the room) is queued for replication at once.
TrackResult SessionTable::addSession(const FlowKey& k, const Session& s, TrackResult r) {
  Session& ns = map_.emplace(k, s).first->second;
  ++st_.created;
  markChanged(k, ns, true);
  r.created = true;
  r.state = ns.state;
  return r;
}

TrackResult SessionTable::trackOther(const Parsed& pk, const FlowKey& k, bool senderIsLo, int64_t nowMs, uint16_t unit) {
  (void)pk;
  TrackResult r;
  r.unit = unit;
  auto it = map_.find(k);
  if (it == map_.end()) {
    if (map_.size() >= max_) {
      ++st_.refused;
      r.reason = Reason::Untracked;
      return r;
    }
    Session s;
    s.origIsLo = senderIsLo;
    s.state = kUnreplied;
    s.unit = unit;
    s.lastSeenMs = nowMs;
    return addSession(k, s, r);
  }
  Session& s = it->second;
  const int d = (senderIsLo == static_cast<bool>(s.origIsLo)) ? 0 : 1;
  s.lastSeenMs = nowMs;
  bool urgent = false;
  if (d == 1 && s.state == kUnreplied) {
    s.state = kReplied;
    urgent = true;
  }
  if (d == 0 && unit != kNoUnit && s.unit != unit) {
    s.unit = unit;
    urgent = true;
  }
  if (urgent) {
    s.flags &= static_cast<uint8_t>(~kSessReplica);
    markChanged(k, s, true);
  } else {
    maybeKeepalive(k, s, k.proto, nowMs);
  }
  r.state = s.state;
  r.unit = s.unit;
  return r;
}
TrackResult SessionTable::trackTcp(const Parsed& pk, const FlowKey& k, bool senderIsLo, int64_t nowMs, uint16_t unit, int64_t unitGainedMs) {
  TrackResult r;
  r.unit = unit;
  if (!validTcpFlags(pk.tflags)) {
    r.verdict = Verdict::Drop;
    r.reason = Reason::InvalidFlags;
    return r;
  }
  const bool strict = mode_ == Mode::Strict;
  auto it = map_.find(k);
  if (it == map_.end()) {
    if (!tcpOpensSession(pk, mode_)) {
      // strict: nothing but a SYN opens a session; loose: a RST of an unknown session passes untracked
      r.verdict = strict ? Verdict::Drop : Verdict::Accept;
      r.reason = strict ? Reason::NoSession : Reason::Untracked;
      return r;
    }
    if (map_.size() >= max_) {
      ++st_.refused;
      r.verdict = strict ? Verdict::Drop : Verdict::Accept;
      r.reason = strict ? Reason::TableFull : Reason::Untracked;
      return r;
    }
    Session s;
    s.unit = unit;
    s.lastSeenMs = nowMs;
    openTcpSession(s, pk, senderIsLo);
    return addSession(k, s, r);
  }

  Session& s = it->second;
  if (unitGainedMs > 0 && s.lastSeenMs < unitGainedMs) {
    // The first packet since this member (re)gained the unit: the record is another member's view.
    s.flags |= kSessStale0 | kSessStale1;
    s.installedMs = nowMs;
    ++st_.regained;
  }
  const Session before0 = s;
  int d = 0;
  const Reason why = stepTcpSession(s, pk, senderIsLo, mode_, nowMs, &d);
  if (why != Reason::None) {
    r.verdict = Verdict::Drop;
    r.reason = why;
    r.state = s.state;
    r.unit = s.unit;
    return r;
  }

  s.lastSeenMs = nowMs;
  bool urgent = false;
  if (unit != kNoUnit && s.unit != unit && (d == 0 || s.unit == kNoUnit)) {
    s.unit = unit;
    urgent = true;
  }
  const bool changed = urgent || s.state != before0.state || s.origIsLo != before0.origIsLo ||
                       std::memcmp(s.dir, before0.dir, sizeof(s.dir)) != 0;
  if (changed) {
    // The coalescing rule (README "Coalescing rule").
    if (s.state != before0.state || s.origIsLo != before0.origIsLo) urgent = true;
    for (int i = 0; i < 2 && !urgent; ++i) {
      if ((s.dir[i].flags & ~kDirTsSeen & ~kDirAck) != (before0.dir[i].flags & ~kDirTsSeen & ~kDirAck) ||
          s.dir[i].wscale != before0.dir[i].wscale || s.dir[i].mss != before0.dir[i].mss)
        urgent = true;
      // Sequence, ack and window movement alone is lazy: a replica's sequence values are trusted only
      // loosely until each side sends afresh (the window rule's stale slack), so their lag costs nothing
      // at a takeover, and urgent sends for them cost every member CPU (README "Coalescing rule").
    }
    s.flags &= static_cast<uint8_t>(~kSessReplica);  // touched by local traffic: this member replicates it now
    markChanged(k, s, urgent);
  } else {
    maybeKeepalive(k, s, 6, nowMs);
  }
  r.state = s.state;
  r.unit = s.unit;
  return r;
}

Collected SessionTable::collectChanges(size_t maxRecords, int64_t nowMs, bool lazy) {
  (void)nowMs;
  Collected c;
  size_t n = 0;
  auto drain = [&](std::vector<FlowKey>& q, Dirty min, uint8_t qflag) {
    size_t i = 0;
    for (; i < q.size() && n < maxRecords; ++i) {
      auto it = map_.find(q[i]);
      if (it == map_.end()) continue;
      Session& s = it->second;
      s.flags &= static_cast<uint8_t>(~qflag);
      if (static_cast<uint8_t>(s.dirty) < static_cast<uint8_t>(min)) continue;
      const size_t at = c.records.size();
      c.records.resize(at + kRecordSize);
      encodeRecord(it->first, s, c.records.data() + at);
      ++n;
      s.dirty = Dirty::Clean;
      s.flags |= kSessEverSent;
      for (int d = 0; d < 2; ++d) {
        s.replEnd[d] = s.dir[d].end;
        s.replAck[d] = s.dir[d].ackEdge;
      }
      s.replSeenMs = s.lastSeenMs;
    }
    q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(i));
  };
  drain(urgentQ_, Dirty::Urgent, kSessInUrgentQ);
  if (lazy) drain(lazyQ_, Dirty::Lazy, kSessInLazyQ);
  const size_t m = std::min(maxRecords, removedQ_.size());
  c.removed.resize(m * kKeySize);
  for (size_t i = 0; i < m; ++i) encodeKey(removedQ_[i], c.removed.data() + i * kKeySize);
  removedQ_.erase(removedQ_.begin(), removedQ_.begin() + static_cast<std::ptrdiff_t>(m));
  st_.recordsCollected += n;
  st_.removalsCollected += m;
  c.pendingUrgent = urgentQ_.size();
  c.pendingLazy = lazyQ_.size();
  c.pendingRemoved = removedQ_.size();
  return c;
}

InstallResult SessionTable::install(const uint8_t* records, size_t count, int64_t nowMs) {
  InstallResult res;
  for (size_t i = 0; i < count; ++i) {
    Record rec;
    if (!decodeRecord(records + i * kRecordSize, kRecordSize, &rec)) {
      ++res.invalid;
      continue;
    }
    auto it = map_.find(rec.key);
    if (it != map_.end() && sameTcpConnection(rec.key, it->second, rec.s)) {
      // Versions order the copies of one writer; two writers (a partition, a flapping link) are ordered
      // by how far each saw the connection go, so no copy ever moves a connection back in its window.
      const Session merged = mergeTcp(it->second, rec.s);
      if (rec.s.version <= it->second.version && sameTcpProgress(merged, it->second)) {
        ++res.stale;
        continue;
      }
      rec.s = merged;
    } else if (it != map_.end() && it->second.version >= rec.s.version) {
      ++res.stale;
      continue;
    }
    if (it == map_.end() && map_.size() >= max_) {
      ++res.refused;
      continue;
    }
    Session s = rec.s;
    s.flags = static_cast<uint8_t>((s.flags & kSessPickedUp) | kSessReplica | kSessStale0 | kSessStale1 | kSessEverSent);
    s.dirty = Dirty::Clean;
    s.lastSeenMs = nowMs;  // the local clock restarts the replica's idle timer (README "Replicas")
    for (int d = 0; d < 2; ++d) {
      s.replEnd[d] = s.dir[d].end;
      s.replAck[d] = s.dir[d].ackEdge;
    }
    s.replSeenMs = nowMs;
    s.installedMs = nowMs;
    if (it == map_.end()) {
      map_.emplace(rec.key, s);
      ++res.installed;
    } else {
      s.flags |= it->second.flags & (kSessInUrgentQ | kSessInLazyQ);
      it->second = s;
      ++res.updated;
    }
  }
  st_.installed += res.installed + res.updated;
  st_.installStale += res.stale;
  st_.installInvalid += res.invalid;
  st_.installRefused += res.refused;
  return res;
}

size_t SessionTable::remove(const uint8_t* keys, size_t count) {
  size_t n = 0;
  for (size_t i = 0; i < count; ++i) {
    FlowKey k;
    if (!decodeKey(keys + i * kKeySize, kKeySize, &k)) continue;
    n += map_.erase(k);
  }
  st_.removed += n;
  return n;
}

size_t SessionTable::expire(int64_t nowMs) {
  size_t n = 0;
  for (auto it = map_.begin(); it != map_.end();) {
    if (nowMs - it->second.lastSeenMs > static_cast<int64_t>(timeoutOf(it->first.proto, it->second))) {
      reportRemoval(it->first, it->second);
      it = map_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  st_.expired += n;
  return n;
}

bool SessionTable::refreshOffloaded(const FlowKey& k, bool senderIsLo, const OffloadedDirection& p) {
  auto it = map_.find(k);
  if (it == map_.end()) return false;
  Session& s = it->second;
  if (k.proto == 6 && s.state != static_cast<uint8_t>(TcpState::Established)) return false;
  if (!p.seen) return true;
  if (p.seenMs > s.lastSeenMs) s.lastSeenMs = p.seenMs;
  ++st_.offloadRefreshed;
  if (k.proto != 6) {
    maybeKeepalive(k, s, k.proto, s.lastSeenMs);
    return true;
  }
  const int d = (senderIsLo == static_cast<bool>(s.origIsLo)) ? 0 : 1;
  TcpDir before[2] = {s.dir[0], s.dir[1]};
  TcpDir& S = s.dir[d];
  TcpDir& R = s.dir[1 - d];
  // The packet passed the kernel's checks; these are stepTcpSession's updates for an accepted segment
  // without SYN, FIN or RST (tcp_tracking.cc).
  if (!seqBefore(p.end, S.end)) s.flags &= static_cast<uint8_t>(~(d == 0 ? kSessStale0 : kSessStale1));
  if (seqAfter(p.end, S.end)) S.end = p.end;
  if (p.tcpFlags & 0x10) {  // ACK
    const uint32_t win = static_cast<uint32_t>(p.window) << S.wscale;
    if (seqAfter(p.ack, R.end)) R.end = p.ack;
    if (!(S.flags & kDirAck) || !seqBefore(p.ack, S.ackEdge)) {
      S.ackEdge = p.ack;
      S.flags |= kDirAck;
      S.window = win;
    }
    if (win > S.maxwin) S.maxwin = win;
    const uint32_t edge = p.ack + (win ? win : 1);
    if (seqAfter(edge, R.maxend)) R.maxend = edge;
  }
  if (std::memcmp(before, s.dir, sizeof(s.dir)) != 0) {
    s.flags &= static_cast<uint8_t>(~kSessReplica);
    markChanged(k, s, false);  // sequence movement alone is lazy (the coalescing rule)
  } else {
    maybeKeepalive(k, s, 6, s.lastSeenMs);
  }
  return true;
}

std::vector<uint8_t> SessionTable::sessionsForUnits(const uint8_t* bitmap) const {
  std::vector<uint8_t> out;
  for (const auto& [k, s] : map_) {
    if (s.unit >= kWorkUnits || !(bitmap[s.unit >> 3] & (1u << (s.unit & 7)))) continue;
    const size_t at = out.size();
    out.resize(at + kRecordSize);
    encodeRecord(k, s, out.data() + at);
  }
  return out;
}

std::vector<uint8_t> SessionTable::list(const ListQuery& q, size_t* total) const {
  std::vector<uint8_t> out;
  size_t matched = 0;
  for (const auto& [k, s] : map_) {
    if (q.unit >= 0 && s.unit != q.unit) continue;
    if (q.proto >= 0 && k.proto != q.proto) continue;
    if (q.port >= 0 && k.portLo != q.port && k.portHi != q.port) continue;
    if (q.addrFamily && (k.family != q.addrFamily || (k.addrLo != q.addr && k.addrHi != q.addr))) continue;
    if (matched >= q.offset && matched - q.offset < q.limit) {
      const size_t at = out.size();
      out.resize(at + kRecordSize);
      encodeRecord(k, s, out.data() + at);
    }
    ++matched;
  }
  *total = matched;
  return out;
}

const Session* SessionTable::find(const FlowKey& k) const {
  auto it = map_.find(k);
  return it == map_.end() ? nullptr : &it->second;
}

TableStats SessionTable::stats() const {
  TableStats t = st_;
  t.sessions = map_.size();
  t.tcp = t.udp = t.other = t.replicas = 0;
  for (const auto& [k, s] : map_) {
    if (k.proto == 6) ++t.tcp;
    else if (k.proto == 17) ++t.udp;
    else ++t.other;
    if (s.flags & kSessReplica) ++t.replicas;
  }
  return t;
}

}  // namespace sess
}  // namespace gwc
