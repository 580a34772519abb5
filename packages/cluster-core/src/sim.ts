/**
 * The one simulation: N members on a MemoryNetwork (virtual clock, per-datagram latency, seeded loss,
 * partitions). Every message goes through the real codec (encode + decode), so the simulation also
 * exercises the wire format. Used by tests; never by a running member.
 *
 * A member is its core plus, optionally, the other pure machines a member runs (SimPlane: the replicator,
 * the operator plane, the data-plane policy; packages/daemon/src/sim builds them). The simulator routes
 * messages and core effects to them and carries their effects out in virtual time, as the daemon's
 * driver (control/member-node.ts) does with real time.
 */
import { decodeClusterMessage, encodeClusterMessage, type ClusterMessage, type MemberId, type WorkUnit, UNIT_COUNT } from '@gwcluster/wire';
import { coreConfig, type CoreConfig } from './config.js';
import type { CoreEffect, CoreEvent, CoreInput } from './events.js';
import { ClusterMember } from './member.js';
import type { CoreView } from './view.js';
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
  /** The planes each member runs beside its core; called at add() and at every restart (a fresh process). */
  readonly planes?: (id: MemberId) => readonly SimPlane[];
}

/** What a plane asks the simulator to do, carried out in order. */
export type PlaneEffect =
  /** Send one of the plane's messages through the codec on the simulated network (from now, with its latency). */
  | { readonly type: 'send'; readonly to: MemberId | 'broadcast'; readonly message: ClusterMessage }
  /** Feed the member's core an event at the simulator's now (queued behind the event being handled). */
  | { readonly type: 'core'; readonly event: CoreInput }
  /** A line for the trace: what the member's driver would log (scenarios print it). */
  | { readonly type: 'note'; readonly text: string };

/**
 * A pure machine that runs beside a simulated member's core, the seam the daemon's planes plug into.
 * The simulator calls it never concurrently and never from inside another of its calls; it reads no clock
 * (time is `now`, the virtual clock, ms) and returns what it wants done as PlaneEffects. Every hook is
 * optional. Order on a received message: the planes in their order, then the core; a plane that consumes
 * the message ends the walk.
 */
export interface SimPlane {
  /** Its name in the trace. */
  readonly name: string;
  /** A message for this member, before the core: effects when this plane consumed it, null to pass it on. */
  message?(now: number, from: MemberId, message: ClusterMessage, core: CoreView): readonly PlaneEffect[] | null;
  /** Each of the core's effects, in order, as the core produced it. */
  coreEffect?(now: number, effect: CoreEffect, core: CoreView): readonly PlaneEffect[];
  /**
   * The core's `handover` (a planned move, handoverBeforeAck): the first plane with this hook takes it over
   * and answers `handover-done` itself later (a `core` effect). Without one the simulator answers at once.
   */
  handover?(now: number, requestId: number, units: readonly WorkUnit[], to: MemberId | '', core: CoreView): readonly PlaneEffect[];
  /** After each batch of core events (as the daemon's DataPlaneHooks.sync): the core as of now. */
  stepped?(now: number, core: CoreView): readonly PlaneEffect[];
  /** Every simulator tick (tickMs) while the member lives, after the core's tick. */
  tick?(now: number, core: CoreView): readonly PlaneEffect[];
}

/** One entry of a node's trace: a core effect, or (with `plane`) an effect of one of its planes. */
export type SimTraceEntry =
  | { readonly at: number; readonly seq: number; readonly plane?: undefined; readonly effect: CoreEffect }
  | { readonly at: number; readonly seq: number; readonly plane: string; readonly effect: PlaneEffect };

/** How a node's applications answer a joiner (Figure 8F); default: accept. */
export type ApplicationPolicy = (joiner: MemberId) => { accepted: boolean; reason: string };

export interface SimNode {
  readonly id: MemberId;
  member: ClusterMember;
  alive: boolean;
  applications: ApplicationPolicy;
  /** Membership notifications delivered to this node's applications. */
  readonly notifications: { at: number; joined: readonly MemberId[]; left: readonly MemberId[] }[];
  /** Every effect (the core's and its planes'), with the time it was produced and its place in the order of all nodes' effects. */
  readonly trace: SimTraceEntry[];
  clusterIpAnnouncements: number;
  /** Hand-overs this node started (handoverBeforeAck). */
  readonly handovers: { at: number; requestId: number; units: readonly number[]; to: string }[];
  /** When true, hand-overs stay open until the test sends handover-done itself. */
  holdHandovers: boolean;
  /** This node's port on the simulated network. */
  readonly transport: MemoryTransport;
  /** The pure machines beside the core (SimOptions.planes); replaced at restart. */
  planes: readonly SimPlane[];
  /** Core events waiting while the node's core is being stepped (step() is never re-entered). */
  readonly queued: CoreEvent[];
  stepping: boolean;
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
  private readonly planeFactory: (id: MemberId) => readonly SimPlane[];

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
    this.planeFactory = options.planes ?? (() => []);
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
      planes: this.planeFactory(id),
      queued: [],
      stepping: false,
    };
    node.transport.onReceive((bytes, from) => {
      if (!node.alive) return;
      const decoded = decodeClusterMessage(bytes);
      if (!decoded.ok) throw new Error(`codec round trip failed: ${decoded.error.message}`);
      this.delivered++;
      this.receive(node, from, decoded.value);
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
    node.planes = this.planeFactory(id);
    this.start(id);
  }

  event(id: MemberId, event: CoreInput): void {
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
        for (const node of this.nodes.values()) {
          if (!node.alive) continue;
          this.stepNode(node, { type: 'tick', now: this.now });
          for (const plane of node.planes) if (plane.tick) this.carryOutPlane(node, plane, plane.tick(this.now, node.member));
        }
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

  /** A decoded message: the planes in order, then (unless one consumed it) the core. */
  private receive(node: SimNode, from: MemberId, message: ClusterMessage): void {
    for (const plane of node.planes) {
      const effects = plane.message?.(this.now, from, message, node.member) ?? null;
      if (effects !== null) {
        this.carryOutPlane(node, plane, effects);
        return;
      }
    }
    this.stepNode(node, { type: 'message', now: this.now, from, message });
  }

  /**
   * Steps the node's core with `event` and carries out the effects. Events that arise meanwhile (verdicts,
   * hand-overs done, plane requests) wait in the node's queue, as in the daemon's driver; once the queue
   * is empty every plane hears `stepped`.
   */
  private stepNode(node: SimNode, event: CoreEvent): void {
    node.queued.push(event);
    if (node.stepping) return;
    node.stepping = true;
    try {
      while (node.queued.length > 0) {
        for (const effect of node.member.step(node.queued.shift()!)) this.carryOut(node, effect);
      }
    } finally {
      node.stepping = false;
    }
    for (const plane of node.planes) if (plane.stepped) this.carryOutPlane(node, plane, plane.stepped(this.now, node.member));
  }

  private carryOut(node: SimNode, effect: CoreEffect): void {
    node.trace.push({ at: this.now, seq: this.effectSeq++, effect });
    switch (effect.type) {
      case 'send':
        this.transmit(node, effect.to, effect.message);
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
      case 'handover': {
        node.handovers.push({ at: this.now, requestId: effect.requestId, units: effect.units, to: effect.to });
        const taker = node.planes.find((p) => p.handover);
        if (taker) this.carryOutPlane(node, taker, taker.handover!(this.now, effect.requestId, effect.units, effect.to, node.member));
        // No plane holds sessions: the hand-over is done at once, unless the test answers it itself.
        else if (!node.holdHandovers) this.stepNode(node, { type: 'handover-done', now: this.now, requestId: effect.requestId });
        break;
      }
      default:
        break;
    }
    for (const plane of node.planes) if (plane.coreEffect) this.carryOutPlane(node, plane, plane.coreEffect(this.now, effect, node.member));
  }

  private carryOutPlane(node: SimNode, plane: SimPlane, effects: readonly PlaneEffect[]): void {
    for (const effect of effects) {
      node.trace.push({ at: this.now, seq: this.effectSeq++, plane: plane.name, effect });
      if (!node.alive) continue;
      if (effect.type === 'send') this.transmit(node, effect.to, effect.message);
      else if (effect.type === 'core') this.stepNode(node, { ...effect.event, now: this.now } as CoreEvent);
    }
  }

  private transmit(node: SimNode, to: MemberId | 'broadcast', message: ClusterMessage): void {
    const bytes = encodeClusterMessage(message);
    if (to === 'broadcast') node.transport.broadcast(bytes);
    else node.transport.send(to, bytes);
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
