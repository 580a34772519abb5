/**
 * The data plane of a member: the native packet engine (NFQUEUE verdicts, forwarding, ARP) driven by the
 * cluster core's view of the work table. docs/dataplane.md explains the design and why.
 *
 *   - After every core step, MemberNode calls sync() with the current table; the data plane turns it
 *     into engine updates (owner slot per unit, held units at the master, releases on acknowledgement).
 *   - The engine reports units that need an owner; they go to the core as `unit-needs-owner` events.
 *   - Every second the per-unit counters become the load report (load measure, architecture.md).
 *   - As ClusterAddress it answers ARP for the cluster IPs while master and announces them (gratuitous ARP).
 */
import type { Logger } from 'pino';
import type { MemberId, StateAck, StateSync, UnitLoad, WorkUnit } from '@gwcluster/wire';
import type { SessionTable } from '@gwcluster/native-addon';
import { SessionSync } from '../sync/session-sync.js';
import type { TrafficCounters } from '../providers.js';
import type { DataPlaneConfig } from '../config.js';
import type { ClusterAddress } from '../control/cluster-address.js';
import { neighbourMac, ownAddresses, setupNetfilter, teardownNetfilter, type NetfilterPlan } from './netfilter.js';

const UNITS = 1024;

/** What the data plane needs to know after each core step. */
export interface DataPlaneState {
  readonly master: boolean;
  /** Units this member serves. */
  readonly owned: ReadonlySet<WorkUnit>;
  /** owners[unit] as this member knows it (the master's table; a member's last keepalive). */
  readonly owners: readonly (MemberId | null)[];
  /** Master: units unassigned or with an assignment not yet acknowledged (their packets are held). */
  readonly holding: ReadonlySet<WorkUnit>;
  /** The members as known here, this one included. */
  readonly members: readonly MemberId[];
}

/** The subset of the native packet engine the data plane drives (native-addon PacketEngine). */
export interface PacketEngineLike {
  setRole(role: { localSlot: number; master: boolean }): void;
  setOwner(unit: number, slot: number): void;
  setSlotMac(slot: number, mac: string): void;
  /** Master: hold packets of this unit (deferred verdict) until release(). */
  hold(unit: number): void;
  /** Deliver the unit's held packets to its current owner (itself or forwarded), in order. */
  release(unit: number): void;
  setArpAnswering(on: boolean): void;
  announce(): void;
  counters(opts: { reset: boolean }): { packets: BigUint64Array | Float64Array; bytes: BigUint64Array | Float64Array };
  /** Stateful mode: owned packets go through this session table. */
  attachSessions(table: SessionTable | null): void;
  stats(): Record<string, number | bigint>;
  close(): void;
}

export interface PacketEngineOptions {
  readonly queueNum: number;
  readonly method: 1 | 2 | 3;
  readonly clusterIps: readonly string[];
  readonly forwardInterface: string;
  readonly arpInterfaces: readonly { name: string; clusterIps: readonly string[] }[];
  /** Methods 2 and 3: the MAC ARP answers give for the cluster IPs (method 1: each interface's own). */
  readonly clusterMac?: string;
  readonly localSlot: number;
  readonly hold: DataPlaneConfig['hold'];
  readonly onUnitNeedsOwner: (unit: number) => void;
  readonly onError: (error: Error) => void;
}

export type PacketEngineFactory = (opts: PacketEngineOptions) => PacketEngineLike;

export interface DataPlaneOptions {
  readonly config: DataPlaneConfig;
  readonly self: MemberId;
  readonly logger: Logger;
  readonly engineFactory: PacketEngineFactory;
  /** Called for each unit the engine saw without an owner (master). */
  readonly onUnitNeedsOwner: (unit: WorkUnit) => void;
  /** Called every second with this member's load measure. */
  readonly onLoad: (load: number, busiest: readonly UnitLoad[]) => void;
  /** Sends a state-sync plane message (sealed by the member). */
  readonly send: (to: MemberId, message: StateSync | StateAck, opts: { includeCertificate: boolean }) => void;
  /** Feeds the core: `sync-ready` and `handover-done`. */
  readonly submit: (event: { type: 'sync-ready' } | { type: 'handover-done'; requestId: number }) => void;
}

const METHOD_NUMBER = { 'master-forward': 1, 'unicast-mac': 2, 'multicast-mac': 3 } as const;
const LOCAL_SLOT = 1;
/**
 * A unit this member lets go is still accepted for this long, so that packets already on their way (the
 * master stops sending them when it sends WORK DE-ASSIGN) are delivered, not dropped.
 */
const HANDOVER_DRAIN_MS = 50;

export class DataPlane implements ClusterAddress, TrafficCounters {
  private engine: PacketEngineLike | null = null;
  private plan: NetfilterPlan | null = null;
  private readonly slots = new Map<MemberId, number>();
  private readonly slotMacs = new Map<number, string>();
  private readonly appliedSlot = new Uint16Array(UNITS);
  private readonly appliedHeld = new Uint8Array(UNITS);
  private master = false;
  /** Cumulative per-unit packets and bytes this member accepted (TrafficCounters). */
  private readonly totalPackets = new Float64Array(UNITS);
  private readonly totalBytes = new Float64Array(UNITS);
  /** Units let go of recently: unit -> time after which the new slot applies. */
  private readonly draining = new Map<number, number>();
  private lastState: DataPlaneState | null = null;
  /** Session tracking and replication; null when the data plane is stateless. */
  sessions: SessionSync | null = null;
  private loadTimer: NodeJS.Timeout | null = null;
  private macTimer: NodeJS.Timeout | null = null;
  readonly counters: Record<string, number> = { syncs: 0, holds: 0, releases: 0, macMisses: 0 };

  constructor(private readonly opts: DataPlaneOptions) {
    this.slots.set(opts.self, LOCAL_SLOT);
  }

  async start(): Promise<void> {
    const c = this.opts.config;
    const own = await ownAddresses();
    this.plan = {
      interfaces: c.interfaces,
      method: c.method,
      clusterMac: c.clusterMac,
      ownAddresses: own,
      queueNum: c.queueNum,
      forwarding: c.forwarding,
    };
    await setupNetfilter(this.plan);
    this.engine = this.opts.engineFactory({
      queueNum: c.queueNum,
      method: METHOD_NUMBER[c.method],
      clusterIps: c.interfaces.flatMap((i) => i.clusterIps),
      forwardInterface: c.forwardInterface,
      arpInterfaces: c.interfaces.map((i) => ({ name: i.name, clusterIps: i.clusterIps })),
      ...(c.method === 'master-forward' ? {} : { clusterMac: c.clusterMac }),
      localSlot: LOCAL_SLOT,
      hold: c.hold,
      onUnitNeedsOwner: (u) => this.opts.onUnitNeedsOwner(u),
      onError: (e) => this.opts.logger.error({ err: e.message }, 'packet engine error'),
    });
    this.engine.setRole({ localSlot: LOCAL_SLOT, master: false });
    const sc = c.sessions;
    if (sc.tracking) {
      this.sessions = new SessionSync({
        self: this.opts.self,
        config: { mode: sc.mode, sync: sc.sync, maxSessions: sc.maxSessions, maxBytesPerSecond: sc.maxSyncBytesPerSecond },
        logger: this.opts.logger,
        send: this.opts.send,
        onReady: () => this.opts.submit({ type: 'sync-ready' }),
        onHandoverDone: (requestId, complete) => {
          if (!complete) this.opts.logger.warn({ requestId }, 'session hand-over not acknowledged in time; moving the units anyway');
          this.opts.submit({ type: 'handover-done', requestId });
        },
        ownedUnits: () => [...(this.lastState?.owned ?? [])],
        ownerOf: (u) => this.lastState?.owners[u] ?? '',
      });
      this.engine.attachSessions(this.sessions.table);
      this.sessions.start();
    } else {
      this.opts.submit({ type: 'sync-ready' });
    }
    this.loadTimer = setInterval(() => this.reportLoad(), 1000);
    this.macTimer = setInterval(() => void this.refreshMacs(), 5000);
    this.opts.logger.info({ method: c.method, interfaces: c.interfaces, clusterMac: c.clusterMac, queue: c.queueNum }, 'data plane started');
  }

  async stop(): Promise<void> {
    this.sessions?.stop();
    if (this.loadTimer) clearInterval(this.loadTimer);
    if (this.macTimer) clearInterval(this.macTimer);
    this.engine?.close();
    this.engine = null;
    if (this.plan) await teardownNetfilter(this.plan);
  }

  private slotOf(member: MemberId): number {
    let s = this.slots.get(member);
    if (s === undefined) {
      s = this.slots.size + 1;
      this.slots.set(member, s);
      void this.learnMac(member, s);
    }
    return s;
  }

  private async learnMac(member: MemberId, slot: number): Promise<void> {
    if (slot === LOCAL_SLOT) return;
    const mac = await neighbourMac(member, this.opts.config.forwardInterface);
    if (!mac) {
      this.counters.macMisses!++;
      return;
    }
    if (this.slotMacs.get(slot) !== mac) {
      this.slotMacs.set(slot, mac);
      this.engine?.setSlotMac(slot, mac);
    }
  }

  private async refreshMacs(): Promise<void> {
    for (const [member, slot] of this.slots) await this.learnMac(member, slot);
  }

  /** Brings the engine's table in line with the core's (cheap: 1024 comparisons). */
  sync(state: DataPlaneState): void {
    const engine = this.engine;
    if (!engine) return;
    this.lastState = state;
    this.counters.syncs!++;
    // Only a member in a cluster knows its peers (a joiner's empty view must not make it "ready").
    if (state.members.length > 0) this.sessions?.setPeers(state.members.filter((m) => m !== this.opts.self));
    if (state.master !== this.master) {
      this.master = state.master;
      engine.setRole({ localSlot: LOCAL_SLOT, master: state.master });
    }
    const releases: number[] = [];
    for (let u = 0; u < UNITS; u++) {
      const owner = state.owners[u] ?? null;
      let slot: number;
      if (state.owned.has(u)) slot = LOCAL_SLOT;
      else if (owner === null || owner === this.opts.self) slot = 0;
      else slot = this.slotOf(owner);
      const held = state.master && state.holding.has(u) ? 1 : 0;
      if (slot !== this.appliedSlot[u]) {
        if (this.appliedSlot[u] === LOCAL_SLOT && !state.master) {
          // Lost a unit: keep serving it for the drain time (applied by a later sync or the timer).
          const until = this.draining.get(u);
          if (until === undefined) {
            this.draining.set(u, Date.now() + HANDOVER_DRAIN_MS);
            setTimeout(() => this.lastState && this.sync(this.lastState), HANDOVER_DRAIN_MS + 5).unref();
          } else if (Date.now() >= until) {
            this.draining.delete(u);
            engine.setOwner(u, slot);
            this.appliedSlot[u] = slot;
          }
        } else {
          this.draining.delete(u);
          engine.setOwner(u, slot);
          this.appliedSlot[u] = slot;
        }
      } else {
        this.draining.delete(u);
      }
      if (held !== this.appliedHeld[u]) {
        this.appliedHeld[u] = held;
        if (held) {
          engine.hold(u);
          this.counters.holds!++;
        } else if (slot !== 0) {
          releases.push(u);
        }
      }
    }
    for (const u of releases) {
      engine.release(u);
      this.counters.releases!++;
    }
  }

  private reportLoad(): void {
    if (!this.engine) return;
    const { packets, bytes } = this.engine.counters({ reset: true });
    for (let u = 0; u < UNITS; u++) {
      this.totalPackets[u]! += Number(packets[u] ?? 0);
      this.totalBytes[u]! += Number(bytes[u] ?? 0);
    }
    const weights: UnitLoad[] = [];
    let load = 0;
    for (let u = 0; u < UNITS; u++) {
      if (this.appliedSlot[u] !== LOCAL_SLOT) continue;
      const w = 1 + Number(packets[u] ?? 0) / this.opts.config.ppsPerUnitWeight;
      load += w;
      if (w > 1) weights.push({ unit: u, weight: w });
    }
    weights.sort((a, b) => b.weight - a.weight);
    this.opts.onLoad(load, weights.slice(0, 32));
  }

  /**
   * Planned move (WORK DE-ASSIGN): after the drain time, give the new owner the units' sessions; the core
   * acknowledges when this reports done.
   */
  handover(requestId: number, units: readonly WorkUnit[], to: MemberId | ''): void {
    const sessions = this.sessions;
    if (!sessions) {
      this.opts.submit({ type: 'handover-done', requestId });
      return;
    }
    setTimeout(() => sessions.handover(requestId, units, to), HANDOVER_DRAIN_MS + 10).unref();
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.counters };
    for (const [k, v] of Object.entries(this.sessions?.stats() ?? {})) out[`sessions.${k}`] = v;
    for (const [k, v] of Object.entries(this.engine?.stats() ?? {})) if (typeof v === "number" || typeof v === "bigint") out[`engine.${k}`] = Number(v);
    return out;
  }

  // TrafficCounters (metrics) ------------------------------------------------------------------------

  unitPackets(): ArrayLike<number> {
    return this.totalPackets;
  }

  unitBytes(): ArrayLike<number> {
    return this.totalBytes;
  }

  /** The engine counts drops per reason, not per unit. */
  unitDrops(): ArrayLike<number> {
    return new Float64Array(UNITS);
  }

  holdQueue(): { readonly packets: number; readonly bytes: number } {
    const s = this.engine?.stats() ?? {};
    return { packets: Number(s.heldPackets ?? 0), bytes: Number(s.heldBytes ?? 0) };
  }

  drops(): Readonly<Record<string, number>> {
    const s = this.engine?.stats() ?? {};
    const n = (k: string) => Number(s[k] ?? 0);
    const verdicts = (s.verdicts ?? {}) as unknown as Record<string, number>;
    return {
      'not-owned': Number(verdicts.dropped ?? 0) - n('sessionDrops'),
      session: n('sessionDrops'),
      truncated: n('truncated'),
      malformed: n('malformed'),
      'hold-overflow': n('holdDrops'),
      'kernel-queue': n('kernelQueueDropped'),
      'forward-no-mac': n('forwardNoMac'),
    };
  }

  // ClusterAddress: the engine answers ARP for the cluster IPs while this member is master.
  async take(): Promise<void> {
    this.engine?.setArpAnswering(true);
    this.engine?.announce();
  }

  async release(): Promise<void> {
    this.engine?.setArpAnswering(false);
  }
}
