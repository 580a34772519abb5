#include "fastpath/flow_map.h"

#include <unistd.h>

#include <cstring>
#include <mutex>
#include <vector>

extern "C" {
#include <bpf/bpf.h>
}

#include "sessions/session.h"
#include "sessions/session_table.h"

namespace gwc {
namespace {

constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04;

// The directional key of a routed IPv4 TCP/UDP packet, or false (another protocol, a fragment, short
// headers, a TCP SYN/FIN/RST).
bool flowKeyOfPacket(const uint8_t* ip, size_t len, gwc_flow_key* k) {
  if (len < 20 || (ip[0] >> 4) != 4) return false;
  const size_t hl = static_cast<size_t>(ip[0] & 0x0F) * 4;
  if (hl < 20 || len < hl + 4) return false;
  if (((ip[6] << 8) | ip[7]) & 0x3FFF) return false;  // a fragment
  const uint8_t proto = ip[9];
  if (proto != 6 && proto != 17) return false;
  if (proto == 6 && (len < hl + 14 || (ip[hl + 13] & (kTcpFin | kTcpSyn | kTcpRst)))) return false;
  std::memset(k, 0, sizeof *k);
  std::memcpy(&k->saddr, ip + 12, 4);
  std::memcpy(&k->daddr, ip + 16, 4);
  std::memcpy(&k->sport, ip + hl, 2);
  std::memcpy(&k->dport, ip + hl + 2, 2);
  k->proto = proto;
  return true;
}

gwc_flow_key reversed(const gwc_flow_key& k) {
  gwc_flow_key r{};
  r.saddr = k.daddr;
  r.daddr = k.saddr;
  r.sport = k.dport;
  r.dport = k.sport;
  r.proto = k.proto;
  return r;
}

uint16_t hostPort(uint16_t networkOrder) {
  const auto* b = reinterpret_cast<const uint8_t*>(&networkOrder);
  return static_cast<uint16_t>((b[0] << 8) | b[1]);
}

std::array<uint8_t, 16> v4Bytes(uint32_t networkOrder) {
  std::array<uint8_t, 16> a{};
  std::memcpy(a.data(), &networkOrder, 4);
  return a;
}

}  // namespace

FlowMap::FlowMap(int mapFd) : fd_(dup(mapFd)) {}

FlowMap::~FlowMap() {
  if (fd_ >= 0) close(fd_);
}

uint8_t FlowMap::renew(uint16_t unit) {
  auto& g = gen_[unit % GWC_WORK_UNITS];
  const uint8_t next = static_cast<uint8_t>(g.load(std::memory_order_relaxed) + 1);
  g.store(next, std::memory_order_release);
  return next;
}

void FlowMap::offload(const uint8_t* ip, size_t len, uint16_t unit) noexcept {
  gwc_flow_key k;
  if (fd_ < 0 || unit >= GWC_WORK_UNITS || !flowKeyOfPacket(ip, len, &k)) return;
  gwc_flow_value v{};
  v.unit = unit;
  v.generation = generation(unit);
  const gwc_flow_key r = reversed(k);
  const bool ok = bpf_map_update_elem(fd_, &k, &v, BPF_ANY) == 0 && bpf_map_update_elem(fd_, &r, &v, BPF_ANY) == 0;
  (ok ? offloaded_ : offloadErrors_).fetch_add(1, std::memory_order_relaxed);
}

FlowSyncResult FlowMap::sync(sess::SessionTable& table, int64_t nowWallMs, uint64_t nowMonoNs) {
  FlowSyncResult res;
  if (fd_ < 0) return res;
  std::vector<gwc_flow_key> stale;
  gwc_flow_key key{}, next{};
  bool first = true;
  // Deleting while walking would restart the walk: the deletions come after it. An entry the kernel
  // evicts meanwhile only ends the walk early (the next sync starts again from the beginning).
  while (bpf_map_get_next_key(fd_, first ? nullptr : &key, &next) == 0) {
    first = false;
    key = next;
    gwc_flow_value v;
    if (bpf_map_lookup_elem(fd_, &key, &v) != 0) continue;  // evicted between the two calls
    ++res.entries;
    if (v.unit >= GWC_WORK_UNITS) {
      stale.push_back(key);
      continue;
    }
    // An entry of an earlier generation passes nothing any more, but what it passed before the unit
    // left (or was held) is still folded in, once, before it goes: a hand-over sends these sessions.
    const bool current = v.generation == generation(v.unit);
    bool senderIsLo = true;
    const sess::FlowKey fk = sess::flowKeyOf(4, key.proto, v4Bytes(key.saddr), hostPort(key.sport), v4Bytes(key.daddr),
                                             hostPort(key.dport), &senderIsLo);
    sess::OffloadedDirection d;
    if (v.seen_ns != 0) {
      d.seen = true;
      const int64_t ageMs = nowMonoNs > v.seen_ns ? static_cast<int64_t>((nowMonoNs - v.seen_ns) / 1'000'000) : 0;
      d.seenMs = nowWallMs - ageMs;
      d.end = v.end;
      d.ack = v.ack;
      d.window = v.window;
      d.tcpFlags = v.tcp_flags;
      ++res.refreshed;
    }
    bool keep;
    {
      std::lock_guard<std::mutex> lock(table.mutex());
      keep = table.refreshOffloaded(fk, senderIsLo, d);
    }
    if (!keep || !current) stale.push_back(key);
  }
  for (const gwc_flow_key& k : stale) {
    if (bpf_map_delete_elem(fd_, &k) == 0) ++res.removed;
    else if (errno != ENOENT) ++res.errors;
  }
  return res;
}

}  // namespace gwc
