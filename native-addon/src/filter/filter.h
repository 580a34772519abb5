// The filtering function of the source (003, Figure 9 and its sample code), as gwcluster fixes it.
//
// No Node.js dependency: this header and filter.cc can be compiled alone for benchmarks and fuzzers.
// Every parser here reads only inside [p, p + len) and never allocates.
//
// The contract (reference.ts implements the same, byte for byte; test/filter/parity.test.ts checks it):
//   - numbers in network order; an IPv6 address contributes the XOR of its four big-endian 32-bit words;
//   - to a cluster IP, not a fragment: TCP/UDP key = src ^ sport; L2TPv2 (UDP dport 1701)
//     key = src ^ sport ^ tunnelId ^ sessionId; any other protocol key = src ^ dst;
//   - forwarded (destination is not a cluster IP) or a fragment: key = src ^ dst;
//   - unit = (k ^ k>>10 ^ k>>20 ^ k>>30) & 1023.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gwc {

constexpr uint16_t kWorkUnits = 1024;
// The "no unit" value in unit arrays: dropped (truncated, malformed, unsupported) or ARP.
constexpr uint16_t kNoUnit = 0xFFFF;
constexpr uint16_t kL2tpPort = 1701;        // RFC 2661 section 8.1
constexpr int kMaxIpv6ExtHeaders = 8;       // more than this many extension headers: malformed
constexpr int kMaxVlanTags = 2;             // 802.1Q 0x8100 and 802.1ad 0x88a8, outer + inner

// Low 3 bits of a code byte.
enum class Status : uint8_t {
  Cluster = 0,      // destination is a cluster IP: the work-set filter
  Forwarded = 1,    // destination is not a cluster IP: the cluster routes it (forward filter)
  Arp = 2,          // Ethernet frames only: ARP, no work unit
  Unsupported = 3,  // Ethernet frames only: an EtherType that is neither IPv4, IPv6 nor ARP
  Truncated = 4,    // a header or a length field points past the captured bytes
  Malformed = 5,    // a field holds an impossible value
};

// Flag bits of a code byte (code = status | flags).
constexpr uint8_t kFlagFragment = 0x08;      // IPv4 MF or offset != 0, or an IPv6 Fragment header
constexpr uint8_t kFlagL2tp = 0x10;          // L2TPv2 header parsed, tunnel and session IDs in the key
constexpr uint8_t kFlagL2tpFallback = 0x20;  // UDP to port 1701 whose L2TP header was unusable

// Why a packet was dropped (status Truncated/Malformed/Unsupported). The names are in
// reference.ts (DROP_REASONS) in this order.
enum class Reason : uint8_t {
  None = 0,
  Ethernet = 1,        // truncated: fewer than 14 bytes
  Vlan = 2,            // truncated: a VLAN tag past the end
  ArpHeader = 3,       // truncated: ARP shorter than 8 + 2 * (hlen + plen)
  IpHeader = 4,        // truncated: shorter than the fixed IP header or IHL * 4
  IpLength = 5,        // truncated: IPv4 total length or 40 + IPv6 payload length > captured
  ExtHeader = 6,       // truncated: an IPv6 extension header past the end of the payload
  L4Header = 7,        // truncated: TCP header (20, data offset * 4) or UDP header/length past the end
  IpVersion = 8,       // malformed: version nibble not 4/6 (or not the one the EtherType promised)
  IpIhl = 9,           // malformed: IHL < 5
  IpTotalLength = 10,  // malformed: IPv4 total length < IHL * 4
  ExtHeaderLimit = 11, // malformed: more than kMaxIpv6ExtHeaders extension headers
  TcpDataOffset = 12,  // malformed: TCP data offset < 5
  UdpLength = 13,      // malformed: UDP length < 8
  VlanLimit = 14,      // malformed: more than kMaxVlanTags VLAN tags
  EtherType = 15,      // unsupported EtherType
};

// Why an L2TP header could not be used (the packet is then keyed as plain UDP and counted).
enum class L2tpFallback : uint8_t {
  None = 0,
  Truncated = 1,  // fewer bytes than the header its flags announce, or Offset Size past the message
  Version = 2,    // version field is not 2 (e.g. L2TPv3 over UDP)
  Length = 3,     // L bit: Length field < header size or > UDP payload
};

// Destination addresses that are "a cluster IP". Few (one per cluster, a handful at most): linear scan.
struct ClusterAddrs {
  std::vector<uint32_t> v4;
  std::vector<std::array<uint8_t, 16>> v6;

  bool hasV4(uint32_t a) const {
    for (uint32_t x : v4)
      if (x == a) return true;
    return false;
  }
  bool hasV6(const uint8_t* a) const;
};

struct Classification {
  Status status = Status::Truncated;
  uint8_t flags = 0;        // kFlag* bits
  uint8_t ipVersion = 0;    // 4, 6, or 0 when not an IP packet
  uint8_t proto = 0;        // IPv4 protocol / IPv6 upper-layer next header (ESP 50, none 59 included)
  uint8_t detail = 0;       // Reason for drops; L2tpFallback value when kFlagL2tpFallback is set
  uint16_t unit = kNoUnit;  // 0..1023 for Cluster/Forwarded, kNoUnit otherwise
  uint16_t tunnelId = 0;    // when kFlagL2tp
  uint16_t sessionId = 0;   // when kFlagL2tp
  uint32_t key = 0;         // the filter key, when Cluster/Forwarded
  uint32_t ipLength = 0;    // bytes of the IP datagram (total length), when Cluster/Forwarded

  bool hasUnit() const { return status == Status::Cluster || status == Status::Forwarded; }
  uint8_t code() const { return static_cast<uint8_t>(static_cast<uint8_t>(status) | flags); }
};

inline uint16_t workUnitOfKey(uint32_t k) {
  return static_cast<uint16_t>((k ^ (k >> 10) ^ (k >> 20) ^ (k >> 30)) & 1023u);
}

// A raw IP packet starting at the IP header (version nibble selects IPv4 / IPv6).
Classification classifyIp(const uint8_t* p, size_t len, const ClusterAddrs& cluster);
// An Ethernet II frame: up to kMaxVlanTags VLAN tags, then IPv4, IPv6 or ARP.
Classification classifyFrame(const uint8_t* p, size_t len, const ClusterAddrs& cluster);

inline Classification classify(const uint8_t* p, size_t len, const ClusterAddrs& cluster, bool frame) {
  return frame ? classifyFrame(p, len, cluster) : classifyIp(p, len, cluster);
}

}  // namespace gwc
