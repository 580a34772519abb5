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

/**
 * Runs the protocol core's tick after the datagrams that are already waiting in the sockets.
 *
 * Node runs due timers before it polls for I/O. After the event loop was busy (a just-started process:
 * JIT, loading the addon, installing a state-sync snapshot; a GC pause), the tick timer fires first and
 * the core would judge its timeouts (master watchdog, join and offer timeouts) on a view that misses
 * every keepalive and reply that arrived in time and waits unread in the socket buffer: a member that
 * stalled 300 ms took its live master for dead and started over. request() (the timer's callback)
 * instead defers the tick with setImmediate, which runs after the loop's next poll for I/O; while that
 * poll read datagrams (ioCount() moved) it defers once more, so a backlog larger than one read batch is
 * drained too, at most `maxRounds` times (4: a keepalive read in any round counts as heard now), so that
 * a flood of datagrams cannot hold the tick back.
 */
export class IoFirstTicker {
  private pending = false;

  constructor(
    private readonly tick: () => void,
    /** Datagrams handled so far (any counter that moves when one was read). */
    private readonly ioCount: () => number,
    private readonly defer: (run: () => void) => void = (run) => void setImmediate(run),
    private readonly maxRounds = 4,
  ) {}

  /** Asks for a tick; several requests before it runs make one tick. */
  request(): void {
    if (this.pending) return;
    this.pending = true;
    let seen = this.ioCount();
    let rounds = 0;
    const run = (): void => {
      const now = this.ioCount();
      if (now !== seen && rounds < this.maxRounds) {
        seen = now;
        rounds++;
        this.defer(run);
        return;
      }
      this.pending = false;
      this.tick();
    };
    this.defer(run);
  }
}
