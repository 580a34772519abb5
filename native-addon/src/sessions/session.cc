// A session's key and record; see session.h and README.md ("Session records"). No Node.js dependency.
#include "sessions/session.h"

#include <algorithm>
#include <cstring>

#include "common/byte_order.h"
#include "filter/filter.h"

namespace gwc {
namespace sess {

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

FlowKey flowKeyOf(uint8_t family, uint8_t proto, const std::array<uint8_t, 16>& a, uint16_t pa,
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

void encodeKey(const FlowKey& k, uint8_t* o) {
  std::memset(o, 0, kKeySize);
  o[0] = k.family;
  o[1] = k.proto;
  writeLe16(o + 2, k.portLo);
  writeLe16(o + 4, k.portHi);
  std::memcpy(o + 8, k.addrLo.data(), 16);
  std::memcpy(o + 24, k.addrHi.data(), 16);
}

bool decodeKey(const uint8_t* p, size_t len, FlowKey* k) {
  if (len < kKeySize || (p[0] != 4 && p[0] != 6) || p[6] != 0 || p[7] != 0) return false;
  k->family = p[0];
  k->proto = p[1];
  k->portLo = readLe16(p + 2);
  k->portHi = readLe16(p + 4);
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
  writeLe16(o + 4, s.unit);
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
  writeLe32(o + 8, s.version);
  writeLe64(o + 12, static_cast<uint64_t>(s.lastSeenMs));
  const bool lo = s.origIsLo;
  std::memcpy(o + 20, (lo ? k.addrLo : k.addrHi).data(), 16);
  std::memcpy(o + 36, (lo ? k.addrHi : k.addrLo).data(), 16);
  writeLe16(o + 52, lo ? k.portLo : k.portHi);
  writeLe16(o + 54, lo ? k.portHi : k.portLo);
  if (k.proto != 6) return;
  writeLe16(o + 56, d0.mss);
  writeLe16(o + 58, d1.mss);
  writeLe32(o + 60, d0.end);      // snd_nxt
  writeLe32(o + 64, d1.wl1);      // snd_wl1
  writeLe32(o + 68, d1.ackEdge);  // snd_wl2
  writeLe32(o + 72, d1.window);   // snd_wnd
  writeLe32(o + 76, d1.end);      // rcv_nxt
  writeLe32(o + 80, d1.maxend);   // rcv_adv
  o[84] = d1.wscale;         // snd_scale
  o[85] = d0.wscale;         // rcv_scale
  o[86] = d0.flags;
  o[87] = d1.flags;
  writeLe32(o + 88, d1.tsval);    // ts_recent
  writeLe32(o + 92, d0.tsval);
  writeLe32(o + 96, d0.window);
  writeLe32(o + 100, d0.ackEdge);
  writeLe32(o + 104, d0.maxwin);
  writeLe32(o + 108, d1.maxwin);
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
  const uint16_t unit = readLe16(p + 4);
  if (unit >= kWorkUnits && unit != kNoUnit) return false;
  bool origIsLo = true;
  r->key = flowKeyOf(family, proto, a, readLe16(p + 52), b, readLe16(p + 54), &origIsLo);
  Session& s = r->s;
  s = Session{};
  s.origIsLo = origIsLo;
  s.state = state;
  s.unit = unit;
  s.flags = p[7] & kSessPickedUp;
  s.version = readLe32(p + 8);
  r->lastSeenMs = static_cast<int64_t>(readLe64(p + 12));
  s.lastSeenMs = r->lastSeenMs;
  if (proto != 6) return true;
  TcpDir& d0 = s.dir[0];
  TcpDir& d1 = s.dir[1];
  d0.mss = readLe16(p + 56);
  d1.mss = readLe16(p + 58);
  d0.end = readLe32(p + 60);
  d1.wl1 = readLe32(p + 64);
  d1.ackEdge = readLe32(p + 68);
  d1.window = readLe32(p + 72);
  d1.end = readLe32(p + 76);
  d1.maxend = readLe32(p + 80);
  d1.wscale = std::min<uint8_t>(p[84], 14);
  d0.wscale = std::min<uint8_t>(p[85], 14);
  d0.flags = p[86];
  d1.flags = p[87];
  d1.tsval = readLe32(p + 88);
  d0.tsval = readLe32(p + 92);
  d0.window = readLe32(p + 96);
  d0.ackEdge = readLe32(p + 100);
  d0.maxwin = readLe32(p + 104);
  d1.maxwin = readLe32(p + 108);
  // Not carried (derived): the responder's advertised right edge for the originator's data, and
  // the originator's window-update sequence.
  d0.maxend = (d1.flags & kDirAck) ? d1.ackEdge + std::max<uint32_t>(d1.window, 1) : d0.end;
  d0.wl1 = d0.end;
  return true;
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
