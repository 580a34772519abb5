// The fields of an IPv4/IPv6 packet the session table tracks by: addresses, protocol, ports, and
// for TCP the sequence numbers, window, flags and the options of RFC 9293 / RFC 7323 / RFC 2018.
// No Node.js dependency.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace gwc {
namespace sess {

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

// Returns false when the packet is not a well-formed IPv4/IPv6 datagram with a complete transport
// header (TCP: 20 bytes, data offset; UDP: 8 bytes, length). Fragments: network layer only.
bool parsePacket(const uint8_t* p, size_t len, Parsed* pk);

}  // namespace sess
}  // namespace gwc
