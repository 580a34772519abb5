// The session table; see session_table.h and README.md ("Session table", "Session records",
// "Window rule", "Coalescing rule"). No Node.js dependency.
#include "sessions/session_table.h"

#include <algorithm>
#include <cstring>

#include "filter/filter.h"

namespace gwc {
namespace sess {
namespace {

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}
inline void le16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t rd64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Sequence-space comparisons (RFC 1982 serial arithmetic on 32 bits).
inline bool before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
inline bool after(uint32_t a, uint32_t b) { return before(b, a); }
inline uint32_t dist(uint32_t a, uint32_t b) {
  const int32_t d = static_cast<int32_t>(a - b);
  return d < 0 ? static_cast<uint32_t>(-static_cast<int64_t>(d)) : static_cast<uint32_t>(d);
}

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint32_t kMaxAckWinConst = 66000;  // nf_conntrack_proto_tcp MAXACKWINCONST
constexpr uint32_t kMinStaleSlack = 65536;
constexpr int64_t kInstallGraceMs = 2000;  // see Session::installedMs

const ClusterAddrs kNoCluster{};

}  // namespace

// A parsed IP packet: the fields the tracker reads.
struct Parsed {
  uint8_t family = 0, proto = 0;
  bool fragment = false;
  std::array<uint8_t, 16> src{}, dst{};
  uint16_t sport = 0, dport = 0;
  // TCP
  uint32_t seq = 0, ack = 0, payload = 0;
  uint16_t win = 0;
  uint8_t tflags = 0;
  // TCP options (SYN: MSS, WS, SACK permitted; any: timestamps)
  uint8_t optFlags = 0;  // kDirWs | kDirSack | kDirTs | kDirMss
  uint16_t mss = 0;
  uint8_t wscale = 0;
  uint32_t tsval = 0;
};

namespace {

void parseTcpOptions(const uint8_t* o, size_t n, Parsed* pk) {
  size_t i = 0;
  while (i < n) {
    const uint8_t kind = o[i];
    if (kind == 0) break;       // end of option list
    if (kind == 1) {            // NOP
      ++i;
      continue;
    }
    if (i + 1 >= n) break;
    const size_t l = o[i + 1];
    if (l < 2 || i + l > n) break;  // malformed option list: stop reading, keep what was parsed
    if (kind == 2 && l == 4) {
      pk->mss = be16(o + i + 2);
      pk->optFlags |= kDirMss;
    } else if (kind == 3 && l == 3) {
      pk->wscale = std::min<uint8_t>(o[i + 2], 14);  // RFC 7323 2.3: larger values are treated as 14
      pk->optFlags |= kDirWs;
    } else if (kind == 4 && l == 2) {
      pk->optFlags |= kDirSack;
    } else if (kind == 8 && l == 10) {
      pk->tsval = be32(o + i + 2);
      pk->optFlags |= kDirTs;
    }
    i += l;
  }
}

// Returns false when the packet is not a well-formed IPv4/IPv6 datagram with a complete transport
// header (TCP: 20 bytes, data offset; UDP: 8 bytes, length). Fragments: network layer only.
bool parse(const uint8_t* p, size_t len, Parsed* pk) {
  if (len < 1) return false;
  const uint8_t* l4 = nullptr;
  size_t l4len = 0;
  const uint8_t v = p[0] >> 4;
  if (v == 4) {
    if (len < 20) return false;
    const size_t hl = static_cast<size_t>(p[0] & 0x0F) * 4;
    if (hl < 20 || hl > len) return false;
    const size_t tot = be16(p + 2);
    if (tot < hl || tot > len) return false;
    pk->family = 4;
    pk->proto = p[9];
    std::memcpy(pk->src.data(), p + 12, 4);
    std::memcpy(pk->dst.data(), p + 16, 4);
    if (be16(p + 6) & 0x3FFF) {
      pk->fragment = true;
      return true;
    }
    l4 = p + hl;
    l4len = tot - hl;
  } else if (v == 6) {
    if (len < 40) return false;
    const size_t end = 40 + static_cast<size_t>(be16(p + 4));
    if (end > len) return false;
    pk->family = 6;
    std::memcpy(pk->src.data(), p + 8, 16);
    std::memcpy(pk->dst.data(), p + 24, 16);
    uint8_t nh = p[6];
    size_t off = 40;
    int walked = 0;
    for (;;) {
      size_t hlen;
      if (nh == 0 || nh == 43 || nh == 60 || nh == 51) {
        if (walked == kMaxIpv6ExtHeaders || off + 2 > end) return false;
        hlen = nh == 51 ? (static_cast<size_t>(p[off + 1]) + 2) * 4 : (static_cast<size_t>(p[off + 1]) + 1) * 8;
      } else if (nh == 44) {
        if (walked == kMaxIpv6ExtHeaders || off + 8 > end) return false;
        pk->proto = p[off];
        pk->fragment = true;
        return true;
      } else {
        break;
      }
      if (off + hlen > end) return false;
      nh = p[off];
      off += hlen;
      ++walked;
    }
    pk->proto = nh;
    l4 = p + off;
    l4len = end - off;
  } else {
    return false;
  }
  if (pk->proto == 6) {
    if (l4len < 20) return false;
    const size_t doff = static_cast<size_t>(l4[12] >> 4) * 4;
    if (doff < 20 || doff > l4len) return false;
    pk->sport = be16(l4);
    pk->dport = be16(l4 + 2);
    pk->seq = be32(l4 + 4);
    pk->ack = be32(l4 + 8);
    pk->tflags = l4[13] & 0x3F;
    pk->win = be16(l4 + 14);
    pk->payload = static_cast<uint32_t>(l4len - doff);
    parseTcpOptions(l4 + 20, doff - 20, pk);
  } else if (pk->proto == 17) {
    if (l4len < 8) return false;
    const size_t ulen = be16(l4 + 4);
    if (ulen < 8 || ulen > l4len) return false;
    pk->sport = be16(l4);
    pk->dport = be16(l4 + 2);
  }
  return true;
}

// Canonical key; *senderIsLo tells whether the packet's source is the key's lower endpoint.
FlowKey keyOf(uint8_t family, uint8_t proto, const std::array<uint8_t, 16>& a, uint16_t pa,
              const std::array<uint8_t, 16>& b, uint16_t pb, bool* aIsLo) {
  const int c = std::memcmp(a.data(), b.data(), 16);
  const bool lo = c < 0 || (c == 0 && pa <= pb);
  FlowKey k;
  k.family = family;
  k.proto = proto;
  k.addrLo = lo ? a : b;
  k.addrHi = lo ? b : a;
  k.portLo = lo ? pa : pb;
  k.portHi = lo ? pb : pa;
  *aIsLo = lo;
  return k;
}

bool validTcpFlags(uint8_t f) {
  if ((f & kSyn) && (f & (kRst | kFin))) return false;
  if (!(f & (kSyn | kRst | kAck))) return false;  // null, or FIN/PSH/URG without ACK
  return true;
}

// The window shift in effect for side d's window field: only when both SYNs carried the option.
inline uint8_t shiftOf(const Session& s, int d) {
  return ((s.dir[0].flags & kDirWs) && (s.dir[1].flags & kDirWs)) ? s.dir[d].wscale : 0;
}

// Initializes side t from its SYN (or SYN-ACK): sequence space, options, unscaled window.
void initFromSyn(TcpDir& t, const Parsed& pk) {
  t = TcpDir{};
  t.end = pk.seq + 1 + pk.payload + ((pk.tflags & kFin) ? 1 : 0);
  t.maxend = t.end;
  t.window = pk.win;  // never scaled in a SYN (RFC 7323 2.2)
  t.maxwin = std::max<uint32_t>(pk.win, 1);
  t.wl1 = pk.seq;
  t.flags = static_cast<uint8_t>(kDirSyn | (pk.optFlags & kDirOptMask));
  t.mss = pk.mss;
  t.wscale = pk.wscale;
  if (pk.optFlags & kDirTs) {
    t.tsval = pk.tsval;
    t.flags |= kDirTsSeen;
  }
  if (pk.tflags & kAck) {
    t.ackEdge = pk.ack;
    t.flags |= kDirAck;
  }
}

// Side t seen mid-stream (loose pick-up): sequence space from this packet, no options known.
void initMidStream(TcpDir& t, const Parsed& pk) {
  t = TcpDir{};
  t.end = pk.seq + pk.payload + ((pk.tflags & kFin) ? 1 : 0);
  t.maxend = t.end + std::max<uint32_t>(pk.win, 1);
  t.window = pk.win;
  t.maxwin = std::max<uint32_t>(pk.win, 1);
  t.wl1 = pk.seq;
  t.flags = kDirSyn;
  if (pk.tflags & kAck) {
    t.ackEdge = pk.ack;
    t.flags |= kDirAck;
  }
  if (pk.optFlags & kDirTs) {
    t.tsval = pk.tsval;
    t.flags |= kDirTsSeen;
  }
}

inline uint8_t staleBit(int d) { return d == 0 ? kSessStale0 : kSessStale1; }

}  // namespace

size_t FlowKeyHash::operator()(const FlowKey& k) const {
  uint64_t w[5] = {0, 0, 0, 0, 0};
  w[0] = static_cast<uint64_t>(k.family) | (static_cast<uint64_t>(k.proto) << 8) |
         (static_cast<uint64_t>(k.portLo) << 16) | (static_cast<uint64_t>(k.portHi) << 32);
  std::memcpy(&w[1], k.addrLo.data(), 16);
  std::memcpy(&w[3], k.addrHi.data(), 16);
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (uint64_t x : w) {
    h ^= x;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return static_cast<size_t>(h);
}

// ---------------------------------------------------------------------------------------------
// Records

void encodeKey(const FlowKey& k, uint8_t* o) {
  std::memset(o, 0, kKeySize);
  o[0] = k.family;
  o[1] = k.proto;
  le16(o + 2, k.portLo);
  le16(o + 4, k.portHi);
  std::memcpy(o + 8, k.addrLo.data(), 16);
  std::memcpy(o + 24, k.addrHi.data(), 16);
}

bool decodeKey(const uint8_t* p, size_t len, FlowKey* k) {
  if (len < kKeySize || (p[0] != 4 && p[0] != 6) || p[6] != 0 || p[7] != 0) return false;
  k->family = p[0];
  k->proto = p[1];
  k->portLo = rd16(p + 2);
  k->portHi = rd16(p + 4);
  std::memcpy(k->addrLo.data(), p + 8, 16);
  std::memcpy(k->addrHi.data(), p + 24, 16);
  return true;
}

void encodeRecord(const FlowKey& k, const Session& s, uint8_t* o) {
  std::memset(o, 0, kRecordSize);
  const TcpDir& d0 = s.dir[0];
  const TcpDir& d1 = s.dir[1];
  o[0] = kRecordFormat;
  o[1] = k.family;
  o[2] = k.proto;
  o[3] = s.state;
  le16(o + 4, s.unit);
  if (k.proto == 6) {
    uint8_t f = 0;  // Figure 7 flags, BSD t_flags names
    if (!((d0.flags | d1.flags) & kDirOptMask)) f |= 0x02;  // TF_NOOPT
    if (d0.flags & kDirWs) f |= 0x04;                        // TF_REQ_SCALE
    if (d1.flags & kDirWs) f |= 0x08;                        // TF_RCVD_SCALE
    if (d0.flags & kDirTs) f |= 0x10;                        // TF_REQ_TSTMP
    if (d1.flags & kDirTs) f |= 0x20;                        // TF_RCVD_TSTMP
    if ((d0.flags & kDirSack) && (d1.flags & kDirSack)) f |= 0x40;  // TF_SACK_PERMIT
    o[6] = f;                                                // bit 0 TF_NODELAY: always 0
  }
  o[7] = s.flags & kSessPickedUp;
  le32(o + 8, s.version);
  le64(o + 12, static_cast<uint64_t>(s.lastSeenMs));
  const bool lo = s.origIsLo;
  std::memcpy(o + 20, (lo ? k.addrLo : k.addrHi).data(), 16);
  std::memcpy(o + 36, (lo ? k.addrHi : k.addrLo).data(), 16);
  le16(o + 52, lo ? k.portLo : k.portHi);
  le16(o + 54, lo ? k.portHi : k.portLo);
  if (k.proto != 6) return;
  le16(o + 56, d0.mss);
  le16(o + 58, d1.mss);
  le32(o + 60, d0.end);      // snd_nxt
  le32(o + 64, d1.wl1);      // snd_wl1
  le32(o + 68, d1.ackEdge);  // snd_wl2
  le32(o + 72, d1.window);   // snd_wnd
  le32(o + 76, d1.end);      // rcv_nxt
  le32(o + 80, d1.maxend);   // rcv_adv
  o[84] = d1.wscale;         // snd_scale
  o[85] = d0.wscale;         // rcv_scale
  o[86] = d0.flags;
  o[87] = d1.flags;
  le32(o + 88, d1.tsval);    // ts_recent
  le32(o + 92, d0.tsval);
  le32(o + 96, d0.window);
  le32(o + 100, d0.ackEdge);
  le32(o + 104, d0.maxwin);
  le32(o + 108, d1.maxwin);
}

bool decodeRecord(const uint8_t* p, size_t len, Record* r) {
  if (len < kRecordSize || p[0] != kRecordFormat) return false;
  const uint8_t family = p[1], proto = p[2], state = p[3];
  if (family != 4 && family != 6) return false;
  if (proto == 6 ? state >= kTcpStateCount || state == 0 : state > kReplied) return false;
  if (p[7] & ~kSessPickedUp) return false;
  std::array<uint8_t, 16> a{}, b{};
  std::memcpy(a.data(), p + 20, 16);
  std::memcpy(b.data(), p + 36, 16);
  if (family == 4)
    for (int i = 4; i < 16; ++i)
      if (a[i] || b[i]) return false;
  const uint16_t unit = rd16(p + 4);
  if (unit >= kWorkUnits && unit != kNoUnit) return false;
  bool origIsLo = true;
  r->key = keyOf(family, proto, a, rd16(p + 52), b, rd16(p + 54), &origIsLo);
  Session& s = r->s;
  s = Session{};
  s.origIsLo = origIsLo;
  s.state = state;
  s.unit = unit;
  s.flags = p[7] & kSessPickedUp;
  s.version = rd32(p + 8);
  r->lastSeenMs = static_cast<int64_t>(rd64(p + 12));
  s.lastSeenMs = r->lastSeenMs;
  if (proto != 6) return true;
  TcpDir& d0 = s.dir[0];
  TcpDir& d1 = s.dir[1];
  d0.mss = rd16(p + 56);
  d1.mss = rd16(p + 58);
  d0.end = rd32(p + 60);
  d1.wl1 = rd32(p + 64);
  d1.ackEdge = rd32(p + 68);
  d1.window = rd32(p + 72);
  d1.end = rd32(p + 76);
  d1.maxend = rd32(p + 80);
  d1.wscale = std::min<uint8_t>(p[84], 14);
  d0.wscale = std::min<uint8_t>(p[85], 14);
  d0.flags = p[86];
  d1.flags = p[87];
  d1.tsval = rd32(p + 88);
  d0.tsval = rd32(p + 92);
  d0.window = rd32(p + 96);
  d0.ackEdge = rd32(p + 100);
  d0.maxwin = rd32(p + 104);
  d1.maxwin = rd32(p + 108);
  // Not carried (derived): the responder's advertised right edge for the originator's data, and
  // the originator's window-update sequence.
  d0.maxend = (d1.flags & kDirAck) ? d1.ackEdge + std::max<uint32_t>(d1.window, 1) : d0.end;
  d0.wl1 = d0.end;
  return true;
}

// ---------------------------------------------------------------------------------------------
// The table

SessionTable::SessionTable(size_t maxSessions, Mode mode, Timeouts t) : max_(maxSessions), mode_(mode), to_(t) {}

size_t SessionTable::bytesPerSession() {
  // libstdc++ node: next pointer + value + cached hash; malloc rounds to 16 and adds 8..16 bytes;
  // one bucket pointer per element at load factor 1.
  const size_t node = sizeof(void*) + sizeof(std::pair<const FlowKey, Session>) + sizeof(size_t);
  return ((node + 8 + 15) / 16) * 16 + sizeof(void*);
}

uint32_t SessionTable::timeoutOf(uint8_t proto, const Session& s) const {
  if (proto == 6) {
    switch (static_cast<TcpState>(s.state)) {
      case TcpState::SynSent: return to_.synSent;
      case TcpState::SynRecv: return to_.synRecv;
      case TcpState::Established: return to_.established;
      case TcpState::FinWait: return to_.finWait;
      case TcpState::Closing: return to_.closing;
      case TcpState::TimeWait: return to_.timeWait;
      case TcpState::Closed: return to_.closed;
      default: return to_.closed;
    }
  }
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

TrackResult SessionTable::track(const uint8_t* p, size_t len, int64_t nowMs, uint16_t unit) {
  Parsed pk;
  TrackResult r;
  if (p == nullptr || !parse(p, len, &pk)) {
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
  const FlowKey k = keyOf(pk.family, pk.proto, pk.src, pk.sport, pk.dst, pk.dport, &senderIsLo);
  r = pk.proto == 6 ? trackTcp(pk, k, senderIsLo, nowMs, unit) : trackOther(pk, k, senderIsLo, nowMs, unit);
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
    Session& ns = map_.emplace(k, s).first->second;
    ++st_.created;
    markChanged(k, ns, true);
    r.created = true;
    r.state = ns.state;
    return r;
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

TrackResult SessionTable::trackTcp(const Parsed& pk, const FlowKey& k, bool senderIsLo, int64_t nowMs, uint16_t unit) {
  TrackResult r;
  r.unit = unit;
  const uint8_t f = pk.tflags;
  if (!validTcpFlags(f)) {
    r.verdict = Verdict::Drop;
    r.reason = Reason::InvalidFlags;
    return r;
  }
  const bool strict = mode_ == Mode::Strict;
  const bool syn = f & kSyn, ack = f & kAck, rst = f & kRst, fin = f & kFin;
  auto it = map_.find(k);
  if (it == map_.end()) {
    const bool synOnly = syn && !ack;
    if (!synOnly && (strict || rst)) {
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
    if (synOnly) {
      s.origIsLo = senderIsLo;
      s.state = static_cast<uint8_t>(TcpState::SynSent);
      initFromSyn(s.dir[0], pk);
    } else {
      // Loose pick-up (nf_conntrack_tcp_loose): a SYN-ACK names the receiver as the originator;
      // otherwise the sender is taken as the originator. Window checks never apply to it.
      s.flags |= kSessPickedUp;
      if (syn) {
        s.origIsLo = !senderIsLo;
        s.state = static_cast<uint8_t>(TcpState::SynRecv);
        initFromSyn(s.dir[1], pk);
        s.dir[0].end = pk.ack;
        s.dir[0].maxend = pk.ack + std::max<uint32_t>(pk.win, 1);
        s.dir[0].flags = kDirSyn;
      } else {
        s.origIsLo = senderIsLo;
        s.state = static_cast<uint8_t>(fin ? TcpState::FinWait : TcpState::Established);
        initMidStream(s.dir[0], pk);
        if (fin) s.dir[0].flags |= kDirFin;
      }
    }
    Session& ns = map_.emplace(k, s).first->second;
    ++st_.created;
    markChanged(k, ns, true);
    r.created = true;
    r.state = ns.state;
    return r;
  }

  Session& s = it->second;
  const Session before0 = s;
  int d = (senderIsLo == static_cast<bool>(s.origIsLo)) ? 0 : 1;
  const bool pickedUp = s.flags & kSessPickedUp;

  auto drop = [&](Reason why) {
    r.verdict = Verdict::Drop;
    r.reason = why;
    r.state = s.state;
    r.unit = s.unit;
    return r;
  };

  const TcpState st = static_cast<TcpState>(s.state);
  if (syn && !ack) {
    if (d == 0 && st == TcpState::SynSent) {
      initFromSyn(s.dir[0], pk);  // retransmitted SYN (or a new ISN for the same ports)
    } else if (st == TcpState::TimeWait || st == TcpState::Closed) {
      // Port reuse: a new connection replaces the old one (conntrack reopens from TIME_WAIT/CLOSE).
      const uint8_t keep = s.flags & (kSessEverSent | kSessInUrgentQ | kSessInLazyQ);
      s.origIsLo = senderIsLo;
      s.flags = keep;
      s.state = static_cast<uint8_t>(TcpState::SynSent);
      s.dir[0] = TcpDir{};
      s.dir[1] = TcpDir{};
      initFromSyn(s.dir[0], pk);
      d = 0;
    } else if (!strict) {
      // loose: tolerated, no change
    } else {
      return drop(Reason::UnexpectedSyn);
    }
  } else if (syn) {  // SYN-ACK
    if (d == 1 && (st == TcpState::SynSent || st == TcpState::SynRecv)) {
      if (strict && !pickedUp && pk.ack != s.dir[0].end) return drop(Reason::OutOfWindow);
      initFromSyn(s.dir[1], pk);
      s.dir[1].maxend = s.dir[1].end + std::max<uint32_t>(s.dir[0].window, 1);
      const uint32_t edge = pk.ack + std::max<uint32_t>(pk.win, 1);
      if (after(edge, s.dir[0].maxend)) s.dir[0].maxend = edge;
      s.state = static_cast<uint8_t>(TcpState::SynRecv);
    } else if (d == 1 && (s.dir[1].flags & kDirSyn) && before(pk.seq, s.dir[1].end) &&
               !after(pk.ack, s.dir[0].end)) {
      // retransmitted SYN-ACK (its ACK was lost): no change
    } else if (strict && !pickedUp) {
      return drop(Reason::UnexpectedSyn);
    }
  } else {
    TcpDir& S = s.dir[d];
    TcpDir& R = s.dir[1 - d];
    if (!(S.flags & kDirSyn)) {
      // This side's sequence space is unknown (no SYN-ACK seen yet).
      if (rst && d == 1 && st == TcpState::SynSent && ack && pk.ack == s.dir[0].end) {
        s.state = static_cast<uint8_t>(TcpState::Closed);  // connection refused
      } else if (!strict || pickedUp) {
        initMidStream(S, pk);
      } else {
        return drop(st == TcpState::SynSent ? Reason::OutOfWindow : Reason::NoSession);
      }
    } else {
      const uint32_t win = static_cast<uint32_t>(pk.win) << shiftOf(s, d);
      const uint32_t end = pk.seq + pk.payload + (fin ? 1 : 0);
      if (strict && !pickedUp && !(R.flags & kDirSyn) && !rst) {
        return drop(Reason::OutOfWindow);  // the originator may send only SYNs (or RST) before the SYN-ACK
      }
      if (strict && !pickedUp && (R.flags & kDirSyn)) {
        // The window rule (README "Window rule").
        uint32_t slack = 0;
        const bool recentlyInstalled = s.installedMs != 0 && nowMs - s.installedMs < kInstallGraceMs;
        if ((s.flags & staleBit(1 - d)) || recentlyInstalled) slack = std::max({S.maxwin, R.maxwin, kMinStaleSlack});
        const uint32_t lowerRef = (R.flags & kDirAck) ? R.ackEdge : S.end;
        const bool upperOk = !after(pk.seq, S.maxend + slack);
        const bool lowerOk = !before(end, lowerRef - std::max<uint32_t>(R.maxwin, 1) - slack);
        bool ackOk = true;
        if (ack) {
          const uint32_t maxAckWin = std::max(S.maxwin, kMaxAckWinConst);
          ackOk = !after(pk.ack, R.end + slack) && !before(pk.ack, R.end - maxAckWin - slack);
        }
        if (!(upperOk && lowerOk && ackOk)) return drop(Reason::OutOfWindow);
      }
      if (!before(end, S.end)) s.flags &= static_cast<uint8_t>(~staleBit(d));  // fresh (not a retransmission)
      if (after(end, S.end)) S.end = end;
      if (ack) {
        if (!(S.flags & kDirAck) || !before(pk.ack, S.ackEdge)) {
          S.ackEdge = pk.ack;
          S.flags |= kDirAck;
          S.window = win;  // window update: the segment does not carry an older ack
          S.wl1 = pk.seq;
        }
        if (win > S.maxwin) S.maxwin = win;
        const uint32_t edge = pk.ack + (win ? win : 1);
        if (after(edge, R.maxend)) R.maxend = edge;
      }
      if ((pk.optFlags & kDirTs) && (S.flags & kDirTs) && (R.flags & kDirTs) &&
          (!(S.flags & kDirTsSeen) || after(pk.tsval, S.tsval))) {
        S.tsval = pk.tsval;
        S.flags |= kDirTsSeen;
      }
      if (st != TcpState::Closed) {
        if (rst) {
          s.state = static_cast<uint8_t>(TcpState::Closed);
        } else {
          if (fin) S.flags |= kDirFin;
          TcpDir& O = s.dir[0];
          TcpDir& P = s.dir[1];
          if (st == TcpState::SynRecv && d == 0 && ack && !before(pk.ack, P.end))
            s.state = static_cast<uint8_t>(TcpState::Established);
          const bool fin0 = O.flags & kDirFin, fin1 = P.flags & kDirFin;
          if (fin0 && fin1) {
            const bool acked0 = (P.flags & kDirAck) && !before(P.ackEdge, O.end);
            const bool acked1 = (O.flags & kDirAck) && !before(O.ackEdge, P.end);
            s.state = static_cast<uint8_t>((acked0 && acked1) ? TcpState::TimeWait : TcpState::Closing);
          } else if (fin0 || fin1) {
            if (s.state < static_cast<uint8_t>(TcpState::FinWait)) s.state = static_cast<uint8_t>(TcpState::FinWait);
          }
        }
      }
    }
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
      const uint32_t rcvWin = std::max<uint32_t>(s.dir[1 - i].window, 1);  // governs side i's data
      const uint32_t ownWin = std::max<uint32_t>(s.dir[i].window, 1);      // governs side i's acks
      if (dist(s.dir[i].end, s.replEnd[i]) > rcvWin / 4) urgent = true;
      if ((s.dir[i].flags & kDirAck) && dist(s.dir[i].ackEdge, s.replAck[i]) > ownWin / 4) urgent = true;
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
    if (it != map_.end() && it->second.version >= rec.s.version) {
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

const char* stateName(uint8_t proto, uint8_t state) {
  if (proto != 6) return state == kReplied ? "REPLIED" : "UNREPLIED";
  static const char* const names[kTcpStateCount] = {"NONE",     "SYN_SENT", "SYN_RECV",  "ESTABLISHED",
                                                    "FIN_WAIT", "CLOSING",  "TIME_WAIT", "CLOSED"};
  return state < kTcpStateCount ? names[state] : "INVALID";
}

const char* reasonName(Reason r) {
  static const char* const names[kReasonCount] = {"none",      "no-session",    "out-of-window",  "table-full",
                                                  "malformed", "invalid-flags", "unexpected-syn", "untracked"};
  const uint8_t i = static_cast<uint8_t>(r);
  return i < kReasonCount ? names[i] : "invalid";
}

}  // namespace sess
}  // namespace gwc
