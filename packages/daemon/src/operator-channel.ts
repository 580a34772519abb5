/**
 * The operator plane between members: operator actions forwarded to the member that can carry them out,
 * and propagation of the cluster configuration.
 *
 * Actions. drain, undrain, rebalance and config changes are the master's; leave and join are the
 * concerned member's own. A member's admin API calls act(); when this member is not the one, the action
 * travels as OPERATOR REQUEST (signed like every message) to the master or to the member, retransmitted
 * every 250 ms until its OPERATOR REPLY arrives or the request times out. A receiver answers a repeated
 * request with the reply it gave the first time, so an action is never done twice.
 *
 * Configuration: the highest version wins. The master makes version v+1 from a validated change,
 * writes it to its configuration file, sends CONFIG UPDATE to every member, then runs it (its MASTER
 * KEEPALIVE carries v+1). A member that sees a peer with a higher version (MASTER KEEPALIVE, EXIT CLUSTER)
 * answers CONFIG STATUS with its own version; a member that sees a lower one sends CONFIG UPDATE. A
 * receiver of a higher CONFIG UPDATE validates it, writes it atomically to its file, adopts it (the core
 * takes the new timings and version; a member that was waiting for the version re-joins) and answers
 * CONFIG STATUS. Lost datagrams are repaired by the next keepalive. All callbacks run on the member's
 * receive path or an admin request, never concurrently.
 */
import type { ClusterMessage, MemberId, OperatorAction, OperatorReply } from '@gwcluster/wire';
import { ApiError, isApiErrorCode, type ApiErrorCode } from './api-errors.js';
import {
  ClusterConfigError,
  clusterConfiguration,
  decodeClusterSettings,
  encodeClusterSettings,
  liveTimings,
  withClusterSettings,
  writeConfigFileAtomically,
  type ClusterConfiguration,
} from './cluster-config.js';
import type { MemberConfig } from './config.js';
import type { MemberNode } from './control/member-node.js';

export interface ActionOutcome {
  readonly action: OperatorAction;
  /** The member that carried the action out. */
  readonly doneBy: MemberId;
  readonly forwarded: boolean;
  readonly detail: string;
  readonly result: Record<string, unknown>;
}

export interface OperatorChannelOptions {
  readonly node: MemberNode;
  /** How long a forwarded action may take before the admin request fails with GW_FORWARD_TIMEOUT. */
  readonly requestTimeoutMs?: number;
  readonly retransmitMs?: number;
  /** Persist adopted configurations to the member's file (default true when the config has a file). */
  readonly persist?: boolean;
}

interface Pending {
  readonly resolve: (r: OperatorReply) => void;
  readonly timers: NodeJS.Timeout[];
}

const ENC = new TextEncoder();
const DEC = new TextDecoder();
const RATE_MS = 200;
const REPLY_CACHE_MS = 60_000;

type LocalResult = { ok: true; detail: string; result: Record<string, unknown> } | { ok: false; code: ApiErrorCode; detail: string };

export class OperatorChannel {
  private readonly node: MemberNode;
  private readonly timeoutMs: number;
  private readonly retransmitMs: number;
  private readonly persist: boolean;
  private readonly pending = new Map<number, Pending>();
  private readonly replies = new Map<string, { reply: OperatorReply; at: number }>();
  private readonly lastSent = new Map<string, number>();
  private requestCounter = 0;
  /** Configuration versions adopted by this member, for GET /v1/config. */
  readonly history: { version: number; at: string; from: MemberId | 'operator' | 'file' }[] = [];

  constructor(opts: OperatorChannelOptions) {
    this.node = opts.node;
    this.timeoutMs = opts.requestTimeoutMs ?? 3000;
    this.retransmitMs = opts.retransmitMs ?? 250;
    this.persist = opts.persist ?? true;
    this.history.push({ version: this.node.config.cluster.configVersion, at: new Date().toISOString(), from: 'file' });
    this.node.setControlHandler((from, msg) => this.onMessage(from, msg));
  }

  get configuration(): ClusterConfiguration {
    return clusterConfiguration(this.node.config);
  }

  /** Stops retransmissions; pending actions fail. */
  close(): void {
    for (const [id, p] of this.pending) {
      for (const t of p.timers) clearTimeout(t);
      p.resolve({ type: 'operator-reply', requestId: id, ok: false, code: 'GW_NO_MASTER', detail: 'the member is shutting down', payload: new Uint8Array(0) });
    }
    this.pending.clear();
    this.node.setControlHandler(null);
  }

  /** The current master as this member knows it, or null. */
  master(): MemberId | null {
    const c = this.node.core;
    if (c.role === 'master') return this.node.self;
    return c.mem?.master ?? null;
  }

  /**
   * Carries out an operator action here or on the member it belongs to. Throws ApiError with the
   * receiver's code when refused, GW_NO_MASTER / GW_FORWARD_TIMEOUT when it cannot be delivered.
   */
  async act(action: OperatorAction, member: MemberId | '', payload: Record<string, unknown> = {}): Promise<ActionOutcome> {
    const target = action === 'leave' || action === 'join' ? member : this.master();
    if (target === null || target === '') {
      throw new ApiError('GW_NO_MASTER', `no master is known to ${this.node.self} (role ${this.node.core.role}); wait for the election to finish (gwctl status) or ask another member`);
    }
    if (target === this.node.self) {
      const r = this.execute(action, member, payload, 'operator');
      if (!r.ok) throw new ApiError(r.code, r.detail);
      return { action, doneBy: target, forwarded: false, detail: r.detail, result: r.result };
    }
    const reply = await this.forward(target, action, member, payload);
    if (!reply.ok) {
      throw new ApiError(isApiErrorCode(reply.code) ? reply.code : 'GW_INTERNAL', `${target}: ${reply.detail}`);
    }
    let result: Record<string, unknown> = {};
    try {
      result = reply.payload.length > 0 ? (JSON.parse(DEC.decode(reply.payload)) as Record<string, unknown>) : {};
    } catch {
      /* an empty result */
    }
    return { action, doneBy: target, forwarded: true, detail: reply.detail, result };
  }

  private forward(to: MemberId, action: OperatorAction, member: MemberId | '', payload: Record<string, unknown>): Promise<OperatorReply> {
    const requestId = Date.now() * 1000 + (this.requestCounter++ % 1000);
    const message: ClusterMessage = { type: 'operator-request', requestId, action, member, payload: ENC.encode(JSON.stringify(payload)) };
    return new Promise<OperatorReply>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const finish = (fn: () => void) => {
        for (const t of timers) clearTimeout(t);
        this.pending.delete(requestId);
        fn();
      };
      this.pending.set(requestId, { resolve: (r) => finish(() => resolve(r)), timers });
      const send = () => {
        this.node.sendControl(to, message);
        timers[0] = setTimeout(send, this.retransmitMs);
      };
      send();
      timers[1] = setTimeout(
        () => finish(() => reject(new ApiError('GW_FORWARD_TIMEOUT', `${to} did not answer the ${action} request within ${this.timeoutMs} ms; check that it is running (gwctl status) and try again`))),
        this.timeoutMs,
      );
    });
  }

  // ----------------------------------------------------------------------------------------------
  // Carrying out an action on this member
  // ----------------------------------------------------------------------------------------------

  private execute(action: OperatorAction, member: MemberId | '', payload: Record<string, unknown>, from: MemberId | 'operator'): LocalResult {
    const core = this.node.core;
    const needMaster = (): LocalResult | null =>
      core.role === 'master' ? null : { ok: false, code: 'GW_NO_MASTER', detail: `${this.node.self} is not master (role ${core.role}); the action must go to the master` };
    const inCluster = (): LocalResult | null =>
      this.node.status().members.some((m) => m.id === member)
        ? null
        : { ok: false, code: 'GW_NOT_FOUND', detail: `${member || '(none)'} is not a member of the cluster; see gwctl members` };
    switch (action) {
      case 'drain':
      case 'undrain': {
        const refusal = needMaster() ?? inCluster();
        if (refusal) return refusal;
        const st = this.node.status();
        if (action === 'drain' && !st.members.some((m) => m.id !== member && !m.draining)) {
          return { ok: false, code: 'GW_REFUSED', detail: `cannot drain ${member}: no other member that is not draining could take its units; add a member or undrain one first` };
        }
        this.node.submit({ type: action, member });
        this.node.note('info', 'operator', `${action} ${member} (asked via ${from === 'operator' ? 'this member' : from})`, { action, member });
        const units = this.node.status().members.find((m) => m.id === member)?.units ?? 0;
        return { ok: true, detail: action === 'drain' ? `draining ${member}` : `${member} takes units again`, result: { member, units } };
      }
      case 'rebalance': {
        const refusal = needMaster();
        if (refusal) return refusal;
        this.node.submit({ type: 'rebalance-now' });
        this.node.note('info', 'operator', `rebalance now (asked via ${from === 'operator' ? 'this member' : from})`, { action });
        return { ok: true, detail: 'rebalance round started', result: { moving: this.node.status().movingUnits } };
      }
      case 'leave': {
        if (core.role === 'left') return { ok: false, code: 'GW_REFUSED', detail: `${this.node.self} has already left the cluster; gwctl join ${this.node.self} brings it back` };
        this.node.note('warn', 'operator', `leaving the cluster (asked via ${from === 'operator' ? 'this member' : from})`, { action });
        this.node.submit({ type: 'leave' });
        return { ok: true, detail: `${this.node.self} left the cluster`, result: { member: this.node.self, role: core.role } };
      }
      case 'join': {
        if (core.role !== 'left' && core.role !== 'stopped') {
          return { ok: false, code: 'GW_REFUSED', detail: `${this.node.self} is already in the cluster (role ${core.role}); only a member that left can join again` };
        }
        this.node.note('info', 'operator', `joining the cluster again (asked via ${from === 'operator' ? 'this member' : from})`, { action });
        this.node.submit({ type: 'start' });
        return { ok: true, detail: `${this.node.self} is joining`, result: { member: this.node.self, role: core.role } };
      }
      case 'config': {
        const refusal = needMaster();
        if (refusal) return refusal;
        const current = this.node.config.cluster.configVersion;
        const base = payload.baseVersion;
        if (base !== undefined && base !== null && base !== current) {
          return { ok: false, code: 'GW_CONFIG_CONFLICT', detail: `the change is based on configuration version ${String(base)} but the cluster runs version ${current}; read it again (gwctl config get) and retry` };
        }
        const changes = payload.changes;
        if (changes === null || typeof changes !== 'object' || Array.isArray(changes) || Object.keys(changes).length === 0) {
          return { ok: false, code: 'GW_CONFIG_INVALID', detail: 'changes must be an object with at least one field, e.g. {"keepalivePeriodMs": 200}' };
        }
        try {
          const next = withClusterSettings(this.node.config, changes as Record<string, unknown>, current + 1);
          this.adopt(next.config, next.raw, from === 'operator' ? 'operator' : from, true);
        } catch (e) {
          if (e instanceof ClusterConfigError) return { ok: false, code: 'GW_CONFIG_INVALID', detail: e.message };
          return { ok: false, code: 'GW_INTERNAL', detail: `cannot write the configuration file ${this.node.config.source}: ${(e as Error).message}` };
        }
        const c = this.configuration;
        return { ok: true, detail: `cluster configuration version ${c.version}`, result: { version: c.version, settings: c.settings } };
      }
    }
  }

  /**
   * Persists and adopts `next`; as master, first sends it to every member so that they run it before
   * they see it in MASTER KEEPALIVE. Throws when the file cannot be written (nothing is adopted then).
   */
  private adopt(next: MemberConfig, raw: Record<string, unknown>, from: MemberId | 'operator', push: boolean): void {
    if (this.persist && next.source) writeConfigFileAtomically(next.source, raw);
    const before = this.node.config.cluster.configVersion;
    if (push && this.node.core.role === 'master') {
      const update = this.updateMessage(next);
      for (const m of this.node.status().members) if (m.id !== this.node.self) this.node.sendControl(m.id, update);
    }
    this.node.adoptConfig(next, liveTimings(next));
    this.history.push({ version: next.cluster.configVersion, at: new Date().toISOString(), from });
    if (this.history.length > 50) this.history.splice(0, this.history.length - 50);
    this.node.note('info', 'config', `adopted cluster configuration version ${next.cluster.configVersion} (was ${before}, from ${from})`, {
      from: before,
      to: next.cluster.configVersion,
      by: from,
    });
  }

  private updateMessage(config: MemberConfig): ClusterMessage {
    const c = clusterConfiguration(config);
    return { type: 'config-update', version: c.version, clusterConfig: encodeClusterSettings(c.settings) };
  }

  // ----------------------------------------------------------------------------------------------
  // Messages
  // ----------------------------------------------------------------------------------------------

  private rateLimited(key: string): boolean {
    const now = performance.now();
    const last = this.lastSent.get(key) ?? -Infinity;
    if (now - last < RATE_MS) return true;
    this.lastSent.set(key, now);
    return false;
  }

  private sendUpdate(to: MemberId): void {
    if (this.rateLimited(`update:${to}`)) return;
    this.node.sendControl(to, this.updateMessage(this.node.config));
  }

  private sendStatus(to: MemberId): void {
    if (this.rateLimited(`status:${to}`)) return;
    this.node.sendControl(to, { type: 'config-status', version: this.node.config.cluster.configVersion });
  }

  /** Compares a peer's version with ours and starts the exchange that brings the lower one up. */
  private compareVersion(from: MemberId, theirs: number): void {
    const ours = this.node.config.cluster.configVersion;
    if (theirs < ours) this.sendUpdate(from);
    else if (theirs > ours) this.sendStatus(from);
  }

  private onMessage(from: MemberId, msg: ClusterMessage): boolean {
    switch (msg.type) {
      case 'operator-request':
        this.onRequest(from, msg.requestId, msg.action, msg.member, msg.payload);
        return true;
      case 'operator-reply':
        this.pending.get(msg.requestId)?.resolve(msg);
        return true;
      case 'config-update':
        this.onUpdate(from, msg.version, msg.clusterConfig);
        return true;
      case 'config-status':
        this.compareVersion(from, msg.version);
        return true;
      // Protocol messages: compare versions once the core has handled the message (and sent its answer),
      // so that a CONFIG UPDATE follows, never overtakes, the EXIT CLUSTER it repairs.
      case 'join-request':
        if (this.node.core.role === 'master') queueMicrotask(() => this.compareVersion(from, msg.configVersion));
        return false;
      case 'master-keepalive':
        queueMicrotask(() => this.compareVersion(from, msg.configVersion));
        return false;
      case 'exit-cluster':
        if (msg.reason === 'config-mismatch') queueMicrotask(() => this.compareVersion(from, msg.configVersion));
        return false;
      default:
        return false;
    }
  }

  private onRequest(from: MemberId, requestId: number, action: OperatorAction, member: MemberId | '', payloadBytes: Uint8Array): void {
    const key = `${from}/${requestId}`;
    const now = Date.now();
    for (const [k, v] of this.replies) if (now - v.at > REPLY_CACHE_MS) this.replies.delete(k);
    const cached = this.replies.get(key);
    if (cached) {
      this.node.sendControl(from, cached.reply);
      return;
    }
    let payload: Record<string, unknown> = {};
    let r: LocalResult;
    try {
      payload = payloadBytes.length > 0 ? (JSON.parse(DEC.decode(payloadBytes)) as Record<string, unknown>) : {};
      r = this.execute(action, member, payload, from);
    } catch (e) {
      r = { ok: false, code: 'GW_BAD_REQUEST', detail: `the forwarded ${action} request does not parse: ${(e as Error).message}` };
    }
    const reply: OperatorReply = r.ok
      ? { type: 'operator-reply', requestId, ok: true, code: '', detail: r.detail.slice(0, 256), payload: ENC.encode(JSON.stringify(r.result)) }
      : { type: 'operator-reply', requestId, ok: false, code: r.code, detail: r.detail.slice(0, 256), payload: new Uint8Array(0) };
    this.replies.set(key, { reply, at: now });
    if (this.replies.size > 256) this.replies.delete(this.replies.keys().next().value!);
    this.node.sendControl(from, reply);
  }

  private onUpdate(from: MemberId, version: number, bytes: Uint8Array): void {
    const ours = this.node.config.cluster.configVersion;
    if (version <= ours) {
      if (version < ours) this.sendUpdate(from);
      else this.sendStatus(from);
      return;
    }
    try {
      const settings = decodeClusterSettings(bytes);
      const next = withClusterSettings(this.node.config, settings, version);
      this.adopt(next.config, next.raw, from, true);
    } catch (e) {
      this.node.note('error', 'config', `refused cluster configuration version ${version} from ${from}: ${(e as Error).message}`, { from, version });
      return;
    }
    this.lastSent.delete(`status:${from}`);
    this.sendStatus(from);
  }
}
