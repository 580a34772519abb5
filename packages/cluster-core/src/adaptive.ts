/**
 * The adaptive keepalive interval (digest section 1, "Keepalives, watchdogs, adaptive interval").
 *
 *   S     = seq - last_seq - 1                 keepalives lost since the last one received
 *   P_new = P_old * 127/128 + S * 1/128        running loss estimate (lost keepalives per keepalive)
 *   n     = smallest integer n >= minN with n * P^n < 1/K, searched up to maxN (the digest and the default: minN = 2;
 *           docs/decisions.md "Failover defaults")
 *
 * gwcluster's reading of n (docs/decisions.md): keepalives are sent every period T whatever n is; a peer
 * is declared dead when n consecutive keepalives are missing, i.e. when nothing was heard from it for
 * (n + 0.5) * T. So n is "the number of successive losses that must not be mistaken for death".
 */

/** Keepalives lost between two received sequence numbers (0 for duplicates or reordering). */
export function lostBetween(lastSeq: number, seq: number): number {
  return seq > lastSeq ? seq - lastSeq - 1 : 0;
}

export function updateLoss(p: number, lost: number): number {
  return (p * 127) / 128 + lost / 128;
}

export function watchdogPeriods(p: number, k: number, maxN: number, minN = 2): number {
  for (let n = Math.max(1, minN); n <= maxN; n++) {
    if (n * Math.pow(p, n) < 1 / k) return n;
  }
  return maxN;
}

/** Time without a keepalive after which a peer is declared dead, ms. */
export function watchdogMs(n: number, periodMs: number): number {
  return (n + 0.5) * periodMs;
}

/**
 * A peer whose fast-liveness heartbeats are heard is declared dead by its keepalives alone only after this
 * many watchdogs: its heartbeats prove the process and its packet path alive, and a keepalive that is
 * late while they arrive is a busy event loop on one side, not a death (docs/decisions.md, "Fast
 * liveness"). A process whose event loop hangs for good is still declared dead, later.
 */
export const VOUCHED_WATCHDOG_FACTOR = 4;

/** The keepalive watchdog for a peer, ms: watchdogMs(n, T), times VOUCHED_WATCHDOG_FACTOR while fast liveness vouches for it. */
export function peerWatchdogMs(n: number, periodMs: number, vouched: boolean): number {
  return watchdogMs(n, periodMs) * (vouched ? VOUCHED_WATCHDOG_FACTOR : 1);
}

/**
 * A fast-liveness report of a peer's silence is a death once that peer's keepalives are late by this many
 * periods as well: a second, independent signal, so a broken heartbeat path (a firewall rule on the
 * liveness port) never evicts a live member. One period: the report itself already needs n heartbeats
 * missing in a row with n adapted to the measured loss (n * P^n < 1/K), so a chance report is rarer than
 * 1/K; one late keepalive on top keeps a chance death below 1/K times the keepalive loss rate.
 */
export const LIVENESS_KEEPALIVES_LATE = 1;
