// The per-packet TCP rules of the session table: which packets open a session, the state machine
// (SYN, SYN-ACK, FIN, RST, port reuse), the window rule on sequence and acknowledgment numbers
// (README.md "Window rule", after Linux nf_conntrack_proto_tcp and G. van Rooij, "Real Stateful TCP
// Packet Filtering in IP Filter", 2000), the options a SYN negotiates, and the idle timeout per
// state. Pure functions on one Session; the table (session_table.h) owns lookup, capacity and
// replication. No Node.js dependency.
#pragma once

#include <cstdint>

#include "sessions/parsed_packet.h"
#include "sessions/session.h"

namespace gwc {
namespace sess {

// Sequence-space comparisons (RFC 1982 serial arithmetic on 32 bits).
inline bool seqBefore(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
inline bool seqAfter(uint32_t a, uint32_t b) { return seqBefore(b, a); }
inline uint32_t seqDistance(uint32_t a, uint32_t b) {
  const int32_t d = static_cast<int32_t>(a - b);
  return d < 0 ? static_cast<uint32_t>(-static_cast<int64_t>(d)) : static_cast<uint32_t>(d);
}

// False for a flag combination no stack sends: SYN with RST or FIN; none of SYN, RST, ACK.
bool validTcpFlags(uint8_t tcpFlags);

// Whether a TCP packet of a flow without a session opens one: a SYN; in loose mode anything but a
// RST (a mid-stream pick-up).
bool tcpOpensSession(const Parsed& pk, Mode mode);

// Sets the originator, state and per-direction state of a new session s from the packet that
// opens it (tcpOpensSession): SYN_SENT from a SYN, else a loose pick-up (kSessPickedUp).
void openTcpSession(Session& s, const Parsed& pk, bool senderIsLo);

// Applies a packet of an existing session. Reason::None: accepted, s updated, *dir = the packet's
// direction (0 after a port reuse). Otherwise the drop reason, s unchanged. nowMs: for the grace
// after an install (Session::installedMs).
Reason stepTcpSession(Session& s, const Parsed& pk, bool senderIsLo, Mode mode, int64_t nowMs, int* dir);

// Idle timeout of a TCP session in `state` (TcpState).
uint32_t tcpTimeout(const Timeouts& to, uint8_t state);

}  // namespace sess
}  // namespace gwc
