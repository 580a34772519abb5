/**
 * The data plane of a member: a packet path (packet-path.ts; today the NFQUEUE packet engine) driven by
 * the cluster core's view of the work table. docs/dataplane.md explains the design and why. This facade
 * wires the parts and owns every timer; the decisions are elsewhere:
 *
 *   netfilter.ts   kernel setup and teardown (addresses, sysctls, iptables/nft rules to the queue)
 *   policy.ts      when ownership changes reach the packet path: drain, hold and release, hand-over
 *                  timing (a pure step machine; this facade carries its effects out with real timers)
 *   ownership.ts   target and applied owner slot per unit (used by the policy)
 *   neighbours.ts  the MAC of each member's slot
 *   load.ts        the load measure reported every second
 *   counters.ts    traffic counters for metrics
 *
 *   - After every core step, MemberNode calls sync() with the current view; after a WORK DE-ASSIGN with
 *     state sync it calls handover(). Both become policy events.
 *   - The packet path reports units that need an owner; they go to the core as `unit-needs-owner`.
 *   - As ClusterAddress it answers ARP for the cluster IPs while master and announces them.
 *
 * Lifecycle: construct -> start() (netfilter, packet path, session sync, timers) -> stop() (the reverse;
 * afterwards sync() and handover() are ignored).
 */
import { CLUSTER_IP_ANNOUNCEMENT } from '../control/timing.js';
import type { Logger } from 'pino';
import type { MemberId, StateAck, StateSync, UnitLoad, WorkUnit } from '@gwcluster/wire';
import { SessionSync } from '../sync/session-sync.js';
import type { DataPlaneConfig } from '../config/config.js';
import type { ClusterAddress } from '../control/cluster-address.js';
import { ownAddresses, setupNetfilter, teardownNetfilter, type NetfilterPlan } from './netfilter.js';
import { LOCAL_SLOT, type PacketPath, type PacketPathFactory } from './packet-path.js';
import { DataPlanePolicy, dataPlanePolicyConfig, type DataPlaneEffect, type DataPlaneEvent } from './policy.js';
import type { DataPlaneView } from './ownership.js';
import { NeighbourTable } from './neighbours.js';
import { measureLoad } from './load.js';
import { TrafficTotals } from './counters.js';

export type { DataPlaneView } from './ownership.js';

export interface DataPlaneOptions {
  readonly config: DataPlaneConfig;
  readonly self: MemberId;
  /**
   * Addresses this member may come to answer for itself (the address pool, as configured at start): they
   * are never decided, like the host's own, so the member holding one receives its traffic directly.
   */
  readonly localAddresses?: readonly string[];
  readonly logger: Logger;
  /** Opens the packet path (nfqueue-path.ts, or kernel-path.ts with `dataplane.path: kernel`). */
  readonly packetPath: PacketPathFactory;
  /** Called for each unit the packet path saw without an owner (master). */
  readonly onUnitNeedsOwner: (unit: WorkUnit) => void;
  /** Called every second with this member's load measure. */
  readonly onLoad: (load: number, busiest: readonly UnitLoad[]) => void;
  /** Sends a state-sync plane message (sealed by the member). */
  readonly send: (to: MemberId, message: StateSync | StateAck, opts: { includeCertificate: boolean }) => void;
  /** Feeds the core: `sync-ready` and `handover-done`. */
  readonly submit: (event: { type: 'sync-ready' } | { type: 'handover-done'; requestId: number }) => void;
  /** Monotonic clock of the policy, ms. Default: performance.now(). */
  readonly clock?: () => number;
  /** The kernel side (addresses, sysctls, rules to the packet path). Default: netfilter.ts; the kernel
   * path brings kernelPathSetup. */
  readonly kernel?: KernelSetup;
}

/** What start() and stop() do to the kernel; tests pass a fake (the real one needs root). */
export interface KernelSetup {
  /** The host's own IPv4 addresses, and any other destination never to decide (never sent to the packet path). */
  ownAddresses(): Promise<string[]>;
  setup(plan: NetfilterPlan): Promise<void>;
  /** Removes what setup() added; never throws for what is already gone. */
  teardown(plan: NetfilterPlan): Promise<void>;
}

const NETFILTER: KernelSetup = { ownAddresses, setup: setupNetfilter, teardown: teardownNetfilter };

const METHOD_NUMBER = { 'master-forward': 1, 'unicast-mac': 2, 'multicast-mac': 3 } as const;
const LOAD_EVERY_MS = 1000;
const MAC_REFRESH_EVERY_MS = 5000;

export class DataPlane implements ClusterAddress {
  private path: PacketPath | null = null;
  private plan: NetfilterPlan | null = null;
  private readonly policy: DataPlanePolicy;
  private readonly neighbours: NeighbourTable;
  /** Cumulative per-unit traffic and drops (metrics). */
  readonly traffic: TrafficTotals;
  /** Session tracking and replication; null when the data plane is stateless. */
  sessions: SessionSync | null = null;
  private readonly clock: () => number;
  private readonly kernel: KernelSetup;
  private loadTimer: NodeJS.Timeout | null = null;
  private macTimer: NodeJS.Timeout | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  /** Policy events arriving while effects are carried out wait here (step() is never re-entered). */
  private readonly queued: DataPlaneEvent[] = [];
  private stepping = false;

  constructor(private readonly opts: DataPlaneOptions) {
    this.clock = opts.clock ?? (() => performance.now());
    this.kernel = opts.kernel ?? NETFILTER;
    this.policy = new DataPlanePolicy(dataPlanePolicyConfig(opts.self, opts.config.sessions.tracking));
    this.neighbours = new NeighbourTable({ device: opts.config.forwardInterface, setSlotMac: (slot, mac) => this.path?.setSlotMac(slot, mac) });
    this.traffic = new TrafficTotals(() => this.path?.stats() ?? {});
  }

  async start(): Promise<void> {
    const c = this.opts.config;
    const own = [...new Set([...(await this.kernel.ownAddresses()), ...(this.opts.localAddresses ?? [])])];
    this.plan = {
      interfaces: c.interfaces,
      method: c.method,
      clusterMac: c.clusterMac,
      ownAddresses: own,
      queueNum: c.queueNum,
      forwarding: c.forwarding,
      routeEstablishedWhenDead: c.method === 'master-forward' && c.forwarding && c.whenDaemonDies === 'route-established',
    };
    await this.kernel.setup(this.plan);
    this.path = this.opts.packetPath({
      queueNum: c.queueNum,
      method: METHOD_NUMBER[c.method],
      clusterIps: c.interfaces.flatMap((i) => i.clusterIps),
      interfaces: c.interfaces.map((i) => i.name),
      bypassAddresses: own,
      forwardInterface: c.forwardInterface,
      arpInterfaces: c.interfaces.map((i) => ({ name: i.name, clusterIps: i.clusterIps })),
      ...(c.method === 'master-forward' ? {} : { clusterMac: c.clusterMac }),
      announcement: CLUSTER_IP_ANNOUNCEMENT,
      localSlot: LOCAL_SLOT,
      hold: c.hold,
      onUnitNeedsOwner: (u) => this.opts.onUnitNeedsOwner(u),
      onError: (e) => this.opts.logger.error({ err: e.message }, 'packet engine error'),
    });
    this.path.setRole({ localSlot: LOCAL_SLOT, master: false });
    const sc = c.sessions;
    if (sc.tracking) {
      this.sessions = new SessionSync({
        self: this.opts.self,
        config: { mode: sc.mode, sync: sc.sync, maxSessions: sc.maxSessions, maxBytesPerSecond: sc.maxSyncBytesPerSecond, stateFile: sc.stateFile, saveEveryMs: sc.saveEveryMs },
        logger: this.opts.logger,
        send: this.opts.send,
        onReady: () => this.opts.submit({ type: 'sync-ready' }),
        onHandoverDone: (requestId, complete) => this.step({ type: 'sessions-handed-over', now: this.clock(), requestId, complete }),
        ownedUnits: () => [...(this.policy.lastView?.owned ?? [])],
        ownerOf: (u) => this.policy.lastView?.owners[u] ?? '',
      });
      this.path.attachSessions(this.sessions.table);
      this.sessions.start();
    } else {
      this.opts.submit({ type: 'sync-ready' });
    }
    this.loadTimer = setInterval(() => this.reportLoad(), LOAD_EVERY_MS);
    this.macTimer = setInterval(() => void this.neighbours.refresh(), MAC_REFRESH_EVERY_MS);
    this.opts.logger.info({ method: c.method, path: c.path, interfaces: c.interfaces, clusterMac: c.clusterMac, queue: c.queueNum }, 'data plane started');
  }

  /** The packet path is up (between start() and stop()). */
  get running(): boolean {
    return this.path !== null;
  }

  async stop(): Promise<void> {
    this.path?.syncSessions?.(); // the saved table holds what the kernel passed too
    this.sessions?.stop();
    if (this.loadTimer) clearInterval(this.loadTimer);
    if (this.macTimer) clearInterval(this.macTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    this.path?.close();
    this.path = null;
    if (this.plan) await this.kernel.teardown(this.plan);
  }

  /** The core's view after a step (MemberNode DataPlaneHooks.sync). Cheap: 1024 comparisons. */
  sync(view: DataPlaneView): void {
    if (!this.path) return;
    this.sessions?.followView(view);
    this.step({ type: 'view', now: this.clock(), view });
  }

  /**
   * Planned move (WORK DE-ASSIGN): after the drain, give the new owner the units' sessions; the core
   * acknowledges when this reports `handover-done`.
   */
  handover(requestId: number, units: readonly WorkUnit[], to: MemberId | ''): void {
    this.step({ type: 'handover', now: this.clock(), requestId, units, to });
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.policy.counters, ...this.neighbours.counters };
    for (const [k, v] of Object.entries(this.sessions?.stats() ?? {})) out[`sessions.${k}`] = v;
    for (const [k, v] of Object.entries(this.path?.stats() ?? {})) if (typeof v === 'number' || typeof v === 'bigint') out[`engine.${k}`] = Number(v);
    return out;
  }

  // ClusterAddress: the packet path answers ARP for the cluster IPs while this member is master.
  async take(): Promise<void> {
    this.path?.setArpAnswering(true);
    this.path?.announce();
  }

  async release(): Promise<void> {
    this.path?.setArpAnswering(false);
  }

  // ----------------------------------------------------------------------------------------------

  private step(event: DataPlaneEvent): void {
    // Effects may feed events back (handover-done -> core step -> sync); queue them, in order.
    this.queued.push(event);
    if (this.stepping) return;
    this.stepping = true;
    try {
      while (this.queued.length > 0) for (const effect of this.policy.step(this.queued.shift()!)) this.carryOut(effect);
    } finally {
      this.stepping = false;
    }
  }

  private carryOut(effect: DataPlaneEffect): void {
    const path = this.path;
    switch (effect.type) {
      case 'set-role':
        path?.setRole({ localSlot: LOCAL_SLOT, master: effect.master });
        break;
      case 'set-owner':
        path?.setOwner(effect.unit, effect.slot);
        break;
      case 'hold':
        path?.hold(effect.unit);
        break;
      case 'release':
        path?.release(effect.unit);
        break;
      case 'new-slot':
        this.neighbours.add(effect.member, effect.slot);
        break;
      case 'hand-over-sessions':
        // The units are no longer this member's in its packet path: what the kernel passed of their
        // offloaded flows goes into the table before their sessions are sent.
        path?.syncSessions?.();
        if (this.sessions) this.sessions.handover(effect.requestId, effect.units, effect.to);
        else this.step({ type: 'sessions-handed-over', now: this.clock(), requestId: effect.requestId, complete: true });
        break;
      case 'handover-done':
        if (!effect.complete) this.opts.logger.warn({ requestId: effect.requestId }, 'session hand-over not acknowledged in time; moving the units anyway');
        this.opts.submit({ type: 'handover-done', requestId: effect.requestId });
        break;
      case 'wake':
        if (this.wakeTimer) clearTimeout(this.wakeTimer);
        this.wakeTimer = setTimeout(() => {
          this.wakeTimer = null;
          this.step({ type: 'tick', now: this.clock() });
        }, Math.max(0, Math.ceil(effect.at - this.clock())));
        this.wakeTimer.unref();
        break;
    }
  }

  private reportLoad(): void {
    if (!this.path) return;
    const { packets, bytes } = this.path.counters({ reset: true });
    this.traffic.add(packets, bytes);
    const { load, busiest } = measureLoad(packets, bytes, (u) => this.policy.applied.serves(u), this.opts.config);
    this.opts.onLoad(load, busiest);
  }
}
