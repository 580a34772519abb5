/**
 * The core's simulation: N members on a MemoryNetwork (virtual clock, per-datagram latency, seeded loss,
 * partitions). Every message goes through the real codec (encode + decode), so the simulation also
 * exercises the wire format. Used by the core's tests; never by a running member.
 */
import { decodeClusterMessage, encodeClusterMessage, type MemberId, UNIT_COUNT } from '@gwcluster/wire';
import { coreConfig, type CoreConfig } from './config.js';
import type { CoreEffect, CoreEvent } from './events.js';
import { ClusterMember } from './member.js';
import { MemoryNetwork, type MemoryTransport } from './transport/memory-network.js';

export { seededRandom } from './transport/memory-network.js';

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
  /** Keep every datagram in `network.wire` (golden scenarios). Default false: long runs stay small. */
  readonly recordWire?: boolean;
}

/** How a node's applications answer a joiner (Figure 8F); default: accept. */
export type ApplicationPolicy = (joiner: MemberId) => { accepted: boolean; reason: string };

export interface SimNode {
  readonly id: MemberId;
  member: ClusterMember;
  alive: boolean;
  applications: ApplicationPolicy;
  /** Membership notifications delivered to this node's applications. */
  readonly notifications: { at: number; joined: readonly MemberId[]; left: readonly MemberId[] }[];
  /** Every effect, with the time it was produced and its place in the order of all nodes' effects. */
  readonly trace: { at: number; seq: number; effect: CoreEffect }[];
  clusterIpAnnouncements: number;
  /** Hand-overs this node started (handoverBeforeAck). */
  readonly handovers: { at: number; requestId: number; units: readonly number[]; to: string }[];
  /** When true, hand-overs stay open until the test sends handover-done itself. */
  holdHandovers: boolean;
  /** This node's port on the simulated network. */
  readonly transport: MemoryTransport;
}

export class SimNetwork {
  readonly nodes = new Map<MemberId, SimNode>();
  /** The medium; its clock is the simulation's clock. */
  readonly network: MemoryNetwork;
  /** Messages handed to a live member. */
  delivered = 0;
  private effectSeq = 0;
  private readonly tickMs: number;
  private readonly coreOverrides: Partial<CoreConfig>;

  constructor(options: SimOptions = {}) {
    this.network = new MemoryNetwork({
      seed: options.seed ?? 1,
      delayMs: options.latencyMs ?? 1,
      jitterMs: options.jitterMs ?? 1,
      loss: options.loss ?? 0,
      recordWire: options.recordWire ?? false,
    });
    this.tickMs = options.tickMs ?? 10;
    this.coreOverrides = options.coreOverrides ?? {};
  }

  /** The virtual clock, ms. */
  get now(): number {
    return this.network.now;
  }

  /** Probability that any one delivery is lost, 0..1. */
  get loss(): number {
    return this.network.loss;
  }

  set loss(p: number) {
    this.network.loss = p;
  }

  /** Per-member loss override (both directions), 0..1. */
  get memberLoss(): Map<MemberId, number> {
    return this.network.memberLoss;
  }

  /** Messages lost at random. */
  get dropped(): number {
    return this.network.counters.lost;
  }

  add(id: MemberId, overrides: Partial<CoreConfig> = {}, applications: ApplicationPolicy = () => ({ accepted: true, reason: '' })): SimNode {
    const node: SimNode = {
      id,
      member: new ClusterMember(coreConfig(id, 1, { ...this.coreOverrides, ...overrides })),
      alive: false,
      applications,
      notifications: [],
      trace: [],
      clusterIpAnnouncements: 0,
      handovers: [],
      holdHandovers: false,
      transport: this.network.attach(id),
    };
    node.transport.onReceive((bytes, from) => {
      if (!node.alive) return;
      const decoded = decodeClusterMessage(bytes);
      if (!decoded.ok) throw new Error(`codec round trip failed: ${decoded.error.message}`);
      this.delivered++;
      this.stepNode(node, { type: 'message', now: this.now, from, message: decoded.value });
    });
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
    node.member = new ClusterMember(coreConfig(id, node.member.config.configVersion, { ...this.coreOverrides, ...overrides }));
    this.start(id);
  }

  event(id: MemberId, event: Omit<CoreEvent, 'now'> & { type: CoreEvent['type'] }): void {
    this.stepNode(this.node(id), { ...event, now: this.now } as CoreEvent);
  }

  /** Splits the network: members in different groups cannot reach each other. */
  partition(...groups: MemberId[][]): void {
    this.network.partition(...groups);
  }

  heal(): void {
    this.network.heal();
  }

  node(id: MemberId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no simulated member ${id}`);
    return n;
  }

  /** Advances the virtual clock by `ms`, delivering messages and ticking members in time order. */
  run(ms: number): void {
    const end = this.now + ms;
    let nextTick = Math.floor(this.now / this.tickMs) * this.tickMs + this.tickMs;
    for (;;) {
      const nextDelivery = this.network.nextDueAt;
      const next = Math.min(nextDelivery, nextTick);
      if (next > end) break;
      if (nextDelivery <= nextTick) {
        this.network.deliverNext(nextDelivery);
      } else {
        this.network.advance(nextTick - this.now);
        for (const node of this.nodes.values()) if (node.alive) this.stepNode(node, { type: 'tick', now: this.now });
        nextTick += this.tickMs;
      }
    }
    this.network.advance(end - this.now);
  }

  /** Runs until `done()` holds (checked every tick) or `limitMs` passes; returns the time it took. */
  runUntil(done: () => boolean, limitMs: number): number | null {
    const start = this.now;
    while (this.now - start < limitMs) {
      this.run(this.tickMs);
      if (done()) return this.now - start;
    }
    return null;
  }

  private stepNode(node: SimNode, event: CoreEvent): void {
    const effects = node.member.step(event);
    for (const effect of effects) {
      node.trace.push({ at: this.now, seq: this.effectSeq++, effect });
      switch (effect.type) {
        case 'send': {
          const bytes = encodeClusterMessage(effect.message);
          if (effect.to === 'broadcast') node.transport.broadcast(bytes);
          else node.transport.send(effect.to, bytes);
          break;
        }
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
