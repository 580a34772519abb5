// Parsers of the filtering function; see filter.h for the contract. No Node.js dependency.
#include "filter/filter.h"

#include <cstring>

#include "common/byte_order.h"

namespace gwc {
namespace {

inline uint32_t fold128(const uint8_t* p) { return readBe32(p) ^ readBe32(p + 4) ^ readBe32(p + 8) ^ readBe32(p + 12); }

inline Classification drop(Status s, Reason r, uint8_t version = 0) {
  Classification c;
  c.status = s;
  c.detail = static_cast<uint8_t>(r);
  c.ipVersion = version;
  return c;
}

// L2TPv2 header (RFC 2661 section 3.1) in the UDP payload q[0, m):
//   flags/version(16) [Length(16) if L] TunnelId(16) SessionId(16) [Ns(16) Nr(16) if S]
//   [OffsetSize(16) OffsetPad if O]
// Returns None and sets the IDs, or the reason the packet falls back to plain UDP.
L2tpFallback parseL2tp(const uint8_t* q, size_t m, uint16_t* tunnel, uint16_t* session) {
  if (m < 2) return L2tpFallback::Truncated;
  const uint16_t flags = readBe16(q);
  if ((flags & 0x000F) != 2) return L2tpFallback::Version;
  const bool l = flags & 0x4000, s = flags & 0x0800, o = flags & 0x0200;
  const size_t hdr = 6 + (l ? 2 : 0) + (s ? 4 : 0) + (o ? 2 : 0);
  if (m < hdr) return L2tpFallback::Truncated;
  size_t off = 2;
  size_t msgLen = m;
  if (l) {
    msgLen = readBe16(q + 2);
    if (msgLen < hdr || msgLen > m) return L2tpFallback::Length;
    off = 4;
  }
  if (o) {
    const size_t offsetSize = readBe16(q + hdr - 2);
    if (hdr + offsetSize > msgLen) return L2tpFallback::Truncated;
  }
  *tunnel = readBe16(q + off);
  *session = readBe16(q + off + 2);
  return L2tpFallback::None;
}

// Common tail of IPv4 and IPv6 once the network layer is valid: l4 = [p + l4off, p + end).
Classification finish(Classification c, const uint8_t* p, size_t l4off, size_t end, uint32_t src,
                      uint32_t dst, bool toCluster) {
  c.ipLength = static_cast<uint32_t>(end);
  if (!toCluster || (c.flags & kFlagFragment)) {
    c.status = toCluster ? Status::Cluster : Status::Forwarded;
    c.key = src ^ dst;
    c.unit = workUnitOfKey(c.key);
    return c;
  }
  c.status = Status::Cluster;
  const uint8_t* l4 = p + l4off;
  const size_t l4len = end - l4off;
  if (c.proto == 6) {  // TCP
    if (l4len < 20) return drop(Status::Truncated, Reason::L4Header, c.ipVersion);
    const size_t doff = l4[12] >> 4;
    if (doff < 5) return drop(Status::Malformed, Reason::TcpDataOffset, c.ipVersion);
    if (doff * 4 > l4len) return drop(Status::Truncated, Reason::L4Header, c.ipVersion);
    c.key = src ^ readBe16(l4);
  } else if (c.proto == 17) {  // UDP
    if (l4len < 8) return drop(Status::Truncated, Reason::L4Header, c.ipVersion);
    const size_t ulen = readBe16(l4 + 4);
    if (ulen < 8) return drop(Status::Malformed, Reason::UdpLength, c.ipVersion);
    if (ulen > l4len) return drop(Status::Truncated, Reason::L4Header, c.ipVersion);
    const uint16_t sport = readBe16(l4);
    c.key = src ^ sport;
    if (readBe16(l4 + 2) == kL2tpPort) {
      uint16_t tunnel = 0, session = 0;
      const L2tpFallback fb = parseL2tp(l4 + 8, ulen - 8, &tunnel, &session);
      if (fb == L2tpFallback::None) {
        c.flags |= kFlagL2tp;
        c.tunnelId = tunnel;
        c.sessionId = session;
        c.key = src ^ sport ^ tunnel ^ session;
      } else {
        c.flags |= kFlagL2tpFallback;
        c.detail = static_cast<uint8_t>(fb);
      }
    }
  } else {
    c.key = src ^ dst;
  }
  c.unit = workUnitOfKey(c.key);
  return c;
}

Classification classifyIpv4(const uint8_t* p, size_t len, const ClusterAddrs& cluster) {
  if (len < 20) return drop(Status::Truncated, Reason::IpHeader, 4);
  const size_t hl = static_cast<size_t>(p[0] & 0x0F) * 4;
  if (hl < 20) return drop(Status::Malformed, Reason::IpIhl, 4);
  if (hl > len) return drop(Status::Truncated, Reason::IpHeader, 4);
  const size_t tot = readBe16(p + 2);
  if (tot < hl) return drop(Status::Malformed, Reason::IpTotalLength, 4);
  if (tot > len) return drop(Status::Truncated, Reason::IpLength, 4);
  Classification c;
  c.ipVersion = 4;
  c.proto = p[9];
  if (readBe16(p + 6) & 0x3FFF) c.flags |= kFlagFragment;  // MF bit or fragment offset
  const uint32_t src = readBe32(p + 12), dst = readBe32(p + 16);
  return finish(c, p, hl, tot, src, dst, cluster.hasV4(dst));
}

Classification classifyIpv6(const uint8_t* p, size_t len, const ClusterAddrs& cluster) {
  if (len < 40) return drop(Status::Truncated, Reason::IpHeader, 6);
  const size_t end = 40 + static_cast<size_t>(readBe16(p + 4));
  if (end > len) return drop(Status::Truncated, Reason::IpLength, 6);
  Classification c;
  c.ipVersion = 6;
  uint8_t nh = p[6];
  size_t off = 40;
  int walked = 0;
  for (;;) {
    size_t hlen;
    if (nh == 0 || nh == 43 || nh == 60) {  // hop-by-hop, routing, destination options: 8-byte units
      if (walked == kMaxIpv6ExtHeaders) return drop(Status::Malformed, Reason::ExtHeaderLimit, 6);
      if (off + 2 > end) return drop(Status::Truncated, Reason::ExtHeader, 6);
      hlen = (static_cast<size_t>(p[off + 1]) + 1) * 8;
    } else if (nh == 51) {  // AH (RFC 4302): payload length in 4-byte units, minus 2
      if (walked == kMaxIpv6ExtHeaders) return drop(Status::Malformed, Reason::ExtHeaderLimit, 6);
      if (off + 2 > end) return drop(Status::Truncated, Reason::ExtHeader, 6);
      hlen = (static_cast<size_t>(p[off + 1]) + 2) * 4;
    } else if (nh == 44) {  // Fragment: what follows is fragment data, stop walking
      if (walked == kMaxIpv6ExtHeaders) return drop(Status::Malformed, Reason::ExtHeaderLimit, 6);
      if (off + 8 > end) return drop(Status::Truncated, Reason::ExtHeader, 6);
      c.flags |= kFlagFragment;
      nh = p[off];
      off += 8;
      break;
    } else {
      break;  // upper layer, or ESP 50 / no next header 59 ("other protocol")
    }
    if (off + hlen > end) return drop(Status::Truncated, Reason::ExtHeader, 6);
    nh = p[off];
    off += hlen;
    ++walked;
  }
  c.proto = nh;
  return finish(c, p, off, end, fold128(p + 8), fold128(p + 24), cluster.hasV6(p + 24));
}

Classification classifyIpVersion(const uint8_t* p, size_t len, const ClusterAddrs& cluster,
                                 unsigned expected) {
  if (len < 1) return drop(Status::Truncated, Reason::IpHeader, static_cast<uint8_t>(expected));
  const unsigned version = p[0] >> 4;
  if (expected != 0 && version != expected)
    return drop(Status::Malformed, Reason::IpVersion, static_cast<uint8_t>(expected));
  if (version == 4) return classifyIpv4(p, len, cluster);
  if (version == 6) return classifyIpv6(p, len, cluster);
  return drop(Status::Malformed, Reason::IpVersion);
}

}  // namespace

bool ClusterAddrs::hasV6(const uint8_t* a) const {
  for (const auto& x : v6)
    if (std::memcmp(x.data(), a, 16) == 0) return true;
  return false;
}

Classification classifyIp(const uint8_t* p, size_t len, const ClusterAddrs& cluster) {
  return classifyIpVersion(p, len, cluster, 0);
}

Classification classifyFrame(const uint8_t* p, size_t len, const ClusterAddrs& cluster) {
  if (len < 14) return drop(Status::Truncated, Reason::Ethernet);
  uint16_t type = readBe16(p + 12);
  size_t off = 14;
  int tags = 0;
  while (type == 0x8100 || type == 0x88A8) {
    if (tags == kMaxVlanTags) return drop(Status::Malformed, Reason::VlanLimit);
    if (off + 4 > len) return drop(Status::Truncated, Reason::Vlan);
    type = readBe16(p + off + 2);
    off += 4;
    ++tags;
  }
  const uint8_t* l3 = p + off;
  const size_t l3len = len - off;
  switch (type) {
    case 0x0800:
      return classifyIpVersion(l3, l3len, cluster, 4);
    case 0x86DD:
      return classifyIpVersion(l3, l3len, cluster, 6);
    case 0x0806: {  // ARP (RFC 826): 8 fixed bytes, then sender/target hardware and protocol addresses
      if (l3len < 8) return drop(Status::Truncated, Reason::ArpHeader);
      const size_t need = 8 + 2 * (static_cast<size_t>(l3[4]) + l3[5]);
      if (need > l3len) return drop(Status::Truncated, Reason::ArpHeader);
      Classification c;
      c.status = Status::Arp;
      return c;
    }
    default:
      return drop(Status::Unsupported, Reason::EtherType);
  }
}

}  // namespace gwc
