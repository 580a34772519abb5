#include "tunnel/tunnel_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace gwc::tunnel {
namespace {

[[noreturn]] void fail(const std::string& syscall, const std::string& what) {
  const int e = errno;
  throw DeviceError(syscall, e, what + ": " + syscall + ": " + std::strerror(e));
}

uint64_t nowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch()).count());
}

void interfaceUp(const std::string& name, uint32_t mtu) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail("socket", "TUN " + name);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_mtu = static_cast<int>(mtu);
  if (ioctl(s, SIOCSIFMTU, &ifr) < 0) { close(s); fail("ioctl(SIOCSIFMTU)", "TUN " + name); }
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) { close(s); fail("ioctl(SIOCGIFFLAGS)", "TUN " + name); }
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) { close(s); fail("ioctl(SIOCSIFFLAGS)", "TUN " + name); }
  close(s);
}

}  // namespace

TunnelDevice::TunnelDevice(DeviceConfig config, std::shared_ptr<Transport> transport, std::function<bool(DeviceEvent&&)> post)
    : config_(std::move(config)), transport_(std::move(transport)), post_(std::move(post)),
      in_(kBatch * kSlot), out_(kBatch * kSlot), plain_(kSlot) {
  if (config_.tunName.empty() || config_.tunName.size() >= IFNAMSIZ) throw DeviceError("", EINVAL, "TUN name must be 1..15 characters");
  tun_ = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tun_ < 0) fail("open(/dev/net/tun)", "TUN " + config_.tunName);
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, config_.tunName.c_str(), IFNAMSIZ - 1);
  if (ioctl(tun_, TUNSETIFF, &ifr) < 0) { close(tun_); fail("ioctl(TUNSETIFF)", "TUN " + config_.tunName); }
  try {
    interfaceUp(config_.tunName, config_.mtu);
    udp_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp_ < 0) fail("socket", "UDP listen socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(config_.listenPort);
    a.sin_addr.s_addr = htonl(config_.listenV4);
    // The cluster IP sits on lo on every member: binding to it needs no IP_FREEBIND, but allow it anyway
    // (the daemon may open the device before the address is configured).
    const int one = 1;
    setsockopt(udp_, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
    if (bind(udp_, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) fail("bind", "UDP port " + std::to_string(config_.listenPort));
    socklen_t len = sizeof a;
    getsockname(udp_, reinterpret_cast<sockaddr*>(&a), &len);
    boundPort_ = ntohs(a.sin_port);
    const int buf = 4 << 20;
    setsockopt(udp_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(udp_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (config_.forwardPort != 0) {
      fwd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fwd_ < 0) fail("socket", "UDP forward socket");
      sockaddr_in f{};
      f.sin_family = AF_INET;
      f.sin_port = htons(config_.forwardPort);
      f.sin_addr.s_addr = htonl(config_.forwardV4);
      setsockopt(fwd_, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
      if (bind(fwd_, reinterpret_cast<sockaddr*>(&f), sizeof f) < 0) fail("bind", "UDP forward port " + std::to_string(config_.forwardPort));
      setsockopt(fwd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
      setsockopt(fwd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    }
    wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_ < 0) fail("eventfd", "device wakeup");
  } catch (...) {
    if (fwd_ >= 0) close(fwd_);
    if (udp_ >= 0) close(udp_);
    close(tun_);
    throw;
  }
}

TunnelDevice::~TunnelDevice() {
  stop();
  if (udp_ >= 0) close(udp_);
  if (fwd_ >= 0) close(fwd_);
  if (tun_ >= 0) close(tun_);
  if (wake_ >= 0) close(wake_);
}

void TunnelDevice::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { run(); });
}

void TunnelDevice::stop() {
  if (!running_.exchange(false)) return;
  const uint64_t one = 1;
  if (write(wake_, &one, sizeof one) < 0) { /* the poll timeout ends the loop anyway */ }
  if (thread_.joinable()) thread_.join();
}

bool TunnelDevice::postEvent(DeviceEvent&& e) {
  if (post_(std::move(e))) return true;
  std::lock_guard<std::mutex> l(statsMu_);
  ++stats_.eventDrops;
  return false;
}

void TunnelDevice::run() {
  pollfd fds[4] = {{udp_, POLLIN, 0}, {tun_, POLLIN, 0}, {wake_, POLLIN, 0}, {fwd_, POLLIN, 0}};
  const nfds_t nfds = fwd_ >= 0 ? 4 : 3;
  while (running_.load()) {
    const int n = poll(fds, nfds, 200);
    if (n < 0) {
      if (errno == EINTR) continue;
      DeviceEvent e;
      e.type = DeviceEvent::Type::Error;
      e.errnum = errno;
      e.syscall = "poll";
      e.message = std::string("poll: ") + std::strerror(errno);
      postEvent(std::move(e));
      return;
    }
    if (fds[0].revents & POLLIN) onUdp();
    if (fds[1].revents & POLLIN) onTun();
    if (nfds == 4 && (fds[3].revents & POLLIN)) onForward();
  }
}

// Packets another member forwarded (tunnels this member owns): encrypted and sent like packets from the
// TUN device. Only members' addresses are heard; a packet this member would forward again is dropped
// (two members disagreeing about the owner must not bounce it).
void TunnelDevice::onForward() {
  for (int round = 0; round < 64; ++round) {
    sockaddr_storage from{};
    socklen_t fromLen = sizeof from;
    const ssize_t len = recvfrom(fwd_, in_.data(), kSlot, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (len < 0) return;
    const uint8_t* d = in_.data();
    if (len < 5 || d[0] != 'G' || d[1] != 'W' || d[2] != 'F' || d[3] != 1 || !transport_->isForwarder(from)) {
      std::lock_guard<std::mutex> l(statsMu_);
      ++stats_.forwardRefused;
      continue;
    }
    size_t outLen = 0;
    Endpoint ep;
    uint32_t peer = 0;
    const EncryptStatus s = transport_->encrypt(-1, d + 4, static_cast<size_t>(len - 4), out_.data(), &outLen, &ep, &peer);
    uint64_t sent = 0, loops = 0;
    if (s == EncryptStatus::Sent) {
      if (sendto(udp_, out_.data(), outLen, 0, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) >= 0) sent = 1;
    } else if (s == EncryptStatus::Forward) {
      loops = 1;
    }
    std::lock_guard<std::mutex> l(statsMu_);
    ++stats_.forwardReceived;
    stats_.udpSent += sent;
    stats_.forwardLoops += loops;
  }
}

// Datagrams from peers: transport messages are decrypted here and written to the TUN device.
void TunnelDevice::onUdp() {
  for (int round = 0; round < 8; ++round) {
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_storage from[kBatch];
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {in_.data() + i * kSlot, kSlot};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    const int n = recvmmsg(udp_, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    DeviceStats local;
    local.udpBatches = 1;
    local.udpReceived = static_cast<uint64_t>(n);
    for (int i = 0; i < n; ++i) {
      const uint8_t* d = in_.data() + i * kSlot;
      const size_t len = msgs[i].msg_len;
      Endpoint ep;
      ep.addr = from[i];
      ep.len = msgs[i].msg_hdr.msg_namelen;
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) { ++local.truncated; continue; }
      if (len >= 4 && d[0] >= 1 && d[0] <= 3 && !d[1] && !d[2] && !d[3]) {
        ++local.handshakeMessages;
        DeviceEvent e;
        e.type = DeviceEvent::Type::Handshake;
        e.bytes.assign(d, d + len);
        e.from = ep;
        postEvent(std::move(e));
        continue;
      }
      const DecryptResult r = transport_->decrypt(d, len, &ep, plain_.data());
      if (r.status != DecryptStatus::Data) continue;  // counted by the transport, per reason
      if (write(tun_, plain_.data(), r.length) < 0) ++local.tunWriteErrors;
      else ++local.tunWritten;
    }
    std::lock_guard<std::mutex> l(statsMu_);
    stats_.udpBatches += local.udpBatches;
    stats_.udpReceived += local.udpReceived;
    stats_.handshakeMessages += local.handshakeMessages;
    stats_.truncated += local.truncated;
    stats_.tunWritten += local.tunWritten;
    stats_.tunWriteErrors += local.tunWriteErrors;
    if (n < kBatch) return;
  }
}

// Packets from the inside (routed into the TUN device): encrypted to their peer and sent in one sendmmsg.
void TunnelDevice::onTun() {
  for (int round = 0; round < 8; ++round) {
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_storage to[kBatch];
    int count = 0, read = 0;
    uint64_t needEvents = 0, forwarded = 0;
    for (; read < kBatch; ++read) {
      const ssize_t len = ::read(tun_, plain_.data(), kSlot - 64);
      if (len <= 0) break;
      size_t outLen = 0;
      Endpoint ep;
      uint32_t peer = 0;
      uint8_t* out = out_.data() + count * kSlot;
      const EncryptStatus s = transport_->encrypt(-1, plain_.data(), static_cast<size_t>(len), out, &outLen, &ep, &peer);
      if (s == EncryptStatus::NoKeypair || s == EncryptStatus::NoEndpoint) {
        const uint64_t now = nowMs();
        uint64_t& last = lastNeedKeypairMs_[peer];
        if (now - last >= 250) {
          last = now;
          DeviceEvent e;
          e.type = DeviceEvent::Type::NeedKeypair;
          e.peer = peer;
          postEvent(std::move(e));
          ++needEvents;
        }
        continue;
      }
      if (s == EncryptStatus::Forward) {
        if (fwd_ >= 0) {
          // The plain packet behind a 4-byte tag ("GWF" 1), to the owner's forward socket.
          std::memmove(out + 4, out, outLen);
          out[0] = 'G'; out[1] = 'W'; out[2] = 'F'; out[3] = 1;
          if (sendto(fwd_, out, outLen + 4, 0, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) >= 0) ++forwarded;
        }
        continue;
      }
      if (s != EncryptStatus::Sent) continue;
      to[count] = ep.addr;
      iov[count] = {out, outLen};
      msgs[count] = {};
      msgs[count].msg_hdr.msg_iov = &iov[count];
      msgs[count].msg_hdr.msg_iovlen = 1;
      msgs[count].msg_hdr.msg_name = &to[count];
      msgs[count].msg_hdr.msg_namelen = ep.len;
      ++count;
    }
    int sent = 0;
    uint64_t errors = 0;
    while (sent < count) {
      const int r = sendmmsg(udp_, msgs + sent, static_cast<unsigned>(count - sent), 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        ++errors;  // this datagram is lost; go on with the rest
        ++sent;
        continue;
      }
      sent += r;
    }
    {
      std::lock_guard<std::mutex> l(statsMu_);
      stats_.tunRead += static_cast<uint64_t>(read);
      if (read > 0) ++stats_.tunBatches;
      stats_.udpSent += static_cast<uint64_t>(count) - errors;
      stats_.sendErrors += errors;
      stats_.needKeypairEvents += needEvents;
      stats_.forwarded += forwarded;
    }
    if (read < kBatch) return;
  }
}

int TunnelDevice::sendDatagram(const uint8_t* bytes, size_t len, const Endpoint& to) {
  if (sendto(udp_, bytes, len, 0, reinterpret_cast<const sockaddr*>(&to.addr), to.len) < 0) return errno;
  std::lock_guard<std::mutex> l(statsMu_);
  ++stats_.udpSent;
  return 0;
}

EncryptStatus TunnelDevice::sendKeepalive(uint32_t peer) {
  uint8_t out[64];
  size_t outLen = 0;
  Endpoint ep;
  uint32_t p = 0;
  const EncryptStatus s = transport_->encrypt(peer, nullptr, 0, out, &outLen, &ep, &p);
  if (s == EncryptStatus::Sent) sendDatagram(out, outLen, ep);
  return s;
}

DeviceStats TunnelDevice::stats() const {
  std::lock_guard<std::mutex> l(statsMu_);
  return stats_;
}

}  // namespace gwc::tunnel
