#include "tunnel/transport.h"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace gwc::tunnel {
namespace {

void nonceOf(uint64_t counter, uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES]) {
  std::memset(nonce, 0, 4);
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
}

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }
uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
void putLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void putLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

size_t innerPacketLength(const uint8_t* p, size_t len, uint8_t* family) {
  if (len < 1) return 0;
  const uint8_t version = p[0] >> 4;
  if (version == 4) {
    if (len < 20 || (p[0] & 0x0f) < 5) return 0;
    const size_t total = static_cast<size_t>(p[2]) << 8 | p[3];
    if (total < static_cast<size_t>(p[0] & 0x0f) * 4 || total > len) return 0;
    *family = 4;
    return total;
  }
  if (version == 6) {
    if (len < 40) return 0;
    const size_t total = 40 + (static_cast<size_t>(p[4]) << 8 | p[5]);
    if (total > len) return 0;
    *family = 6;
    return total;
  }
  return 0;
}

Transport::Transport() {
  if (sodium_init() < 0) throw std::runtime_error("sodium_init failed");
}

void Transport::setKeypairs(uint32_t peer, const std::vector<KeypairSpec>& specs) {
  std::lock_guard<std::mutex> lock(mu_);
  Peer& p = peers_[peer];
  std::unordered_map<uint32_t, Keypair> kept;
  for (uint32_t idx : p.indices) {
    auto it = keypairs_.find(idx);
    if (it == keypairs_.end()) continue;
    kept.emplace(idx, std::move(it->second));
    keypairs_.erase(it);
  }
  p.indices.clear();
  for (const KeypairSpec& s : specs) {
    auto old = kept.find(s.localIndex);
    Keypair k;
    if (old != kept.end()) k = std::move(old->second);  // keeps counters, replay window and confirmation
    const bool wasSendable = k.spec.canSend;
    k.spec = s;
    k.peer = peer;
    if (k.confirmed) k.spec.canSend = true;
    if (k.spec.canSend && !wasSendable) k.sendableSeq = ++sendableSeq_;
    if (s.hasSeed) {
      if (s.seedSendCounter > k.sendCounter) k.sendCounter = s.seedSendCounter;
      k.replay.seedBelow(s.seedReceiveNext);
    }
    k.activity.localIndex = s.localIndex;
    k.activity.peer = peer;
    keypairs_.insert_or_assign(s.localIndex, std::move(k));
    p.indices.push_back(s.localIndex);
  }
  for (auto& [idx, k] : kept) sodium_memzero(&k.spec, sizeof k.spec);
}

void Transport::setAllowedIps(uint32_t peer, const std::vector<Prefix>& prefixes) {
  std::lock_guard<std::mutex> lock(mu_);
  peers_[peer];
  allowed_.setPeer(peer, prefixes);
}

void Transport::setEndpoint(uint32_t peer, const Endpoint& ep) {
  std::lock_guard<std::mutex> lock(mu_);
  Peer& p = peers_[peer];
  p.endpoint = ep;
  p.hasEndpoint = true;
}

void Transport::setForward(uint32_t peer, const Endpoint* ep) {
  std::lock_guard<std::mutex> lock(mu_);
  Peer& p = peers_[peer];
  p.hasForward = ep != nullptr;
  if (ep) p.forward = *ep;
}

void Transport::setForwarders(const std::vector<uint32_t>& v4) {
  std::lock_guard<std::mutex> lock(mu_);
  forwarders_ = v4;
}

bool Transport::isForwarder(const sockaddr_storage& from) const {
  if (from.ss_family != AF_INET) return false;
  const uint32_t a = reinterpret_cast<const sockaddr_in*>(&from)->sin_addr.s_addr;
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t f : forwarders_) if (f == a) return true;
  return false;
}

void Transport::removePeer(uint32_t peer) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  for (uint32_t idx : it->second.indices) {
    auto k = keypairs_.find(idx);
    if (k != keypairs_.end()) {
      sodium_memzero(&k->second.spec, sizeof k->second.spec);
      keypairs_.erase(k);
    }
  }
  peers_.erase(it);
  allowed_.removePeer(peer);
}

DecryptResult Transport::decrypt(const uint8_t* d, size_t len, const Endpoint* from, uint8_t* out) {
  DecryptResult r;
  std::lock_guard<std::mutex> lock(mu_);
  auto fail = [&](DecryptStatus s) {
    r.status = s;
    ++decryptCounts_[static_cast<size_t>(s)];
    return r;
  };
  if (len < kHeaderSize + kTagSize || d[0] != kTransportType || d[1] || d[2] || d[3]) return fail(DecryptStatus::Malformed);
  auto it = keypairs_.find(le32(d + 4));
  if (it == keypairs_.end()) return fail(DecryptStatus::UnknownIndex);
  Keypair& k = it->second;
  r.peer = k.peer;
  const uint64_t counter = le64(d + 8);
  if (counter >= kRejectAfterMessages) return fail(DecryptStatus::CounterLimit);
  if (!k.replay.mayAccept(counter)) return fail(DecryptStatus::Replayed);
  uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  nonceOf(counter, nonce);
  const size_t body = len - kHeaderSize - kTagSize;
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, nullptr, d + kHeaderSize, body, d + len - kTagSize,
                                                         nullptr, 0, nonce, k.spec.receiveKey.data()) != 0)
    return fail(DecryptStatus::AuthFailed);
  if (!k.replay.accept(counter)) return fail(DecryptStatus::Replayed);
  // Authenticated: the peer is alive here, whatever the inner packet is.
  Peer& p = peers_[k.peer];
  if (from) {
    p.endpoint = *from;
    p.hasEndpoint = true;
    k.activity.from = *from;
    k.activity.hasFrom = true;
  }
  if (!k.confirmed) {
    k.confirmed = true;
    if (!k.spec.canSend) {  // the initiator used the responder's keypair: it may send now (5.4.6)
      k.spec.canSend = true;
      k.sendableSeq = ++sendableSeq_;
    }
  }
  ++k.activity.received;
  p.counters.rxPackets++;
  p.counters.rxBytes += len;
  if (body == 0) return fail(DecryptStatus::Keepalive);
  uint8_t family = 0;
  const size_t inner = innerPacketLength(out, body, &family);
  if (inner == 0) return fail(DecryptStatus::BadInnerPacket);
  const uint8_t* src = family == 4 ? out + 12 : out + 8;
  if (allowed_.lookup(src, family) != static_cast<int64_t>(k.peer)) return fail(DecryptStatus::SourceNotAllowed);
  ++k.activity.receivedData;
  r.length = inner;
  r.status = DecryptStatus::Data;
  ++decryptCounts_[0];
  return r;
}

Transport::Keypair* Transport::sendKeypair(Peer& p) {
  // The keypair that most recently became able to send: the core's current one, or a responder's `next`
  // the peer has just confirmed (before the core hears of it).
  Keypair* best = nullptr;
  for (uint32_t idx : p.indices) {
    auto it = keypairs_.find(idx);
    if (it == keypairs_.end() || !it->second.spec.canSend || it->second.sendCounter >= kRejectAfterMessages) continue;
    if (it->second.sendCounter >= it->second.spec.sendLimit) continue;
    if (!best || it->second.sendableSeq > best->sendableSeq) best = &it->second;
  }
  return best;
}

EncryptStatus Transport::encrypt(int64_t peer, const uint8_t* packet, size_t len, uint8_t* out, size_t* outLen, Endpoint* to,
                                 uint32_t* peerOut) {
  std::lock_guard<std::mutex> lock(mu_);
  auto fail = [&](EncryptStatus s) {
    ++encryptCounts_[static_cast<size_t>(s)];
    return s;
  };
  if (peer < 0) {
    uint8_t family = 0;
    if (innerPacketLength(packet, len, &family) == 0) return fail(EncryptStatus::BadPacket);
    peer = allowed_.lookup(family == 4 ? packet + 16 : packet + 24, family);
    if (peer < 0) return fail(EncryptStatus::NoPeer);
  }
  *peerOut = static_cast<uint32_t>(peer);
  auto pit = peers_.find(static_cast<uint32_t>(peer));
  if (pit == peers_.end()) return fail(EncryptStatus::NoPeer);
  Peer& p = pit->second;
  if (p.hasForward) {
    if (len > 0) std::memcpy(out, packet, len);
    *outLen = len;
    *to = p.forward;
    return fail(EncryptStatus::Forward);
  }
  Keypair* k = sendKeypair(p);
  if (!k) {
    // Keypairs held back only by their send limit: waiting for the reservation's acknowledgement.
    for (uint32_t idx : p.indices) {
      auto it = keypairs_.find(idx);
      if (it != keypairs_.end() && it->second.spec.canSend && it->second.sendCounter >= it->second.spec.sendLimit)
        return fail(EncryptStatus::SendLimit);
    }
    return fail(EncryptStatus::NoKeypair);
  }
  if (!p.hasEndpoint) return fail(EncryptStatus::NoEndpoint);
  const uint64_t counter = k->sendCounter++;
  const size_t padded = (len + 15) & ~static_cast<size_t>(15);
  out[0] = kTransportType;
  out[1] = out[2] = out[3] = 0;
  putLe32(out + 4, k->spec.remoteIndex);
  putLe64(out + 8, counter);
  uint8_t* body = out + kHeaderSize;
  if (len > 0) std::memcpy(body, packet, len);
  std::memset(body + len, 0, padded - len);
  uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  nonceOf(counter, nonce);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(body, body + padded, nullptr, body, padded, nullptr, 0, nullptr, nonce,
                                                     k->spec.sendKey.data());
  *outLen = kHeaderSize + padded + kTagSize;
  *to = p.endpoint;
  ++k->activity.sent;
  if (len > 0) ++k->activity.sentData;
  k->activity.sendCounter = k->sendCounter;
  p.counters.txPackets++;
  p.counters.txBytes += *outLen;
  ++encryptCounts_[0];
  return EncryptStatus::Sent;
}

std::vector<KeypairActivity> Transport::drainActivity() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<KeypairActivity> out;
  for (auto& [idx, k] : keypairs_) {
    KeypairActivity& a = k.activity;
    if (a.received == 0 && a.sent == 0) continue;
    a.sendCounter = k.sendCounter;
    a.receiveNext = k.replay.next();
    out.push_back(a);
    a.received = a.receivedData = a.sent = a.sentData = 0;
    a.hasFrom = false;
  }
  return out;
}

PeerCounters Transport::peerCounters(uint32_t peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(peer);
  return it == peers_.end() ? PeerCounters{} : it->second.counters;
}

bool Transport::peerEndpoint(uint32_t peer, Endpoint* ep) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.hasEndpoint) return false;
  *ep = it->second.endpoint;
  return true;
}

std::array<uint64_t, kDecryptStatusCount> Transport::decryptCounts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return decryptCounts_;
}

std::array<uint64_t, kEncryptStatusCount> Transport::encryptCounts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return encryptCounts_;
}

}  // namespace gwc::tunnel
