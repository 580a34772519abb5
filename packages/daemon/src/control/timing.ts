/**
 * The member driver's timing rules, pure (time comes in): how often the core is ticked, how often a
 * repeated warning may reach the log, and how the cluster IP is announced.
 */

/** The core needs a tick at least every T/5 (T the keepalive period); the driver ticks every T/10, at least 2 ms apart (T/5 at the default T = 10 ms). */
export function tickPeriodMs(keepalivePeriodMs: number): number {
  return Math.max(2, Math.floor(keepalivePeriodMs / 10));
}

/** One log line per drop reason every 5 s at most: a flood of bad datagrams must not flood the log. */
export const DROP_LOG_EVERY_MS = 5000;

/** Lets one line per key through every `everyMs`; the rest are only counted by the caller. */
export class LogThrottle {
  private readonly last = new Map<string, number>();

  constructor(private readonly everyMs: number) {}

  /** True when a line for `key` may be logged at `now` (ms, monotonic); it is then counted as logged. */
  allow(key: string, now: number): boolean {
    const last = this.last.get(key) ?? -Infinity;
    if (now - last < this.everyMs) return false;
    this.last.set(key, now);
    return true;
  }
}

/**
 * Gratuitous ARP each time the master announces the cluster IPs (taking office, winning a tie-break,
 * admitting a member): 3 rounds 500 ms apart, so that neighbours that lose one frame still move to this
 * member's MAC within about 1 s (keepalived repeats its gratuitous ARPs the same way:
 * vrrp_garp_master_repeat / vrrp_garp_interval). Each round covers every cluster IP on every interface.
 */
export const CLUSTER_IP_ANNOUNCEMENT = { rounds: 3, intervalMs: 500 } as const;
