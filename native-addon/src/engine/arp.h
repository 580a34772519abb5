// ARP for IPv4 over Ethernet (RFC 826): the frames the packet engine answers and announces the
// cluster IPs with (003: "the master answers ARP for the cluster IP"; "announces the cluster IP by
// gratuitous ARP when it takes office"). The engine's ARP sockets and rounds: arp.cc. No Node.js
// dependency.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "engine/net_interface.h"

namespace gwc {

constexpr uint16_t kArpRequest = 1;
constexpr uint16_t kArpReply = 2;
constexpr size_t kArpFrameSize = 42;  // Ethernet header (14) + ARP for IPv4 over Ethernet (28)

using ArpFrame = std::array<uint8_t, kArpFrameSize>;

// An Ethernet + ARP frame. IPv4 addresses as network-order values (a<<24|b<<16|c<<8|d).
ArpFrame arpFrame(const Mac& ethDst, const Mac& ethSrc, uint16_t op, const Mac& sha, uint32_t spa, const Mac& tha,
                  uint32_t tpa);

struct ArpRequest {
  Mac sha{};         // the requester's hardware address
  uint32_t spa = 0;  // the requester's IPv4 address
  uint32_t tpa = 0;  // the IPv4 address asked for
};

// An ARP request (IPv4 over Ethernet) in the Ethernet frame at p; false for anything else
// (another EtherType or operation, other address sizes, a runt).
bool parseArpRequest(const uint8_t* p, size_t len, ArpRequest* out);

}  // namespace gwc
