/**
 * The one in-memory datagram network, for tests and simulations: members attach by address and get a
 * MemoryTransport. It runs on a virtual clock (no timers, no Date.now(), no Math.random()): datagrams are
 * queued with a delivery time and delivered only when the owner calls advance(ms) or flush(). Loss is
 * drawn from a seeded generator (pure-rand), so a run is a function of its seed and its inputs.
 *
 * Delivery order: by delivery time, then by send order. A datagram's fate is decided in two places:
 * at send (the drop predicate, then seeded loss) and at delivery (partition, attachment, closed port).
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { Transport } from './transport.js';

/** One datagram on the wire, per receiver (a broadcast appears once for each receiver). */
export interface Datagram {
  readonly from: string;
  readonly to: string;
  readonly bytes: Uint8Array;
}

export interface MemoryNetworkOptions {
  /** Seed of the loss and jitter generator. Default 1. */
  readonly seed?: number;
  /** One-way delay of every datagram, ms. Default 0 (delivered by the next flush()). */
  readonly delayMs?: number;
  /** Extra delay drawn uniformly from [0, jitterMs), ms. Default 0. */
  readonly jitterMs?: number;
  /** Probability that a datagram is lost, 0..1. Default 0. */
  readonly loss?: number;
  /** Keep every datagram sent in `wire` (replay and tamper tests, golden scenarios). Default true. */
  readonly recordWire?: boolean;
}

interface Queued extends Datagram {
  readonly at: number;
  readonly order: number;
}

/** Most deliveries one flush() makes: a guard against two handlers answering each other forever. */
const FLUSH_LIMIT = 10_000;

/** A random number in [0, 1) from a seeded generator. */
export type UnitRandom = () => number;

/** pure-rand's xoroshiro128+ as a [0, 1) source; the simulations' only source of randomness. */
export function seededRandom(seed: number): UnitRandom {
  const rng = xoroshiro128plus(seed);
  return () => uniformFloat64(rng);
}

export class MemoryNetwork {
  /** Every datagram sent, per receiver, before loss, drop or partition (empty with recordWire false). */
  readonly wire: Datagram[] = [];
  /** Datagrams for which this returns true are dropped at send (tests that cut one path). */
  drop: (d: Datagram) => boolean = () => false;
  /** Probability that a datagram is lost, 0..1. */
  loss: number;
  /** Per-member loss, both directions, 0..1; a datagram is lost with the largest applicable probability. */
  readonly memberLoss = new Map<string, number>();
  /** Datagrams handed to a receiver, lost at random, and dropped (predicate, partition, no receiver). */
  readonly counters = { delivered: 0, lost: 0, dropped: 0 };
  private clock = 0;
  private readonly ports = new Map<string, MemoryTransport>();
  private queue: Queued[] = [];
  private order = 0;
  private delivering = false;
  /** group per member; datagrams cross only within a group. Empty: no partition. */
  private groups = new Map<string, number>();
  private readonly random: UnitRandom;
  private readonly delayMs: number;
  private readonly jitterMs: number;
  private readonly recordWire: boolean;

  constructor(options: MemoryNetworkOptions = {}) {
    this.random = seededRandom(options.seed ?? 1);
    this.delayMs = options.delayMs ?? 0;
    this.jitterMs = options.jitterMs ?? 0;
    this.loss = options.loss ?? 0;
    this.recordWire = options.recordWire ?? true;
  }

  /** The virtual clock, ms. Moves only in advance(). */
  get now(): number {
    return this.clock;
  }

  /** Datagrams queued and not yet delivered. */
  get pending(): number {
    return this.queue.length;
  }

  /** Delivery time of the next queued datagram, or Infinity. */
  get nextDueAt(): number {
    return this.queue[0]?.at ?? Infinity;
  }

  /** Attaches a member at `ip` (replacing one attached there before) and returns its transport. */
  attach(ip: string): MemoryTransport {
    const t = new MemoryTransport(this, ip);
    this.ports.set(ip, t);
    return t;
  }

  detach(ip: string): void {
    this.ports.delete(ip);
  }

  /** The addresses attached now, in attach order. */
  members(): string[] {
    return [...this.ports.keys()];
  }

  /** Splits the network: members in different groups cannot reach each other; unnamed members reach nobody grouped. */
  partition(...groups: readonly (readonly string[])[]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((m) => this.groups.set(m, i)));
  }

  heal(): void {
    this.groups = new Map();
  }

  reachable(a: string, b: string): boolean {
    if (this.groups.size === 0) return true;
    return this.groups.get(a) === this.groups.get(b);
  }

  /** Called by MemoryTransport: `to` is an address or 'broadcast' (every attached member but the sender). */
  post(from: string, to: string | 'broadcast', bytes: Uint8Array): void {
    const targets = to === 'broadcast' ? [...this.ports.keys()].filter((ip) => ip !== from) : [to];
    for (const t of targets) {
      const d: Datagram = { from, to: t, bytes };
      if (this.recordWire) this.wire.push(d);
      if (this.drop(d)) {
        this.counters.dropped++;
        continue;
      }
      const loss = Math.max(this.loss, this.memberLoss.get(from) ?? 0, this.memberLoss.get(t) ?? 0);
      if (loss > 0 && this.random() < loss) {
        this.counters.lost++;
        continue;
      }
      const jitter = this.jitterMs > 0 ? this.random() * this.jitterMs : 0;
      this.enqueue(d, this.clock + this.delayMs + jitter);
    }
  }

  /** Queues `bytes` for `to` as if `from` had sent them, due now; not logged, never lost or dropped at send. */
  inject(from: string, to: string, bytes: Uint8Array): void {
    this.enqueue({ from, to, bytes }, this.clock);
  }

  /**
   * Delivers the next queued datagram if it is due by `until` (default: now), moving the clock to its
   * delivery time. Returns false when none is due. Not re-entrant: a handler that calls it gets false.
   */
  deliverNext(until = this.clock): boolean {
    if (this.delivering) return false;
    const d = this.queue[0];
    if (!d || d.at > until) return false;
    this.queue.shift();
    if (d.at > this.clock) this.clock = d.at;
    const port = this.ports.get(d.to);
    if (!port || !this.reachable(d.from, d.to)) {
      this.counters.dropped++;
      return true;
    }
    this.delivering = true;
    try {
      if (port.deliver(d.bytes, d.from)) this.counters.delivered++;
      else this.counters.dropped++;
    } finally {
      this.delivering = false;
    }
    return true;
  }

  /** Delivers everything due now, including what handlers send meanwhile with no delay (at most 10,000). */
  flush(): void {
    for (let i = 0; i < FLUSH_LIMIT && this.deliverNext(); i++);
  }

  /** Moves the clock forward by `ms`, delivering every datagram due by then in order. */
  advance(ms: number): void {
    const end = this.clock + ms;
    while (this.deliverNext(end));
    if (end > this.clock) this.clock = end;
  }

  private enqueue(d: Datagram, at: number): void {
    const q: Queued = { ...d, at, order: this.order++ };
    // Insert keeping (at, order) order; later sends go after equal times.
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.at > at) i--;
    this.queue.splice(i, 0, q);
  }
}

/** A member's port on a MemoryNetwork. */
export class MemoryTransport implements Transport {
  readonly counters = { sent: 0, received: 0, sendErrors: 0 };
  private handler: (bytes: Uint8Array, fromIp: string) => void = () => {};
  private closed = false;

  constructor(
    private readonly network: MemoryNetwork,
    readonly ip: string,
  ) {}

  send(to: string, bytes: Uint8Array): void {
    this.counters.sent++;
    if (this.closed) {
      this.counters.sendErrors++;
      return;
    }
    this.network.post(this.ip, to, bytes);
  }

  broadcast(bytes: Uint8Array): void {
    this.counters.sent++;
    if (this.closed) {
      this.counters.sendErrors++;
      return;
    }
    this.network.post(this.ip, 'broadcast', bytes);
  }

  onReceive(handler: (bytes: Uint8Array, fromIp: string) => void): void {
    this.handler = handler;
  }

  /** Called by the network; false when the port is closed (nothing handed over). */
  deliver(bytes: Uint8Array, from: string): boolean {
    if (this.closed) return false;
    this.counters.received++;
    this.handler(bytes, from);
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
