// One session as the table holds it and as it is replicated: the canonical flow key, the per-direction
// TCP state, the session's flags and version, and the fixed-size record of 003 Figure 7 (README.md
// "Session records") that carries it to the other members. No Node.js dependency.
//
// Directions: dir 0 = originator -> responder ("send" in Figure 7), dir 1 = responder -> originator
// ("receive"). The originator is the sender of the first SYN (TCP) or first datagram (UDP, other),
// or, for a session picked up mid-stream in loose mode, the sender of that first packet.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace gwc {
namespace sess {

constexpr size_t kRecordSize = 112;   // encoded Session record, format 1 (README "Session records")
constexpr size_t kKeySize = 40;       // encoded FlowKey
constexpr uint8_t kRecordFormat = 1;
constexpr uint16_t kNoUnit = 0xFFFF;

enum class TcpState : uint8_t {
  None = 0,         // UDP / other: 0 = one direction seen, Replied = both (see UdpState)
  SynSent = 1,      // originator's SYN seen
  SynRecv = 2,      // responder's SYN-ACK seen
  Established = 3,  // originator's ACK of the SYN-ACK seen (or picked up mid-stream)
  FinWait = 4,      // one side sent FIN
  Closing = 5,      // both sides sent FIN, not both acknowledged yet
  TimeWait = 6,     // both FINs acknowledged
  Closed = 7,       // RST seen
};
constexpr uint8_t kTcpStateCount = 8;
// UDP / other protocols reuse the state byte: 0 unreplied, 1 replied (both directions seen).
constexpr uint8_t kUnreplied = 0, kReplied = 1;

enum class Verdict : uint8_t { Accept = 0, Drop = 1 };

enum class Reason : uint8_t {
  None = 0,
  NoSession = 1,      // strict: TCP without SYN (or SYN-ACK, RST...) and no session
  OutOfWindow = 2,    // strict: seq/ack outside the window rule (README "Window rule")
  TableFull = 3,      // strict: a new TCP session and maxSessions sessions exist
  Malformed = 4,      // not a parseable IPv4/IPv6 packet (truncated headers, bad lengths)
  InvalidFlags = 5,   // TCP flag combination no stack sends (SYN+RST, SYN+FIN, none, FIN/PSH/URG without ACK)
  UnexpectedSyn = 6,  // strict: a SYN (no ACK) for a session that is not closing/closed nor in SYN_SENT
  Untracked = 7,      // ACCEPT without state: fragment, or table full for UDP/other (and TCP in loose)
};
constexpr uint8_t kReasonCount = 8;

enum class Mode : uint8_t { Strict = 0, Loose = 1 };

// Timeouts in ms per state (README "Timeouts"). Idle time since the last packet (or install).
struct Timeouts {
  uint32_t synSent = 30'000;
  uint32_t synRecv = 30'000;
  uint32_t established = 7'200'000;  // 2 h
  uint32_t finWait = 120'000;
  uint32_t closing = 120'000;
  uint32_t timeWait = 120'000;
  uint32_t closed = 10'000;
  uint32_t udpUnreplied = 30'000;
  uint32_t udpReplied = 180'000;
  uint32_t otherUnreplied = 30'000;
  uint32_t otherReplied = 60'000;
};

// Canonical flow key: (family, proto, lower endpoint, higher endpoint); endpoints ordered by
// (address bytes, port). IPv4 addresses occupy bytes 0..3 (network order), the rest zero.
struct FlowKey {
  uint8_t family = 0;  // 4 or 6
  uint8_t proto = 0;
  uint16_t portLo = 0, portHi = 0;  // host order; 0 for protocols without ports
  std::array<uint8_t, 16> addrLo{}, addrHi{};
  bool operator==(const FlowKey& o) const {
    return family == o.family && proto == o.proto && portLo == o.portLo && portHi == o.portHi &&
           addrLo == o.addrLo && addrHi == o.addrHi;
  }
};
struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const;
};

// Per-direction TCP tracking state (the sender of the direction's data is "this side").
struct TcpDir {
  uint32_t end = 0;     // next sequence: highest seq + len (+SYN, +FIN) sent
  uint32_t maxend = 0;  // highest right edge the OTHER side advertised: max(its ack + its window)
  uint32_t maxwin = 0;  // largest (scaled) window this side advertised
  uint32_t window = 0;  // last (scaled) window this side advertised
  uint32_t ackEdge = 0; // highest ack this side sent (valid with kDirAck)
  uint32_t tsval = 0;   // most recent TSval this side sent (valid with kDirTsSeen)
  uint32_t wl1 = 0;     // seq of this side's last segment that updated its window
  uint16_t mss = 0;     // MSS option of this side's SYN (0: none)
  uint8_t wscale = 0;   // window shift applied to this side's window field (0 unless both sent WS)
  uint8_t flags = 0;    // kDir* bits
};
// TcpDir::flags (also the per-direction byte of the record's dirflags)
constexpr uint8_t kDirSyn = 0x01;     // SYN seen from this side (its sequence space is known)
constexpr uint8_t kDirFin = 0x02;     // FIN seen from this side
constexpr uint8_t kDirAck = 0x04;     // ACK seen from this side (ackEdge valid)
constexpr uint8_t kDirWs = 0x08;      // window scale option in this side's SYN
constexpr uint8_t kDirSack = 0x10;    // SACK permitted option in this side's SYN
constexpr uint8_t kDirTs = 0x20;      // timestamps option in this side's SYN
constexpr uint8_t kDirMss = 0x40;     // MSS option in this side's SYN
constexpr uint8_t kDirTsSeen = 0x80;  // tsval valid
constexpr uint8_t kDirOptMask = kDirWs | kDirSack | kDirTs | kDirMss;

// Session flags (Session::flags, the record's byte 7 holds kSessPickedUp)
constexpr uint8_t kSessPickedUp = 0x01;  // loose mode: created mid-stream, originator guessed
constexpr uint8_t kSessReplica = 0x02;   // installed from a record, not touched by local traffic since
constexpr uint8_t kSessStale0 = 0x04;    // dir 0 values from a replica, not refreshed by dir 0 traffic yet
constexpr uint8_t kSessStale1 = 0x08;    // dir 1 likewise
constexpr uint8_t kSessEverSent = 0x10;  // some version was collected (replicated): removal is reported
constexpr uint8_t kSessInUrgentQ = 0x20;
constexpr uint8_t kSessInLazyQ = 0x40;

enum class Dirty : uint8_t { Clean = 0, Lazy = 1, Urgent = 2 };

struct Session {
  uint8_t origIsLo = 1;  // the originator is FlowKey's lower endpoint
  uint8_t state = 0;     // TcpState for TCP; kUnreplied/kReplied otherwise
  uint8_t flags = 0;     // kSess*
  Dirty dirty = Dirty::Clean;
  uint16_t unit = kNoUnit;
  uint32_t version = 0;  // incremented on every essential change
  int64_t lastSeenMs = 0;
  TcpDir dir[2];
  // The values of the last collected (replicated) version, for the coalescing rule.
  uint32_t replEnd[2] = {0, 0};
  uint32_t replAck[2] = {0, 0};
  int64_t replSeenMs = 0;
  // When this copy was last installed from another member (0: never). For kInstallGraceMs after it the
  // window rule keeps its slack whatever the endpoints send: a takeover may see segments that crossed
  // the replicated state (both directions were in flight while the units moved).
  int64_t installedMs = 0;
};

// A decoded record: the key, the session, and its originator endpoints.
struct Record {
  FlowKey key;
  Session s;
  int64_t lastSeenMs = 0;  // the encoder's clock
};

// The canonical key of a flow from one packet's endpoints (a: source, b: destination); *aIsLo tells
// whether a is the key's lower endpoint.
FlowKey flowKeyOf(uint8_t family, uint8_t proto, const std::array<uint8_t, 16>& a, uint16_t pa,
                  const std::array<uint8_t, 16>& b, uint16_t pb, bool* aIsLo);

// Record encoding (README "Session records"): fixed kRecordSize bytes, little-endian.
void encodeRecord(const FlowKey& k, const Session& s, uint8_t* out);
bool decodeRecord(const uint8_t* p, size_t len, Record* r);
void encodeKey(const FlowKey& k, uint8_t* out);
bool decodeKey(const uint8_t* p, size_t len, FlowKey* k);

const char* stateName(uint8_t proto, uint8_t state);
const char* reasonName(Reason r);

}  // namespace sess
}  // namespace gwc
