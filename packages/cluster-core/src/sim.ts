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

/** What a plane asks the simulator to do (PlaneContext.emit). */
export type PlaneEffect =
  /** Send one of the plane's messages through the codec on the simulated network (delivered after its latency). */
  | { readonly type: 'send'; readonly to: MemberId | 'broadcast'; readonly message: ClusterMessage }
  /** Feed the member's core an event at now. */
  | { readonly type: 'core'; readonly event: CoreInput }
  /** A line for the trace: what the member's driver would log (scenarios print it). */
  | { readonly type: 'note'; readonly text: string };

/** What a plane's hook is given: the time, the member's core (read-only) and the way to act. */
export interface PlaneContext {
  /** The virtual clock, ms. */
  readonly now: number;
  readonly core: CoreView;
  /**
   * Carries `effect` out at once and traces it. A `core` event is stepped before emit returns unless the
   * core is being stepped (then it waits in the node's queue, as in the daemon's driver); its effects reach
   * every plane's hooks, this one's included, before emit returns.
   */
  emit(effect: PlaneEffect): void;
}

/**
 * A pure machine that runs beside a simulated member's core: the seam the daemon's planes (replicator,
 * operator plane, data-plane policy; packages/daemon/src/sim) plug into. The simulator calls the hooks
 * never concurrently; a hook may be re-entered only through its own ctx.emit of a core event (see
 * PlaneContext.emit). A plane reads no clock: time is ctx.now. Every hook is optional. A received message
 * goes to the planes in their order, then to the core; a plane that consumes it ends the walk.
 */
export interface SimPlane {
  /** Its name in the trace. */
  readonly name: string;
  /** A message for this member, before the core: true when this plane consumed it. */
  message?(ctx: PlaneContext, from: MemberId, message: ClusterMessage): boolean;
  /** Each of the core's effects, in order, as the core produced it. */
  coreEffect?(ctx: PlaneContext, effect: CoreEffect): void;
  /**
   * The core's `handover` (a planned move, handoverBeforeAck): the first plane with this hook takes it and
   * answers `handover-done` itself, later (a `core` effect). Without one the simulator answers at once.
   */
  handover?(ctx: PlaneContext, requestId: number, units: readonly WorkUnit[], to: MemberId | ''): void;
  /** After each batch of core events (as the daemon's DataPlaneHooks.sync). */
  stepped?(ctx: PlaneContext): void;
  /** Every simulator tick (tickMs) while the member lives, after the core's tick. */
  tick?(ctx: PlaneContext): void;
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
  /** The process is stalled (its event loop busy) until this time: it neither ticks nor reads (stall()). */
  stalledUntil: number;
  /** Datagrams that reached it while stalled, in arrival order (the socket buffer). */
  readonly held: { from: MemberId; bytes: Uint8Array }[];
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
      stalledUntil: -Infinity,
      held: [],
    };
    node.transport.onReceive((bytes, from) => {
      if (!node.alive) return;
      if (this.now < node.stalledUntil) {
        node.held.push({ from, bytes });
        return;
      }
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

  /**
   * The member's process stalls for `ms` (a busy event loop: JIT, a large synchronous job): it sends
   * nothing, does not tick, and the datagrams that reach it wait in its socket buffer. It resumes at its
   * first tick at or after now + ms: first it reads every datagram that arrived meanwhile, in arrival
   * order, then it ticks, as the daemon's driver does (control/member-node.ts runs the tick after the
   * pending I/O, so a timeout never fires on messages that arrived in time).
   */
  stall(id: MemberId, ms: number): void {
    this.node(id).stalledUntil = this.now + ms;
  }

  /** A fresh process on the same member: no memory of units or state. */
  restart(id: MemberId, overrides: Partial<CoreConfig> = {}): void {
    const node = this.node(id);
    node.stalledUntil = -Infinity;
    node.held.length = 0;
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
          if (!node.alive || this.now < node.stalledUntil) continue;
          while (node.held.length > 0 && node.alive) {
            const { from, bytes } = node.held.shift()!;
            const decoded = decodeClusterMessage(bytes);
            if (!decoded.ok) throw new Error(`codec round trip failed: ${decoded.error.message}`);
            this.delivered++;
            this.receive(node, from, decoded.value);
          }
          if (!node.alive) continue;
          this.stepNode(node, { type: 'tick', now: this.now });
          for (const plane of node.planes) plane.tick?.(this.context(node, plane));
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
    for (const plane of node.planes) if (plane.message?.(this.context(node, plane), from, message)) return;
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
    for (const plane of node.planes) plane.stepped?.(this.context(node, plane));
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
        if (taker) taker.handover!(this.context(node, taker), effect.requestId, effect.units, effect.to);
        // No plane holds sessions: the hand-over is done at once, unless the test answers it itself.
        else if (!node.holdHandovers) this.stepNode(node, { type: 'handover-done', now: this.now, requestId: effect.requestId });
        break;
      }
      default:
        break;
    }
    for (const plane of node.planes) plane.coreEffect?.(this.context(node, plane), effect);
  }

  /**
   * The context of `plane` on member `id` now, for outside requests to a plane (an operator's action at
   * the admin API): what the plane emits through it is carried out as from one of its hooks.
   */
  planeContext(id: MemberId, plane: SimPlane): PlaneContext {
    return this.context(this.node(id), plane);
  }

  private context(node: SimNode, plane: SimPlane): PlaneContext {
    return {
      now: this.now,
      core: node.member,
      emit: (effect) => {
        node.trace.push({ at: this.now, seq: this.effectSeq++, plane: plane.name, effect });
        // A dead member's planes act no more (their hooks may still be running when it was killed).
        if (!node.alive) return;
        if (effect.type === 'send') this.transmit(node, effect.to, effect.message);
        else if (effect.type === 'core') this.stepNode(node, { ...effect.event, now: this.now } as CoreEvent);
      },
    };
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
