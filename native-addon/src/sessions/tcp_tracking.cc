// The per-packet TCP rules of the session table; see tcp_tracking.h and README.md ("Window rule").
// No Node.js dependency.
#include "sessions/tcp_tracking.h"

#include <algorithm>

namespace gwc {
namespace sess {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint32_t kMaxAckWinConst = 66000;  // nf_conntrack_proto_tcp MAXACKWINCONST
constexpr uint32_t kMinStaleSlack = 65536;
// While the other side's values come from another member's copy (a replica, or a session first seen
// after the unit was regained) they can lag the endpoints by whatever the replication lagged: under load
// that is more than any window. A quarter of a gigabyte (1/16 of the sequence space) covers a second
// of lag at 2 Gbit/s; the 4-tuple, the direction and the flags are still checked, and the strict rule
// returns as soon as that side sends a fresh segment (README "Window rule").
constexpr uint32_t kStaleSlack = 1u << 28;
constexpr int64_t kInstallGraceMs = 2000;  // see Session::installedMs

// The window shift in effect for side d's window field: only when both SYNs carried the option.
inline uint8_t shiftOf(const Session& s, int d) {
  return ((s.dir[0].flags & kDirWs) && (s.dir[1].flags & kDirWs)) ? s.dir[d].wscale : 0;
}

// The acknowledgment and the timestamp a first segment of side t carries, if any.
void takeAckAndTsval(TcpDir& t, const Parsed& pk) {
  if (pk.tflags & kAck) {
    t.ackEdge = pk.ack;
    t.flags |= kDirAck;
  }
  if (pk.optFlags & kDirTs) {
    t.tsval = pk.tsval;
    t.flags |= kDirTsSeen;
  }
}

// Initializes side t from its SYN (or SYN-ACK): sequence space, options, unscaled window.
void initFromSyn(TcpDir& t, const Parsed& pk) {
  t = TcpDir{};
  t.end = pk.seq + 1 + pk.payload + ((pk.tflags & kFin) ? 1 : 0);
  t.maxend = t.end;
  t.window = pk.win;  // never scaled in a SYN (RFC 7323 2.2)
  t.maxwin = std::max<uint32_t>(pk.win, 1);
  t.wl1 = pk.seq;
  t.flags = static_cast<uint8_t>(kDirSyn | (pk.optFlags & kDirOptMask));
  t.mss = pk.mss;
  t.wscale = pk.wscale;
  takeAckAndTsval(t, pk);
}

// Side t seen mid-stream (loose pick-up): sequence space from this packet, no options known.
void initMidStream(TcpDir& t, const Parsed& pk) {
  t = TcpDir{};
  t.end = pk.seq + pk.payload + ((pk.tflags & kFin) ? 1 : 0);
  t.maxend = t.end + std::max<uint32_t>(pk.win, 1);
  t.window = pk.win;
  t.maxwin = std::max<uint32_t>(pk.win, 1);
  t.wl1 = pk.seq;
  t.flags = kDirSyn;
  takeAckAndTsval(t, pk);
}

inline uint8_t staleBit(int d) { return d == 0 ? kSessStale0 : kSessStale1; }

}  // namespace

bool validTcpFlags(uint8_t f) {
  if ((f & kSyn) && (f & (kRst | kFin))) return false;
  if (!(f & (kSyn | kRst | kAck))) return false;  // null, or FIN/PSH/URG without ACK
  return true;
}

bool tcpOpensSession(const Parsed& pk, Mode mode) {
  const uint8_t f = pk.tflags;
  const bool synOnly = (f & kSyn) && !(f & kAck);
  return synOnly || (mode != Mode::Strict && !(f & kRst));
}

void openTcpSession(Session& s, const Parsed& pk, bool senderIsLo) {
  const uint8_t f = pk.tflags;
  const bool syn = f & kSyn, ack = f & kAck, fin = f & kFin;
  const bool synOnly = syn && !ack;
  if (synOnly) {
    s.origIsLo = senderIsLo;
    s.state = static_cast<uint8_t>(TcpState::SynSent);
    initFromSyn(s.dir[0], pk);
  } else {
    // Loose pick-up (nf_conntrack_tcp_loose): a SYN-ACK names the receiver as the originator;
    // otherwise the sender is taken as the originator. Window checks never apply to it.
    s.flags |= kSessPickedUp;
    if (syn) {
      s.origIsLo = !senderIsLo;
      s.state = static_cast<uint8_t>(TcpState::SynRecv);
      initFromSyn(s.dir[1], pk);
      s.dir[0].end = pk.ack;
      s.dir[0].maxend = pk.ack + std::max<uint32_t>(pk.win, 1);
      s.dir[0].flags = kDirSyn;
    } else {
      s.origIsLo = senderIsLo;
      s.state = static_cast<uint8_t>(fin ? TcpState::FinWait : TcpState::Established);
      initMidStream(s.dir[0], pk);
      if (fin) s.dir[0].flags |= kDirFin;
    }
  }
}

Reason stepTcpSession(Session& s, const Parsed& pk, bool senderIsLo, Mode mode, int64_t nowMs, int* dir) {
  const uint8_t f = pk.tflags;
  const bool strict = mode == Mode::Strict;
  const bool syn = f & kSyn, ack = f & kAck, rst = f & kRst, fin = f & kFin;
  int d = (senderIsLo == static_cast<bool>(s.origIsLo)) ? 0 : 1;
  const bool pickedUp = s.flags & kSessPickedUp;
  // Values from another member's copy that this member's traffic has not refreshed yet: that member
  // may have seen the handshake finish (a replica still in SYN_SENT when its owner died), so a side
  // whose sequence space the copy does not know is learnt from its first segment, as a pickup would.
  const bool foreign = s.flags & (kSessStale0 | kSessStale1);

  const TcpState st = static_cast<TcpState>(s.state);
  if (syn && !ack) {
    if (d == 0 && st == TcpState::SynSent) {
      initFromSyn(s.dir[0], pk);  // retransmitted SYN (or a new ISN for the same ports)
    } else if (st == TcpState::TimeWait || st == TcpState::Closed) {
      // Port reuse: a new connection replaces the old one (conntrack reopens from TIME_WAIT/CLOSE).
      const uint8_t keep = s.flags & (kSessEverSent | kSessInUrgentQ | kSessInLazyQ);
      s.origIsLo = senderIsLo;
      s.flags = keep;
      s.state = static_cast<uint8_t>(TcpState::SynSent);
      s.dir[0] = TcpDir{};
      s.dir[1] = TcpDir{};
      initFromSyn(s.dir[0], pk);
      d = 0;
    } else if (!strict) {
      // loose: tolerated, no change
    } else {
      return Reason::UnexpectedSyn;
    }
  } else if (syn) {  // SYN-ACK
    if (d == 1 && (st == TcpState::SynSent || st == TcpState::SynRecv)) {
      if (strict && !pickedUp && pk.ack != s.dir[0].end) return Reason::OutOfWindow;
      initFromSyn(s.dir[1], pk);
      s.dir[1].maxend = s.dir[1].end + std::max<uint32_t>(s.dir[0].window, 1);
      const uint32_t edge = pk.ack + std::max<uint32_t>(pk.win, 1);
      if (seqAfter(edge, s.dir[0].maxend)) s.dir[0].maxend = edge;
      s.state = static_cast<uint8_t>(TcpState::SynRecv);
    } else if (d == 1 && (s.dir[1].flags & kDirSyn) && seqBefore(pk.seq, s.dir[1].end) &&
               !seqAfter(pk.ack, s.dir[0].end)) {
      // retransmitted SYN-ACK (its ACK was lost): no change
    } else if (strict && !pickedUp) {
      return Reason::UnexpectedSyn;
    }
  } else {
    TcpDir& S = s.dir[d];
    TcpDir& R = s.dir[1 - d];
    if (!(S.flags & kDirSyn)) {
      // This side's sequence space is unknown (no SYN-ACK seen yet).
      if (rst && d == 1 && st == TcpState::SynSent && ack && pk.ack == s.dir[0].end) {
        s.state = static_cast<uint8_t>(TcpState::Closed);  // connection refused
      } else if (!strict || pickedUp || foreign) {
        initMidStream(S, pk);
        if (strict && !pickedUp) {
          // Learnt mid-stream (its window scale unknown): tracked like a picked-up session from now on.
          s.flags |= kSessPickedUp;
          if ((st == TcpState::SynSent || st == TcpState::SynRecv) && ack && !rst && !fin)
            s.state = static_cast<uint8_t>(TcpState::Established);
        }
      } else {
        return st == TcpState::SynSent ? Reason::OutOfWindow : Reason::NoSession;
      }
    } else {
      const uint32_t win = static_cast<uint32_t>(pk.win) << shiftOf(s, d);
      const uint32_t end = pk.seq + pk.payload + (fin ? 1 : 0);
      if (strict && !pickedUp && !foreign && !(R.flags & kDirSyn) && !rst) {
        return Reason::OutOfWindow;  // the originator may send only SYNs (or RST) before the SYN-ACK
      }
      if (strict && !pickedUp && (R.flags & kDirSyn)) {
        // The window rule (README "Window rule").
        uint32_t slack = 0;
        const bool recentlyInstalled = s.installedMs != 0 && nowMs - s.installedMs < kInstallGraceMs;
        if (recentlyInstalled) slack = std::max({S.maxwin, R.maxwin, kMinStaleSlack});
        if (s.flags & staleBit(1 - d)) slack = std::max(slack, kStaleSlack);
        const uint32_t lowerRef = (R.flags & kDirAck) ? R.ackEdge : S.end;
        const bool upperOk = !seqAfter(pk.seq, S.maxend + slack);
        const bool lowerOk = !seqBefore(end, lowerRef - std::max<uint32_t>(R.maxwin, 1) - slack);
        bool ackOk = true;
        if (ack) {
          const uint32_t maxAckWin = std::max(S.maxwin, kMaxAckWinConst);
          // Up to what S's own advertisements let R send (R.maxend), not only what this member saw R
          // send (R.end): an ack in between proves R's data reached S by another path (another
          // member forwarded it while the table converged); refusing it would drop every later ack
          // of the connection, since R only retransmits what S has not acknowledged.
          const uint32_t ackLimit = seqAfter(R.maxend, R.end) ? R.maxend : R.end;
          ackOk = !seqAfter(pk.ack, ackLimit + slack) && !seqBefore(pk.ack, R.end - maxAckWin - slack);
        }
        if (!(upperOk && lowerOk && ackOk)) return Reason::OutOfWindow;
      }
      if (!seqBefore(end, S.end)) s.flags &= static_cast<uint8_t>(~staleBit(d));  // fresh (not a retransmission)
      if (seqAfter(end, S.end)) S.end = end;
      if (ack) {
        if (seqAfter(pk.ack, R.end)) R.end = pk.ack;  // R's data that passed another way
        if (!(S.flags & kDirAck) || !seqBefore(pk.ack, S.ackEdge)) {
          S.ackEdge = pk.ack;
          S.flags |= kDirAck;
          S.window = win;  // window update: the segment does not carry an older ack
          S.wl1 = pk.seq;
        }
        if (win > S.maxwin) S.maxwin = win;
        const uint32_t edge = pk.ack + (win ? win : 1);
        if (seqAfter(edge, R.maxend)) R.maxend = edge;
      }
      if ((pk.optFlags & kDirTs) && (S.flags & kDirTs) && (R.flags & kDirTs) &&
          (!(S.flags & kDirTsSeen) || seqAfter(pk.tsval, S.tsval))) {
        S.tsval = pk.tsval;
        S.flags |= kDirTsSeen;
      }
      if (st != TcpState::Closed) {
        if (rst) {
          s.state = static_cast<uint8_t>(TcpState::Closed);
        } else {
          if (fin) S.flags |= kDirFin;
          TcpDir& O = s.dir[0];
          TcpDir& P = s.dir[1];
          if (st == TcpState::SynRecv && d == 0 && ack && !seqBefore(pk.ack, P.end))
            s.state = static_cast<uint8_t>(TcpState::Established);
          const bool fin0 = O.flags & kDirFin, fin1 = P.flags & kDirFin;
          if (fin0 && fin1) {
            const bool acked0 = (P.flags & kDirAck) && !seqBefore(P.ackEdge, O.end);
            const bool acked1 = (O.flags & kDirAck) && !seqBefore(O.ackEdge, P.end);
            s.state = static_cast<uint8_t>((acked0 && acked1) ? TcpState::TimeWait : TcpState::Closing);
          } else if (fin0 || fin1) {
            if (s.state < static_cast<uint8_t>(TcpState::FinWait)) s.state = static_cast<uint8_t>(TcpState::FinWait);
          }
        }
      }
    }
  }
  *dir = d;
  return Reason::None;
}

uint32_t tcpTimeout(const Timeouts& to, uint8_t state) {
  switch (static_cast<TcpState>(state)) {
    case TcpState::SynSent: return to.synSent;
    case TcpState::SynRecv: return to.synRecv;
    case TcpState::Established: return to.established;
    case TcpState::FinWait: return to.finWait;
    case TcpState::Closing: return to.closing;
    case TcpState::TimeWait: return to.timeWait;
    case TcpState::Closed: return to.closed;
    default: return to.closed;
  }
}

}  // namespace sess
}  // namespace gwc
