/**
 * A whole member in the simulator (cluster-core's SimNetwork): beside its core, the daemon's other pure
 * machines, each as a SimPlane over the same modules gwclusterd runs:
 *
 *   sessions   SessionReplication (sync/replication.ts) around the Replicator, over a simulated table
 *   dataplane  DataPlanePolicy (dataplane/policy.ts): drain and hand-over timing; its packet-path effects
 *              are counted, not carried out (there are no packets)
 *   operator   OperatorPlane (operator/operator-plane.ts) through operator-host.ts, its configuration
 *              file kept in memory
 *
 * Only pure modules are imported (no sockets, timers, files or native binding): this folder is the
 * virtual-time counterpart of control/member-node.ts, dataplane/data-plane.ts, sync/session-sync.ts and
 * operator/operator-channel.ts. Used by tests (test/sim), never by a running member.
 */
import type { PlaneContext, SimPlane } from '@gwcluster/cluster-core';
import type { MemberId, OperatorAction, WorkUnit } from '@gwcluster/wire';
import { configChangedEvent, holdsHandedOverUnits } from '../config/cluster-config.js';
import { parseMemberConfig, type MemberConfig } from '../config/config.js';
import { DataPlanePolicy, dataPlanePolicyConfig, type DataPlaneEffect, type DataPlaneEvent } from '../dataplane/policy.js';
import { actOnOperatorPlane, receiveOnOperatorPlane, runOperatorPlane, type OperatorHost } from '../operator/operator-host.js';
import { OperatorPlane, type ActAnswer, type MemberSnapshot } from '../operator/operator-plane.js';
import { SessionReplication } from '../sync/replication.js';
import { keyHex, SimSessionStore, simSessionRecord } from './session-store.js';

/** Where a simulated member's configuration "file" lives (nothing is read or written there). */
export const SIM_CONFIG_DIR = '/sim';

/** A member's configuration file as the simulator writes it: cluster "sim", sessions tracked and replicated. */
export function simMemberFile(id: MemberId, configVersion = 1): Record<string, unknown> {
  return {
    cluster: { name: 'sim', clusterIp: '198.51.100.10', configVersion },
    member: { address: id, interface: 'eth0' },
    pki: { certificate: 'member.crt', key: 'member.key', ca: 'ca.crt' },
    clusterAddress: { mode: 'none' },
    dataplane: { interfaces: [{ name: 'eth1', clusterIps: ['198.51.100.10'] }], sessions: { tracking: true, sync: true } },
    logLevel: 'error',
  };
}

/** What the packet path was told (the policy's packet-path effects, counted). */
export type PacketPathCounts = Record<Exclude<DataPlaneEffect['type'], 'hand-over-sessions' | 'handover-done'>, number>;

/** The configuration of a simulated member, as parsed from simMemberFile(). */
export function simMemberConfig(id: MemberId, file = simMemberFile(id)): MemberConfig {
  return parseMemberConfig(file, `${SIM_CONFIG_DIR}/${id}.json`, SIM_CONFIG_DIR);
}

export class SimMember {
  /** The configuration in force (the file's, then each adopted one). */
  config: MemberConfig;
  /** The configuration file's raw JSON, as last persisted. */
  file: Record<string, unknown>;
  /** Configuration versions written to the file, in order. */
  readonly persisted: number[] = [];
  /** The node counters the operator plane added to (count effects). */
  readonly counters: Record<string, number> = {};
  readonly store = new SimSessionStore();
  readonly replication: SessionReplication;
  readonly policy: DataPlanePolicy;
  readonly operator: OperatorPlane;
  readonly packetPath: PacketPathCounts = { 'set-role': 0, 'set-owner': 0, hold: 0, release: 0, 'new-slot': 0, wake: 0 };
  /** Answers to operator actions asked here, by ticket. */
  readonly answers = new Map<number, ActAnswer>();
  readonly planes: readonly SimPlane[];
  /** The context of the hook running now; the machines' hosts act through it. */
  private ctx: PlaneContext | null = null;
  private readonly policyQueue: DataPlaneEvent[] = [];
  private policyStepping = false;
  /** Operator steps waiting for the core to finish the message being received (microtasks in the daemon). */
  private readonly afterCore: (() => void)[] = [];
  private operatorBusy = false;
  private readonly operatorHost: OperatorHost;
  private ticket = 0;

  /** `file`: the configuration file a restarted process reads (default: a new member's, version 1). */
  constructor(
    readonly id: MemberId,
    file: Record<string, unknown> = simMemberFile(id),
  ) {
    this.file = structuredClone(file);
    this.config = simMemberConfig(id, this.file);
    const sessions = this.config.dataplane!.sessions;
    this.replication = new SessionReplication({ self: id, sync: sessions.sync, maxBytesPerSecond: sessions.maxSyncBytesPerSecond }, this.store, {
      send: (to, message) => this.emit({ type: 'send', to, message }),
      ready: () => this.emit({ type: 'core', event: { type: 'sync-ready' } }),
      handoverDone: (requestId, complete) => this.stepPolicy({ type: 'sessions-handed-over', now: this.now, requestId, complete }),
      ownedUnits: () => [...this.context.core.owned],
      failed: (event, err) => this.emit({ type: 'note', text: `replication failed on ${event}: ${err.message}` }),
    });
    this.policy = new DataPlanePolicy(dataPlanePolicyConfig(id, sessions.tracking));
    this.operator = new OperatorPlane({ self: id, requestTimeoutMs: 3000, retransmitMs: 250, confirmTimeoutMs: 1500, persist: true });
    this.operatorHost = this.hostOfOperator();
    this.planes = [this.sessionsPlane(), this.dataPlane(), this.operatorPlane()];
  }

  private get context(): PlaneContext {
    if (!this.ctx) throw new Error(`${this.id}: a plane acted outside a simulator hook`);
    return this.ctx;
  }

  private get now(): number {
    return this.context.now;
  }

  private emit(effect: Parameters<PlaneContext['emit']>[0]): void {
    this.context.emit(effect);
  }

  /** Runs `fn` with `ctx` as the current context (hooks nest through core events they emit). */
  private within<T>(ctx: PlaneContext, fn: () => T): T {
    const outer = this.ctx;
    this.ctx = ctx;
    try {
      return fn();
    } finally {
      this.ctx = outer;
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Requests from the scenario (what the packet engine and the admin API would do)
  // ----------------------------------------------------------------------------------------------

  /** `count` new sessions of this member's units (spread over them), replicated from the next tick. */
  addSessions(ctx: PlaneContext, count: number, firstNumber: number): { key: string; unit: WorkUnit }[] {
    return this.within(ctx, () => {
      const owned = [...ctx.core.owned].sort((a, b) => a - b);
      if (owned.length === 0) throw new Error(`${this.id} owns no unit: it has nowhere to put sessions`);
      const added: { key: string; unit: WorkUnit }[] = [];
      const records = [];
      for (let k = 0; k < count; k++) {
        const unit = owned[Math.floor((k * owned.length) / count)]!;
        const record = this.store.put(simSessionRecord(firstNumber + k, unit, 1, ctx.now));
        records.push(record);
        added.push({ key: keyHex(record.key), unit });
      }
      this.replication.localChanges(ctx.now, records);
      return added;
    });
  }

  /** An admin request for an operator action at this member; the answer lands in `answers` (returns its ticket). */
  act(ctx: PlaneContext, action: OperatorAction, member: MemberId | '', payload: Record<string, unknown> = {}): number {
    const ticket = ++this.ticket;
    this.operatorTurn(ctx, () => actOnOperatorPlane(this.operator, this.operatorHost, { ticket, wallNow: ctx.now, action, member, payload }));
    return ticket;
  }

  // ----------------------------------------------------------------------------------------------
  // The planes
  // ----------------------------------------------------------------------------------------------

  private sessionsPlane(): SimPlane {
    return {
      name: 'sessions',
      message: (ctx, from, message) => this.within(ctx, () => this.replication.message(ctx.now, from, message)),
      stepped: (ctx) => this.within(ctx, () => void this.replication.followView(ctx.now, ctx.core.dataPlaneView(this.holdHandover))),
      tick: (ctx) => this.within(ctx, () => this.replication.tick(ctx.now)),
    };
  }

  private get holdHandover(): boolean {
    return holdsHandedOverUnits(this.config);
  }

  private dataPlane(): SimPlane {
    return {
      name: 'dataplane',
      handover: (ctx, requestId, units, to) => this.within(ctx, () => this.stepPolicy({ type: 'handover', now: ctx.now, requestId, units, to })),
      stepped: (ctx) => this.within(ctx, () => this.stepPolicy({ type: 'view', now: ctx.now, view: ctx.core.dataPlaneView(this.holdHandover) })),
      tick: (ctx) => this.within(ctx, () => this.stepPolicy({ type: 'tick', now: ctx.now })),
    };
  }

  /** Steps the policy; events arising while its effects are carried out wait (as in DataPlane.step). */
  private stepPolicy(event: DataPlaneEvent): void {
    this.policyQueue.push(event);
    if (this.policyStepping) return;
    this.policyStepping = true;
    try {
      while (this.policyQueue.length > 0) {
        for (const effect of this.policy.step(this.policyQueue.shift()!)) {
          switch (effect.type) {
            case 'hand-over-sessions':
              this.emit({ type: 'note', text: `hands over the sessions of ${effect.units.length} units to ${effect.to || '-'} (request ${effect.requestId})` });
              this.replication.handover(this.now, effect.requestId, effect.units, effect.to);
              break;
            case 'handover-done':
              if (!effect.complete) this.emit({ type: 'note', text: `hand-over ${effect.requestId} not acknowledged in time; moving the units anyway` });
              this.emit({ type: 'core', event: { type: 'handover-done', requestId: effect.requestId } });
              break;
            default:
              this.packetPath[effect.type]++;
          }
        }
      }
    } finally {
      this.policyStepping = false;
    }
  }

  private operatorPlane(): SimPlane {
    return {
      name: 'operator',
      // A protocol message's version comparison waits for the core: `stepped` follows its step.
      message: (ctx, from, message) => this.operatorTurn(ctx, () => receiveOnOperatorPlane(this.operator, this.operatorHost, from, message), false),
      stepped: (ctx) => this.operatorTurn(ctx, () => {}),
      tick: (ctx) => this.operatorTurn(ctx, () => runOperatorPlane(this.operator, { type: 'tick', now: ctx.now }, this.operatorHost)),
    };
  }

  /**
   * One turn of the operator plane, then the steps it left for after the core (the daemon runs them as
   * microtasks: after the current job, never inside a step). A turn inside a turn (a core event the
   * plane emitted came back as `stepped`) leaves the waiting steps to the outer one.
   */
  private operatorTurn<T>(ctx: PlaneContext, fn: () => T, runAfterCore = true): T {
    return this.within(ctx, () => {
      if (this.operatorBusy) return fn();
      this.operatorBusy = true;
      try {
        const out = fn();
        while (runAfterCore && this.afterCore.length > 0) this.afterCore.shift()!();
        return out;
      } finally {
        this.operatorBusy = false;
      }
    });
  }

  private view(): MemberSnapshot {
    const st = this.context.core.status(this.now);
    return { role: st.role, master: st.master, members: st.members, movingUnits: st.movingUnits, config: this.config };
  }

  private hostOfOperator(): OperatorHost {
    return {
      now: () => this.now,
      view: () => this.view(),
      config: () => this.config,
      configFile: () => structuredClone(this.file),
      role: () => this.context.core.role,
      send: (to, message) => this.emit({ type: 'send', to, message }),
      answer: (ticket, answer) => {
        this.answers.set(ticket, answer);
        const text = answer.ok
          ? `answer ${ticket}: ok ${answer.outcome.action} by ${answer.outcome.doneBy}${answer.outcome.forwarded ? ' (forwarded)' : ''}: ${answer.outcome.detail}`
          : `answer ${ticket}: ${answer.code} ${answer.message}`;
        this.emit({ type: 'note', text });
      },
      core: (event) => this.emit({ type: 'core', event }),
      note: (level, kind, message) => this.emit({ type: 'note', text: `${kind === 'config' ? 'config: ' : ''}${level === 'info' ? '' : `${level}: `}${message}` }),
      count: (name) => {
        this.counters[name] = (this.counters[name] ?? 0) + 1;
      },
      persist: (file, raw) => {
        this.file = structuredClone(raw);
        const version = (raw.cluster as { configVersion: number }).configVersion;
        this.persisted.push(version);
        this.emit({ type: 'note', text: `wrote ${file.slice(SIM_CONFIG_DIR.length + 1)} (configuration version ${version})` });
        return null;
      },
      adopt: (config) => {
        this.config = config;
        this.emit({ type: 'core', event: configChangedEvent(config) });
      },
      afterCore: (step) => void this.afterCore.push(step),
    };
  }
}
