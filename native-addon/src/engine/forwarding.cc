// The packet engine's forwarding part: sending a packet to its owner's MAC on the forward interface
// (AF_PACKET SOCK_DGRAM: the kernel writes the Ethernet header), reinjecting a packet into this
// member's own stack (IPPROTO_RAW), and delivering a released unit's held packets by one or the
// other. See packet_engine.h for the verdicts and the threading.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "engine/packet_engine.h"

namespace gwc {

// The forward socket (when a forward interface is configured) and the raw sockets for reinjection.
void PacketEngine::OpenForwarding() {
  if (!config_.forwardInterface.empty()) {
    fwdIfindex_ = interfaceIndex(config_.forwardInterface);
    // SOCK_DGRAM with protocol 0: send only (receives nothing); the kernel writes the Ethernet header.
    fwdFd_ = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fwdFd_ < 0) throwOsError("socket(AF_PACKET, SOCK_DGRAM)", config_.forwardInterface);
  }
  raw4Fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (raw4Fd_ < 0) throwOsError("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", "");
  raw6Fd_ = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);  // may be absent (IPv6 disabled)
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
      // Into this member's own stack, past its queue: tracked here as a queued packet would be, or the
      // session table misses what the endpoints then acknowledge (strict mode drops their acks).
      if (sessions_ != nullptr) {
        const Classification c = filter_.classify(p.data(), p.size(), false);
        if (c.status == Status::Forwarded && !TrackOwnedLocked(p.data(), p.size(), c.unit)) {
          ++r.dropped;
          continue;
        }
      }
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

}  // namespace gwc
