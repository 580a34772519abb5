// Cryptokey routing (whitepaper 2): each peer owns a set of inner prefixes; an inner destination picks the
// peer by longest prefix match, and an inner source must lie in the sending peer's prefixes. A linear scan
// over the configured prefixes: peers and prefixes are counted in tens per cluster in this slice (a trie,
// as wireguard-go's allowedips.go, replaces it when lists grow). Not thread-safe: the Transport's lock.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace gwc::tunnel {

struct Prefix {
  uint8_t family = 4;  // 4 or 6
  uint8_t bits = 0;
  std::array<uint8_t, 16> addr{};
  uint32_t peer = 0;
};

inline bool prefixContains(const Prefix& p, const uint8_t* addr, uint8_t family) {
  if (p.family != family) return false;
  const unsigned full = p.bits / 8, rest = p.bits % 8;
  if (std::memcmp(p.addr.data(), addr, full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (p.addr[full] & mask) == (addr[full] & mask);
}

class AllowedIps {
 public:
  void setPeer(uint32_t peer, const std::vector<Prefix>& prefixes) {
    removePeer(peer);
    for (Prefix p : prefixes) {
      p.peer = peer;
      prefixes_.push_back(p);
    }
  }
  void removePeer(uint32_t peer) {
    std::vector<Prefix> keep;
    for (const Prefix& p : prefixes_)
      if (p.peer != peer) keep.push_back(p);
    prefixes_.swap(keep);
  }
  /** The peer of the longest prefix containing addr, or -1. */
  int64_t lookup(const uint8_t* addr, uint8_t family) const {
    int best = -1;
    int64_t peer = -1;
    for (const Prefix& p : prefixes_)
      if (p.bits > best && prefixContains(p, addr, family)) {
        best = p.bits;
        peer = p.peer;
      }
    return peer;
  }

 private:
  std::vector<Prefix> prefixes_;
};

}  // namespace gwc::tunnel
