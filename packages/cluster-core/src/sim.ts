/**
 * A deterministic in-memory network for the protocol core: N members, a virtual clock, per-message
 * latency, seeded loss and partitions. Every message goes through the real codec (encode + decode), so
 * the simulation also exercises the wire format. Used by the core's tests; never by a running member.
 */
import { decodeClusterMessage, encodeClusterMessage, type ClusterMessage, type MemberId, UNIT_COUNT } from '@gwcluster/wire';
import { coreConfig, type CoreConfig } from './config.js';
import type { CoreEffect, CoreEvent } from './events.js';
import { ClusterMember } from './member.js';

/** mulberry32: a small seeded PRNG; the simulation's only source of randomness. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SimOptions {
  readonly seed?: number;
  /** One-way latency, ms (each message gets latency + up to jitter). */
  readonly latencyMs?: number;
  readonly jitterMs?: number;
  /** Probability that any one delivery is lost, 0..1. */
  readonly loss?: number;
  /** Driver tick interval, ms. */
  readonly tickMs?: number;
  readonly coreOverrides?: Partial<CoreConfig>;
}

/** How a node's applications answer a joiner (Figure 8F); default: accept. */
export type ApplicationPolicy = (joiner: MemberId) => { accepted: boolean; reason: string };

interface Delivery {
  readonly at: number;
  readonly order: number;
  readonly from: MemberId;
  readonly to: MemberId;
  readonly bytes: Uint8Array;
}

export interface SimNode {
  readonly id: MemberId;
  member: ClusterMember;
  alive: boolean;
  applications: ApplicationPolicy;
  /** Membership notifications delivered to this node's applications. */
  readonly notifications: { at: number; joined: readonly MemberId[]; left: readonly MemberId[] }[];
  /** Every effect, with the time it was produced. */
  readonly trace: { at: number; effect: CoreEffect }[];
  clusterIpAnnouncements: number;
  /** Hand-overs this node started (handoverBeforeAck). */
  readonly handovers: { at: number; requestId: number; units: readonly number[]; to: string }[];
  /** When true, hand-overs stay open until the test sends handover-done itself. */
  holdHandovers: boolean;
}

export class SimNetwork {
  readonly nodes = new Map<MemberId, SimNode>();
  now = 0;
  private queue: Delivery[] = [];
  private order = 0;
  private readonly random: () => number;
  private readonly opts: Required<Omit<SimOptions, 'coreOverrides'>> & { coreOverrides: Partial<CoreConfig> };
  /** group id per member; messages cross only within a group. Empty: no partition. */
  private groups = new Map<MemberId, number>();
  loss: number;
  /** Per-member loss override (both directions), 0..1. */
  readonly memberLoss = new Map<MemberId, number>();
  delivered = 0;
  dropped = 0;

  constructor(options: SimOptions = {}) {
    this.opts = {
      seed: options.seed ?? 1,
      latencyMs: options.latencyMs ?? 1,
      jitterMs: options.jitterMs ?? 1,
      loss: options.loss ?? 0,
      tickMs: options.tickMs ?? 10,
      coreOverrides: options.coreOverrides ?? {},
    };
    this.loss = this.opts.loss;
    this.random = seededRandom(this.opts.seed);
  }

  add(id: MemberId, overrides: Partial<CoreConfig> = {}, applications: ApplicationPolicy = () => ({ accepted: true, reason: '' })): SimNode {
    const node: SimNode = {
      id,
      member: new ClusterMember(coreConfig(id, 1, { ...this.opts.coreOverrides, ...overrides })),
      alive: false,
      applications,
      notifications: [],
      trace: [],
      clusterIpAnnouncements: 0,
      handovers: [],
      holdHandovers: false,
    };
    this.nodes.set(id, node);
    return node;
  }

  start(id: MemberId): void {
    const node = this.node(id);
    node.alive = true;
    this.stepNode(node, { type: 'start', now: this.now });
  }

  /** kill -9: the member stops at once, sends nothing more, receives nothing. */
  kill(id: MemberId): void {
    this.node(id).alive = false;
  }

  /** A fresh process on the same member: no memory of units or state. */
  restart(id: MemberId, overrides: Partial<CoreConfig> = {}): void {
    const node = this.node(id);
    node.member = new ClusterMember(coreConfig(id, node.member.config.configVersion, { ...this.opts.coreOverrides, ...overrides }));
    this.start(id);
  }

  event(id: MemberId, event: Omit<CoreEvent, 'now'> & { type: CoreEvent['type'] }): void {
    this.stepNode(this.node(id), { ...event, now: this.now } as CoreEvent);
  }

  /** Splits the network: members in different groups cannot reach each other. */
  partition(...groups: MemberId[][]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((m) => this.groups.set(m, i)));
  }

  heal(): void {
    this.groups = new Map();
  }

  node(id: MemberId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no simulated member ${id}`);
    return n;
  }

  /** Advances the virtual clock by `ms`, delivering messages and ticking members in time order. */
  run(ms: number): void {
    const end = this.now + ms;
    let nextTick = Math.floor(this.now / this.opts.tickMs) * this.opts.tickMs + this.opts.tickMs;
    for (;;) {
      const nextDelivery = this.queue.length > 0 ? this.queue[0]!.at : Infinity;
      const next = Math.min(nextDelivery, nextTick);
      if (next > end) break;
      this.now = next;
      if (nextDelivery <= nextTick) {
        const d = this.queue.shift()!;
        const to = this.nodes.get(d.to);
        if (to?.alive && this.reachable(d.from, d.to)) {
          const decoded = decodeClusterMessage(d.bytes);
          if (!decoded.ok) throw new Error(`codec round trip failed: ${decoded.error.message}`);
          this.delivered++;
          this.stepNode(to, { type: 'message', now: this.now, from: d.from, message: decoded.value });
        }
      } else {
        for (const node of this.nodes.values()) if (node.alive) this.stepNode(node, { type: 'tick', now: this.now });
        nextTick += this.opts.tickMs;
      }
    }
    this.now = end;
  }

  /** Runs until `done()` holds (checked every tick) or `limitMs` passes; returns the time it took. */
  runUntil(done: () => boolean, limitMs: number): number | null {
    const start = this.now;
    while (this.now - start < limitMs) {
      this.run(this.opts.tickMs);
      if (done()) return this.now - start;
    }
    return null;
  }

  private reachable(a: MemberId, b: MemberId): boolean {
    if (this.groups.size === 0) return true;
    return this.groups.get(a) === this.groups.get(b);
  }

  private stepNode(node: SimNode, event: CoreEvent): void {
    const effects = node.member.step(event);
    for (const effect of effects) {
      node.trace.push({ at: this.now, effect });
      switch (effect.type) {
        case 'send':
          this.transmit(node.id, effect.to, effect.message);
          break;
        case 'ask-applications': {
          const verdict = node.applications(effect.joiner);
          this.stepNode(node, { type: 'application-verdict', now: this.now, joiner: effect.joiner, ...verdict });
          break;
        }
        case 'membership':
          node.notifications.push({ at: this.now, joined: effect.joined, left: effect.left });
          break;
        case 'announce-cluster-ip':
          node.clusterIpAnnouncements++;
          break;
        case 'handover':
          // The simulation has no sessions: hand-overs are done at once, after the node's hook if any.
          node.handovers.push({ at: this.now, requestId: effect.requestId, units: effect.units, to: effect.to });
          if (!node.holdHandovers) this.stepNode(node, { type: 'handover-done', now: this.now, requestId: effect.requestId });
          break;
        default:
          break;
      }
    }
  }

  private transmit(from: MemberId, to: MemberId | 'broadcast', message: ClusterMessage): void {
    const bytes = encodeClusterMessage(message);
    const targets = to === 'broadcast' ? [...this.nodes.keys()].filter((id) => id !== from) : [to];
    for (const t of targets) {
      const loss = Math.max(this.loss, this.memberLoss.get(from) ?? 0, this.memberLoss.get(t) ?? 0);
      if (loss > 0 && this.random() < loss) {
        this.dropped++;
        continue;
      }
      const at = this.now + this.opts.latencyMs + this.random() * this.opts.jitterMs;
      const d: Delivery = { at, order: this.order++, from, to: t, bytes };
      // Insert keeping (at, order) order; the queue is short.
      let i = this.queue.length;
      while (i > 0 && (this.queue[i - 1]!.at > at || (this.queue[i - 1]!.at === at && this.queue[i - 1]!.order > d.order))) i--;
      this.queue.splice(i, 0, d);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Views for assertions
  // ----------------------------------------------------------------------------------------------

  alive(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  masters(): SimNode[] {
    return this.alive().filter((n) => n.member.role === 'master');
  }

  /**
   * True when exactly one live member is master, every other live member is its member, the master's
   * table gives every unit to exactly one live member, and each member serves exactly its units.
   */
  converged(expectedMembers = this.alive().length): boolean {
    const masters = this.masters();
    if (masters.length !== 1) return false;
    const master = masters[0]!;
    const st = master.member.status(this.now);
    if (st.members.length !== expectedMembers || st.movingUnits > 0) return false;
    for (const n of this.alive()) {
      if (n !== master && (n.member.role !== 'member' || n.member.status(this.now).master !== master.id)) return false;
    }
    const serving = new Map<number, MemberId[]>();
    for (const n of this.alive()) for (const u of n.member.owned) serving.set(u, [...(serving.get(u) ?? []), n.id]);
    for (let u = 0; u < UNIT_COUNT; u++) {
      const owner = st.owners[u];
      const servers = serving.get(u) ?? [];
      if (owner === null || owner === undefined || servers.length !== 1 || servers[0] !== owner) return false;
    }
    return true;
  }
}
