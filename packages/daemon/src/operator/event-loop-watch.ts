/**
 * How late the event loop runs, for GET /livez: node:perf_hooks' event-loop delay histogram, read and
 * reset every window. A member whose loop stalls (a blocking bug, a swap storm) stops answering its
 * protocol in time; /livez says so while it still answers HTTP at all.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface EventLoopWatchOptions {
  /** Measuring window, ms (default 1000). */
  readonly windowMs?: number;
  /** A window whose longest delay exceeds this is a stall, ms (default 2000). */
  readonly stallMs?: number;
}

/** What /livez reads. */
export interface EventLoopHealth {
  recentMaxDelayMs(): number;
  stalled(): boolean;
}

export class EventLoopWatch implements EventLoopHealth {
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private readonly stallMs: number;
  private lastMaxMs = 0;
  private lastWindowAt = performance.now();
  private readonly windowMs: number;

  constructor(opts: EventLoopWatchOptions = {}) {
    this.windowMs = opts.windowMs ?? 1000;
    this.stallMs = opts.stallMs ?? 2000;
    this.histogram = monitorEventLoopDelay({ resolution: 20 });
    this.histogram.enable();
    this.timer = setInterval(() => this.roll(), this.windowMs);
    this.timer.unref();
  }

  private roll(): void {
    this.lastMaxMs = this.histogram.max / 1e6;
    this.lastWindowAt = performance.now();
    this.histogram.reset();
  }

  /** The longest delay of the last complete window, or of the window under way when it is longer, ms. */
  recentMaxDelayMs(): number {
    const current = this.histogram.count > 0 ? this.histogram.max / 1e6 : 0;
    // The window timer itself runs late when the loop stalls: that lateness is a delay too.
    const overdue = Math.max(0, performance.now() - this.lastWindowAt - this.windowMs);
    return Math.max(this.lastMaxMs, current, overdue);
  }

  stalled(): boolean {
    return this.recentMaxDelayMs() > this.stallMs;
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
