// ARP frames (arp.h) and the packet engine's ARP part: the ARP sockets, answering requests for the
// cluster IPs, and the gratuitous ARP rounds of announce(). See packet_engine.h for the threading.
#include "engine/arp.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>

#include <cstring>

#include "common/byte_order.h"
#include "engine/packet_engine.h"

namespace gwc {
namespace {

constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

}  // namespace

ArpFrame arpFrame(const Mac& ethDst, const Mac& ethSrc, uint16_t op, const Mac& sha, uint32_t spa, const Mac& tha,
                  uint32_t tpa) {
  ArpFrame f{};
  std::memcpy(&f[0], ethDst.data(), 6);
  std::memcpy(&f[6], ethSrc.data(), 6);
  writeBe16(&f[12], ETH_P_ARP);
  writeBe16(&f[14], 1);  // hardware type Ethernet
  writeBe16(&f[16], ETH_P_IP);
  f[18] = 6;
  f[19] = 4;
  writeBe16(&f[20], op);
  std::memcpy(&f[22], sha.data(), 6);
  writeBe32(&f[28], spa);
  std::memcpy(&f[32], tha.data(), 6);
  writeBe32(&f[38], tpa);
  return f;
}

bool parseArpRequest(const uint8_t* p, size_t len, ArpRequest* out) {
  if (len < kArpFrameSize) return false;
  const uint8_t* a = p + 14;
  if (readBe16(p + 12) != ETH_P_ARP || readBe16(a) != 1 || readBe16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4 ||
      readBe16(a + 6) != kArpRequest)
    return false;
  std::memcpy(out->sha.data(), a + 8, 6);
  out->spa = readBe32(a + 14);
  out->tpa = readBe32(a + 24);
  return true;
}

// One bound AF_PACKET socket per configured interface (ETH_P_ARP); closed by CloseAll.
void PacketEngine::OpenArpPorts() {
  for (const ArpInterfaceConfig& ac : config_.arpInterfaces) {
    ArpPort port;
    port.config = ac;
    port.ifindex = interfaceIndex(ac.name);
    port.fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (port.fd < 0) throwOsError("socket(AF_PACKET, SOCK_RAW, ETH_P_ARP)", ac.name);
    arpPorts_.push_back(port);  // closed by CloseAll from here on
    ArpPort& p = arpPorts_.back();
    p.ownMac = interfaceMac(p.fd, ac.name);
    struct sockaddr_ll sll;
    std::memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ARP);
    sll.sll_ifindex = p.ifindex;
    if (bind(p.fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) throwOsError("bind(AF_PACKET)", ac.name);
  }
}

Mac PacketEngine::AnswerMacLocked(const ArpPort& port) const {
  if (filter_.method == 1) return port.config.hasMac ? port.config.mac : port.ownMac;
  return config_.clusterMac;
}

void PacketEngine::ReadArp(ArpPort& port) {
  uint8_t buf[256];
  for (int k = 0; k < kBurst; ++k) {
    struct sockaddr_ll from;
    socklen_t fromLen = sizeof from;
    const ssize_t n = recvfrom(port.fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n < 0) return;  // EAGAIN, or an error the next poll reports again
    if (from.sll_pkttype == PACKET_OUTGOING) continue;  // our own frames
    ArpRequest req;
    if (!parseArpRequest(buf, static_cast<size_t>(n), &req)) continue;
    const uint32_t spa = req.spa;
    const uint32_t tpa = req.tpa;
    if (spa == tpa) continue;  // someone else's gratuitous ARP
    bool ours = false;
    for (uint32_t ip : port.config.clusterIps) ours = ours || ip == tpa;
    if (!ours) continue;
    Mac answer;
    const Mac requester = req.sha;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.arpRequests;
      if (!answering_ || (filter_.method != 1 && !config_.hasClusterMac)) continue;
      answer = AnswerMacLocked(port);
    }
    // Ethernet source: the interface's own MAC (a switch must never learn the shared MAC of methods
    // 2 and 3, and a multicast MAC is not a valid source); ARP sender hardware address: the answer.
    const auto f = arpFrame(requester, port.ownMac, kArpReply, answer, tpa, requester, spa);
    const bool ok = send(port.fd, f.data(), f.size(), MSG_DONTWAIT) == static_cast<ssize_t>(f.size());
    std::lock_guard<std::mutex> lock(mu_);
    ++(ok ? stats_.arpAnswered : stats_.arpErrors);
  }
}

// One round: per interface and cluster IP, a gratuitous request (broadcast, sender = target = the
// cluster IP, target MAC zero) and a gratuitous reply (broadcast, target MAC = the answer MAC).
void PacketEngine::SendAnnounceRound() {
  uint64_t sent = 0;
  uint64_t errors = 0;
  for (const ArpPort& port : arpPorts_) {
    Mac answer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (filter_.method != 1 && !config_.hasClusterMac) continue;
      answer = AnswerMacLocked(port);
    }
    for (uint32_t ip : port.config.clusterIps) {
      const auto req = arpFrame(kBroadcast, port.ownMac, kArpRequest, answer, ip, Mac{}, ip);
      const auto rep = arpFrame(kBroadcast, port.ownMac, kArpReply, answer, ip, answer, ip);
      for (const auto* f : {&req, &rep}) {
        if (send(port.fd, f->data(), f->size(), MSG_DONTWAIT) == static_cast<ssize_t>(f->size())) ++sent;
        else ++errors;
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.garpSent += sent;
  stats_.arpErrors += errors;
}

}  // namespace gwc
