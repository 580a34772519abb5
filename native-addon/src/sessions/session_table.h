// The stateful session table: per-flow TCP/UDP/other state tracked from both directions of the
// traffic a member ACCEPTs (a stateful firewall's window tracking, after Linux nf_conntrack_proto_tcp
// and G. van Rooij, "Real Stateful TCP Packet Filtering in IP Filter", 2000), the replicated record
// of 003 Figure 7 (README.md "Session records") with change tracking for state sync, and the
// installation of replicas so a surviving member can carry on a dead member's TCP sessions.
//
// No Node.js dependency (session_wrap.cc is the N-API glue). Not thread-safe: one owner at a time.
// The packet engine thread and the JS thread share a table through mutex() (the wrap takes it in
// every call; an engine takes it per packet or per batch).
//
// The session's own data, its key and its record: session.h. The per-packet TCP rules: tcp_tracking.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "sessions/session.h"

namespace gwc {
namespace sess {

struct Parsed;  // a parsed IP packet (parsed_packet.h)

struct TrackResult {
  Verdict verdict = Verdict::Accept;
  Reason reason = Reason::None;
  bool created = false;
  bool session = false;  // a session exists after the packet
  uint8_t proto = 0;     // the packet's transport protocol
  uint8_t state = 0;     // the session's state after the packet (0 when none)
  uint16_t unit = kNoUnit;
};

struct InstallResult {
  uint32_t installed = 0;  // new sessions
  uint32_t updated = 0;    // existing sessions replaced by a higher version, or moved forward (two writers)
  uint32_t stale = 0;      // ignored: not newer than the session held (nor further along, for TCP)
  uint32_t invalid = 0;    // undecodable records
  uint32_t refused = 0;    // new and the table is full
};

struct Collected {
  std::vector<uint8_t> records;  // n * kRecordSize
  std::vector<uint8_t> removed;  // m * kKeySize
  size_t pendingUrgent = 0, pendingLazy = 0, pendingRemoved = 0;  // still queued after this call
};

struct TableStats {
  uint64_t sessions = 0, tcp = 0, udp = 0, other = 0, replicas = 0;
  uint64_t created = 0, refused = 0, installRefused = 0, expired = 0, removed = 0;
  uint64_t accepted = 0, dropped = 0;
  std::array<uint64_t, kReasonCount> reasons{};  // per Reason (accepts counted under None/Untracked)
  uint64_t recordsCollected = 0, removalsCollected = 0, removalsDropped = 0;
  uint64_t installed = 0, installStale = 0, installInvalid = 0;
  uint64_t regained = 0;  // sessions first seen after this member (re)gained their unit (marked stale)
  uint64_t offloadRefreshed = 0;  // refreshOffloaded() calls that carried a kernel-passed packet
};

// What the kernel fast path saw of one direction of an offloaded flow since the flow was offloaded
// (fastpath/flow_map.h): its last packet's values, when it was seen (wall ms), or nothing yet.
struct OffloadedDirection {
  bool seen = false;
  int64_t seenMs = 0;
  uint32_t end = 0;     // TCP: seq + payload of the last packet
  uint32_t ack = 0;
  uint16_t window = 0;  // raw window field (the session's window scale applies)
  uint8_t tcpFlags = 0;
};

struct ListQuery {
  size_t offset = 0, limit = 100;
  int32_t unit = -1;        // -1: any
  int32_t proto = -1;       // -1: any
  int32_t port = -1;        // either endpoint; -1: any
  uint8_t addrFamily = 0;   // 0: any
  std::array<uint8_t, 16> addr{};  // either endpoint
};

class SessionTable {
 public:
  explicit SessionTable(size_t maxSessions = 1'000'000, Mode mode = Mode::Strict, Timeouts t = {});

  // The packet at p (an IPv4/IPv6 datagram from its IP header). unit: the work unit the caller
  // computed (the filter), or kNoUnit to compute the symmetric src^dst rule here.
  // unitGainedMs: when this member last became the owner of the packet's unit (0: unknown). A session
  // not seen since then carries another member's view of the connection, which may lag what the
  // endpoints did while that member owned it: its first packet here marks both directions stale and
  // restarts the install grace (README "Window rule"), as an install from a peer does.
  TrackResult track(const uint8_t* p, size_t len, int64_t nowMs, uint16_t unit = kNoUnit, int64_t unitGainedMs = 0);

  // Replication. maxRecords bounds records and removal keys separately.
  Collected collectChanges(size_t maxRecords, int64_t nowMs, bool lazy);
  InstallResult install(const uint8_t* records, size_t count, int64_t nowMs);
  size_t remove(const uint8_t* keys, size_t count);  // count keys of kKeySize bytes; no removal reported
  size_t expire(int64_t nowMs);                       // removes timed-out sessions, reports local ones
  // Folds what the kernel passed of one direction of an offloaded flow into its session, as if the
  // engine had tracked the last packet (last seen, sequence end, ack, window; lazy replication by the
  // coalescing rule). senderIsLo: the direction's sender is k's lower endpoint. False when the flow's
  // packets must go up to the engine again: no session, or a TCP session no longer ESTABLISHED.
  bool refreshOffloaded(const FlowKey& k, bool senderIsLo, const OffloadedDirection& p);
  // Encoded records of the sessions whose unit is set in bitmap (128 bytes, bit u%8 of byte u/8).
  std::vector<uint8_t> sessionsForUnits(const uint8_t* bitmap) const;
  // Encoded records matching q (iteration order of the hash table: stable while no session is
  // added), and the number of matches.
  std::vector<uint8_t> list(const ListQuery& q, size_t* total) const;
  const Session* find(const FlowKey& k) const;

  size_t size() const { return map_.size(); }
  size_t maxSessions() const { return max_; }
  void setMaxSessions(size_t n) { max_ = n; }
  Mode mode() const { return mode_; }
  void setMode(Mode m) { mode_ = m; }
  const Timeouts& timeouts() const { return to_; }
  void setTimeouts(const Timeouts& t) { to_ = t; }
  TableStats stats() const;
  // Estimated heap bytes per session (hash node + bucket + allocator header), for sizing maxSessions.
  static size_t bytesPerSession();
  std::mutex& mutex() { return mu_; }

  uint32_t timeoutOf(uint8_t proto, const Session& s) const;

 private:
  using Map = std::unordered_map<FlowKey, Session, FlowKeyHash>;
  TrackResult trackTcp(const Parsed& pk, const FlowKey& k, bool senderIsLo, int64_t nowMs, uint16_t unit, int64_t unitGainedMs);
  TrackResult trackOther(const Parsed& pk, const FlowKey& k, bool senderIsLo, int64_t nowMs, uint16_t unit);
  TrackResult addSession(const FlowKey& k, const Session& s, TrackResult r);
  void markChanged(const FlowKey& k, Session& s, bool urgent);
  void maybeKeepalive(const FlowKey& k, Session& s, uint8_t proto, int64_t nowMs);
  void reportRemoval(const FlowKey& k, const Session& s);
  TrackResult finish(TrackResult r);

  Map map_;
  size_t max_;
  Mode mode_;
  Timeouts to_;
  std::vector<FlowKey> urgentQ_, lazyQ_, removedQ_;
  mutable TableStats st_;
  std::mutex mu_;
};

}  // namespace sess
}  // namespace gwc
