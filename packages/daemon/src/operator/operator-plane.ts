/**
 * The operator plane between members, as a pure step machine: events in, effects out as data. No timers,
 * no clock, no I/O: time comes in as `now` (monotonic ms) and `wallNow` (ms since the epoch), the member's
 * state as a MemberSnapshot, the configuration file as its raw JSON; operator-channel.ts is the driver that
 * owns the timers and the clock and carries the effects out, in order.
 *
 * Actions. drain, undrain, rebalance and config changes are the master's; leave and join are the
 * concerned member's own. An `act` for another member travels as OPERATOR REQUEST (signed like every
 * message) to the master or to the member, retransmitted every retransmitMs until its OPERATOR REPLY
 * arrives or requestTimeoutMs passes. A receiver answers a repeated request with the reply it gave the
 * first time (kept REPLY_CACHE_MS), so an action is never done twice.
 *
 * Configuration: the highest version wins. The master makes version v+1 from a validated change, persists
 * it, sends CONFIG UPDATE to every member, then adopts it (its MASTER KEEPALIVE carries v+1). A member
 * that sees a peer with a higher version (MASTER KEEPALIVE, EXIT CLUSTER) answers CONFIG STATUS with its
 * own version; a member that sees a lower one sends CONFIG UPDATE (each at most every RATE_MS per peer).
 * A receiver of a higher CONFIG UPDATE validates it, persists it, adopts it and answers CONFIG STATUS.
 * Lost datagrams are repaired by the next keepalive. A receiver that cannot write its file adopts nothing
 * and leaves the cluster (its EXIT CLUSTER says why), so it serves no unit under a version it does not run.
 * The master answers an operator's change once every member it sent the change to has confirmed it
 * (CONFIG STATUS with the new version; the update is sent again every retransmitMs until then), has left
 * (EXIT CLUSTER), or confirmTimeoutMs has passed; a change some member did not adopt fails with
 * GW_CONFIG_NOT_ADOPTED naming each member and why.
 *
 * Feedback: an effect list that ends with `need-view` asks the driver, once it has carried the list out,
 * to step `viewed` with the member's view (the result of a local action reads the state after the core
 * took the action); one that ends with `persist` asks it to write the file and step `persisted`. Until
 * then the machine is waiting for that event and takes no other.
 */
import type { ClusterMessage, MemberId, OperatorAction, OperatorReply } from '@gwcluster/wire';
import { addressPoolClusterProblems, isApiErrorCode, type ApiErrorCode, type HostSubnet } from '@gwcluster/contracts';
import { ClusterConfigError, clusterConfiguration, decodeClusterSettings, encodeClusterSettings, HELD_FIELDS_KEY, heldFields, splitUnknownSettings, withClusterSettings } from '../config/cluster-config.js';

/** Node counter of propagated configurations that carried fields this member does not know (ignored). */
export const UNKNOWN_CONFIG_FIELDS_COUNTER = 'config.unknown-fields-ignored';
import type { MemberConfig } from '../config/config.js';

/** Retransmission of CONFIG UPDATE / CONFIG STATUS to one peer: at most once per RATE_MS, ms. */
export const RATE_MS = 200;
/** How long an answered OPERATOR REQUEST's reply is kept for repeats, ms. */
export const REPLY_CACHE_MS = 60_000;
/** Replies kept at most (oldest dropped first). */
export const REPLY_CACHE_SIZE = 256;

export interface OperatorPlaneConfig {
  readonly self: MemberId;
  /** How long a forwarded action may take before it fails with GW_FORWARD_TIMEOUT, ms. */
  readonly requestTimeoutMs: number;
  /** Retransmission period of a forwarded OPERATOR REQUEST, and of CONFIG UPDATE to unconfirmed members, ms. */
  readonly retransmitMs: number;
  /** How long the master waits for every member to confirm a change before it answers, ms (< requestTimeoutMs). */
  readonly confirmTimeoutMs: number;
  /** Persist adopted configurations to the member's file (when it has one). */
  readonly persist: boolean;
  /** This host's IPv4 interface addresses, to check a changed address pool against (absent: not checked). */
  readonly hostSubnets?: () => readonly HostSubnet[];
}

/** What the plane reads of its member (MemberNode.status() and its configuration). */
export interface MemberSnapshot {
  readonly role: string;
  readonly master: MemberId | null;
  readonly members: readonly { readonly id: MemberId; readonly units: number; readonly draining: boolean }[];
  readonly movingUnits: number;
  readonly config: MemberConfig;
  /** The address pool as this member last heard it placed (absent: not known, e.g. in the simulator). */
  readonly pool?: readonly { readonly address: string; readonly owner: MemberId | null }[];
}

export interface ActionOutcome {
  readonly action: OperatorAction;
  /** The member that carried the action out. */
  readonly doneBy: MemberId;
  readonly forwarded: boolean;
  readonly detail: string;
  readonly result: Record<string, unknown>;
}

/** The answer to an `act`: the outcome, or the coded error the admin API returns. */
export type ActAnswer = { readonly ok: true; readonly outcome: ActionOutcome } | { readonly ok: false; readonly code: ApiErrorCode; readonly message: string };

/** The core events an operator action feeds to its member. */
export type OperatorCoreEvent =
  | { readonly type: 'drain' | 'undrain' | 'failback'; readonly member: MemberId }
  | { readonly type: 'rebalance-now' }
  | { readonly type: 'leave'; readonly detail?: string }
  | { readonly type: 'start' };

/** The messages that are the operator plane's own (consumed; the core never sees them). */
export type OperatorMessage = Extract<ClusterMessage, { type: 'operator-request' | 'operator-reply' | 'config-update' | 'config-status' }>;

export function isOperatorMessage(m: ClusterMessage): m is OperatorMessage {
  return m.type === 'operator-request' || m.type === 'operator-reply' || m.type === 'config-update' || m.type === 'config-status';
}

export type OperatorEvent =
  /** An admin request for an action; answered by an `answer` effect with the same ticket. */
  | {
      readonly type: 'act';
      readonly now: number;
      readonly wallNow: number;
      readonly ticket: number;
      readonly action: OperatorAction;
      readonly member: MemberId | '';
      readonly payload: Readonly<Record<string, unknown>>;
      readonly view: MemberSnapshot;
      /** The configuration file's raw JSON now (readConfigFile()); read for config changes. */
      readonly configFile: Readonly<Record<string, unknown>>;
    }
  /** An operator-plane message from a peer. */
  | { readonly type: 'message'; readonly now: number; readonly from: MemberId; readonly message: OperatorMessage; readonly view: MemberSnapshot; readonly configFile: Readonly<Record<string, unknown>> }
  /** A protocol message the core is about to handle; `role` is this member's before the core handles it. */
  | { readonly type: 'protocol-message'; readonly now: number; readonly from: MemberId; readonly message: ClusterMessage; readonly role: string }
  /** After the core handled a protocol message: a peer runs configuration `version`. */
  | { readonly type: 'peer-version'; readonly now: number; readonly from: MemberId; readonly version: number; readonly config: MemberConfig }
  /** The member's view after the driver carried out a list that ended with `need-view`. */
  | { readonly type: 'viewed'; readonly now: number; readonly view: MemberSnapshot }
  /** The outcome of a `persist` effect: null when written, else what failed. */
  | { readonly type: 'persisted'; readonly now: number; readonly error: string | null }
  | { readonly type: 'tick'; readonly now: number }
  /** The member is shutting down: pending actions fail. */
  | { readonly type: 'close'; readonly now: number };

export type OperatorEffect =
  | { readonly type: 'send'; readonly to: MemberId; readonly message: ClusterMessage }
  | { readonly type: 'answer'; readonly ticket: number; readonly answer: ActAnswer }
  | { readonly type: 'core'; readonly event: OperatorCoreEvent }
  | { readonly type: 'note'; readonly level: 'info' | 'warn' | 'error'; readonly kind: 'operator' | 'config'; readonly message: string; readonly fields: Record<string, unknown> }
  /** Add one to the member's node counter `name`. */
  | { readonly type: 'count'; readonly name: string }
  /** Write `raw` to `file` atomically, then step `persisted`. */
  | { readonly type: 'persist'; readonly file: string; readonly raw: Record<string, unknown> }
  /** Run `config` (already persisted): the core takes its version and live timings. */
  | { readonly type: 'adopt'; readonly config: MemberConfig; readonly from: MemberId | 'operator' }
  /** Step `viewed` with the member's view once this list is carried out. */
  | { readonly type: 'need-view' }
  /** Once the core has handled the message being received (and sent its answer), step `peer-version`. */
  | { readonly type: 'compare-after-core'; readonly from: MemberId; readonly version: number };

type Origin = { readonly kind: 'local'; readonly ticket: number; readonly action: OperatorAction } | { readonly kind: 'remote'; readonly from: MemberId; readonly requestId: number };
type LocalResult = { ok: true; detail: string; result: Record<string, unknown> } | { ok: false; code: ApiErrorCode; detail: string };

interface Forwarded {
  readonly ticket: number;
  readonly to: MemberId;
  readonly action: OperatorAction;
  readonly message: ClusterMessage;
  readonly deadline: number;
  nextSendAt: number;
}

/** An operator's configuration change the master has adopted and waits to hear adopted by every member. */
interface Confirming {
  readonly origin: Origin;
  readonly config: MemberConfig;
  readonly before: number;
  /** Members that have neither confirmed nor left. */
  readonly waiting: Set<MemberId>;
  /** Members that did not adopt it, and why. */
  readonly failed: Map<MemberId, string>;
  readonly deadline: number;
  nextSendAt: number;
}

/** What the machine waits for before it takes other events. */
type Awaiting =
  | { readonly kind: 'view'; readonly origin: Origin; readonly result: (view: MemberSnapshot) => LocalResult }
  | { readonly kind: 'persist'; readonly origin: Origin | null; readonly adoption: Adoption };

interface Adoption {
  readonly next: MemberConfig;
  readonly from: MemberId | 'operator';
  readonly before: number;
  readonly pushTo: readonly MemberId[];
  /** A CONFIG UPDATE from this peer (answered with CONFIG STATUS once adopted). */
  readonly updateFrom: MemberId | null;
}

const ENC = new TextEncoder();
const DEC = new TextDecoder();

export class OperatorPlane {
  private readonly forwarded = new Map<number, Forwarded>();
  private readonly confirming = new Map<number, Confirming>();
  private readonly replies = new Map<string, { reply: OperatorReply; at: number }>();
  private readonly lastSent = new Map<string, number>();
  /** Unknown propagated fields already warned about (one warning each per process). */
  private readonly warnedUnknown = new Set<string>();
  private requestCounter = 0;
  private awaiting: Awaiting | null = null;
  private out: OperatorEffect[] = [];

  constructor(private readonly cfg: OperatorPlaneConfig) {}

  /** The earliest `now` at which a tick has something to do (retransmit, time-out), or null. */
  nextWakeAt(): number | null {
    let at: number | null = null;
    for (const f of [...this.forwarded.values(), ...this.confirming.values()]) {
      const t = Math.min(f.nextSendAt, f.deadline);
      if (at === null || t < at) at = t;
    }
    return at;
  }

  step(event: OperatorEvent): OperatorEffect[] {
    this.out = [];
    if (this.awaiting && event.type !== 'viewed' && event.type !== 'persisted') {
      throw new Error(`operator plane: ${event.type} while waiting for ${this.awaiting.kind === 'view' ? 'viewed' : 'persisted'}`);
    }
    switch (event.type) {
      case 'act':
        this.onAct(event);
        break;
      case 'message':
        this.onMessage(event.now, event.from, event.message, event.view, event.configFile);
        break;
      case 'protocol-message':
        this.onProtocolMessage(event.now, event.from, event.message, event.role);
        break;
      case 'peer-version':
        this.compareVersion(event.now, event.from, event.version, event.config);
        break;
      case 'viewed': {
        const a = this.awaiting;
        if (a?.kind !== 'view') throw new Error('operator plane: viewed without need-view');
        this.awaiting = null;
        this.finish(event.now, a.origin, a.result(event.view));
        break;
      }
      case 'persisted': {
        const a = this.awaiting;
        if (a?.kind !== 'persist') throw new Error('operator plane: persisted without persist');
        this.awaiting = null;
        if (event.error === null) this.adopted(event.now, a.origin, a.adoption);
        else this.refused(event.now, a.origin, a.adoption, event.error);
        break;
      }
      case 'tick':
        this.onTick(event.now);
        break;
      case 'close':
        for (const f of this.forwarded.values()) this.answer(f.ticket, { ok: false, code: 'GW_NO_MASTER', message: `${f.to}: the member is shutting down` });
        this.forwarded.clear();
        for (const k of this.confirming.values()) {
          for (const m of k.waiting) k.failed.set(m, `had not confirmed version ${k.config.cluster.configVersion} when ${this.cfg.self} shut down`);
          k.waiting.clear();
          this.settleConfirmation(event.now, k);
        }
        this.confirming.clear();
        break;
    }
    return this.out;
  }

  // ----------------------------------------------------------------------------------------------
  // Actions asked of this member's admin API
  // ----------------------------------------------------------------------------------------------

  private onAct(e: Extract<OperatorEvent, { type: 'act' }>): void {
    const target = e.action === 'leave' || e.action === 'join' ? e.member : e.view.master;
    if (target === null || target === '') {
      this.answer(e.ticket, {
        ok: false,
        code: 'GW_NO_MASTER',
        message: `no master is known to ${this.cfg.self} (role ${e.view.role}); wait for the election to finish (gwctl status) or ask another member`,
      });
      return;
    }
    if (target === this.cfg.self) {
      this.execute(e.now, { kind: 'local', ticket: e.ticket, action: e.action }, e.action, e.member, e.payload, 'operator', e.view, e.configFile);
      return;
    }
    const requestId = e.wallNow * 1000 + (this.requestCounter++ % 1000);
    const message: ClusterMessage = { type: 'operator-request', requestId, action: e.action, member: e.member, payload: ENC.encode(JSON.stringify(e.payload)) };
    this.forwarded.set(requestId, { ticket: e.ticket, to: target, action: e.action, message, deadline: e.now + this.cfg.requestTimeoutMs, nextSendAt: e.now + this.cfg.retransmitMs });
    this.send(target, message);
  }

  private onTick(now: number): void {
    for (const k of [...this.confirming.values()]) {
      if (now >= k.deadline) {
        for (const m of k.waiting) k.failed.set(m, `did not confirm version ${k.config.cluster.configVersion} within ${this.cfg.confirmTimeoutMs} ms (it adopts it when it hears the master; check it with gwctl status -e that member)`);
        k.waiting.clear();
        this.settleConfirmation(now, k);
      } else if (now >= k.nextSendAt) {
        const update = updateMessage(k.config);
        for (const m of k.waiting) this.send(m, update);
        k.nextSendAt = now + this.cfg.retransmitMs;
      }
    }
    for (const [id, f] of this.forwarded) {
      if (now >= f.deadline) {
        this.forwarded.delete(id);
        this.answer(f.ticket, {
          ok: false,
          code: 'GW_FORWARD_TIMEOUT',
          message: `${f.to} did not answer the ${f.action} request within ${this.cfg.requestTimeoutMs} ms; check that it is running (gwctl status) and try again`,
        });
      } else if (now >= f.nextSendAt) {
        this.send(f.to, f.message);
        f.nextSendAt = now + this.cfg.retransmitMs;
      }
    }
  }

  private onReply(reply: OperatorReply): void {
    const f = this.forwarded.get(reply.requestId);
    if (!f) return;
    this.forwarded.delete(reply.requestId);
    if (!reply.ok) {
      this.answer(f.ticket, { ok: false, code: isApiErrorCode(reply.code) ? reply.code : 'GW_INTERNAL', message: `${f.to}: ${reply.detail}` });
      return;
    }
    let result: Record<string, unknown> = {};
    try {
      result = reply.payload.length > 0 ? (JSON.parse(DEC.decode(reply.payload)) as Record<string, unknown>) : {};
    } catch {
      /* an empty result */
    }
    this.answer(f.ticket, { ok: true, outcome: { action: f.action, doneBy: f.to, forwarded: true, detail: reply.detail, result } });
  }

  // ----------------------------------------------------------------------------------------------
  // Carrying out an action on this member
  // ----------------------------------------------------------------------------------------------

  private execute(
    now: number,
    origin: Origin,
    action: OperatorAction,
    member: MemberId | '',
    payload: Readonly<Record<string, unknown>>,
    from: MemberId | 'operator',
    view: MemberSnapshot,
    configFile: Readonly<Record<string, unknown>>,
  ): void {
    const self = this.cfg.self;
    const via = from === 'operator' ? 'this member' : from;
    const refuse = (code: ApiErrorCode, detail: string) => this.finish(now, origin, { ok: false, code, detail });
    const notMaster = view.role !== 'master';
    const notMasterDetail = `${self} is not master (role ${view.role}); the action must go to the master`;
    switch (action) {
      case 'drain':
      case 'undrain': {
        if (notMaster) return refuse('GW_NO_MASTER', notMasterDetail);
        if (!view.members.some((m) => m.id === member)) return refuse('GW_NOT_FOUND', `${member || '(none)'} is not a member of the cluster; see gwctl members`);
        if (action === 'drain' && !view.members.some((m) => m.id !== member && !m.draining)) {
          return refuse('GW_REFUSED', `cannot drain ${member}: no other member that is not draining could take its units; add a member or undrain one first`);
        }
        this.out.push({ type: 'core', event: { type: action, member: member as MemberId } });
        this.note('info', 'operator', `${action} ${member} (asked via ${via})`, { action, member });
        const detail = action === 'drain' ? `draining ${member}` : `${member} takes units again`;
        return this.awaitView(origin, (after) => ({ ok: true, detail, result: { member, units: after.members.find((m) => m.id === member)?.units ?? 0 } }));
      }
      case 'failback': {
        if (notMaster) return refuse('GW_NO_MASTER', notMasterDetail);
        const m = view.members.find((x) => x.id === member);
        if (!m) return refuse('GW_NOT_FOUND', `${member || '(none)'} is not a member of the cluster; see gwctl members`);
        if (m.draining) return refuse('GW_REFUSED', `${member} is draining: it holds no pool address; gwctl undrain ${member} first`);
        if (view.config.cluster.addressPool.length === 0) return refuse('GW_REFUSED', 'the cluster has no address pool (cluster.addressPool is empty): nothing to give back');
        const held = (v: MemberSnapshot) => (v.pool ?? []).filter((p) => p.owner === member).map((p) => p.address);
        const before = held(view);
        this.out.push({ type: 'core', event: { type: 'failback', member: member as MemberId } });
        this.note('info', 'operator', `failback ${member} (asked via ${via})`, { action, member });
        return this.awaitView(origin, (after) => {
          const now = held(after);
          const gained = now.filter((a) => !before.includes(a));
          return {
            ok: true,
            detail: gained.length > 0 ? `${member} answers for ${gained.join(', ')} again (${now.length} pool address(es) in all)` : `${member} already holds its share of the pool (${now.length} address(es))`,
            result: { member, addresses: now, gained },
          };
        });
      }
      case 'rebalance': {
        if (notMaster) return refuse('GW_NO_MASTER', notMasterDetail);
        this.out.push({ type: 'core', event: { type: 'rebalance-now' } });
        this.note('info', 'operator', `rebalance now (asked via ${via})`, { action });
        return this.awaitView(origin, (after) => ({ ok: true, detail: 'rebalance round started', result: { moving: after.movingUnits } }));
      }
      case 'leave': {
        if (member !== self) return refuse('GW_BAD_REQUEST', notAddressedTo(action, member, self));
        if (view.role === 'left') return refuse('GW_REFUSED', `${self} has already left the cluster; gwctl join ${self} brings it back`);
        this.note('warn', 'operator', `leaving the cluster (asked via ${via})`, { action });
        this.out.push({ type: 'core', event: { type: 'leave' } });
        return this.awaitView(origin, (after) => ({ ok: true, detail: `${self} left the cluster`, result: { member: self, role: after.role } }));
      }
      case 'join': {
        if (member !== self) return refuse('GW_BAD_REQUEST', notAddressedTo(action, member, self));
        if (view.role !== 'left' && view.role !== 'stopped') {
          return refuse('GW_REFUSED', `${self} is already in the cluster (role ${view.role}); only a member that left can join again`);
        }
        this.note('info', 'operator', `joining the cluster again (asked via ${via})`, { action });
        this.out.push({ type: 'core', event: { type: 'start' } });
        return this.awaitView(origin, (after) => ({ ok: true, detail: `${self} is joining`, result: { member: self, role: after.role } }));
      }
      case 'config': {
        if (notMaster) return refuse('GW_NO_MASTER', notMasterDetail);
        const current = view.config.cluster.configVersion;
        const base = payload.baseVersion;
        if (base !== undefined && base !== null && base !== current) {
          return refuse('GW_CONFIG_CONFLICT', `the change is based on configuration version ${String(base)} but the cluster runs version ${current}; read it again (gwctl config get) and retry`);
        }
        const changes = payload.changes;
        if (changes === null || typeof changes !== 'object' || Array.isArray(changes) || Object.keys(changes).length === 0) {
          return refuse('GW_CONFIG_INVALID', 'changes must be an object with at least one field, e.g. {"keepalivePeriodMs": 200}');
        }
        let next: { config: MemberConfig; raw: Record<string, unknown> };
        try {
          next = withClusterSettings(view.config, configFile, changes as Record<string, unknown>, current + 1);
        } catch (e) {
          if (e instanceof ClusterConfigError) return refuse('GW_CONFIG_INVALID', e.message);
          return refuse('GW_INTERNAL', `cannot write the configuration file ${view.config.source}: ${(e as Error).message}`);
        }
        if ('addressPool' in changes) {
          // What the schema cannot know: the members' own addresses and this host's subnets. Nothing is applied.
          const problems = addressPoolClusterProblems(next.config.cluster.addressPool, view.members.map((m) => m.id), this.cfg.hostSubnets?.() ?? null, self);
          if (problems.length > 0) return refuse('GW_CONFIG_INVALID', problems.join('; '));
        }
        return this.adopt(now, origin, next, from, view, null);
      }
    }
  }

  private awaitView(origin: Origin, result: (view: MemberSnapshot) => LocalResult): void {
    this.awaiting = { kind: 'view', origin, result };
    this.out.push({ type: 'need-view' });
  }

  /** Answers a local action, or replies to (and remembers the reply of) a forwarded one. */
  private finish(now: number, origin: Origin, r: LocalResult): void {
    if (origin.kind === 'local') {
      this.answer(
        origin.ticket,
        r.ok ? { ok: true, outcome: { action: origin.action, doneBy: this.cfg.self, forwarded: false, detail: r.detail, result: r.result } } : { ok: false, code: r.code, message: r.detail },
      );
      return;
    }
    const reply: OperatorReply = r.ok
      ? { type: 'operator-reply', requestId: origin.requestId, ok: true, code: '', detail: r.detail.slice(0, 256), payload: ENC.encode(JSON.stringify(r.result)) }
      : { type: 'operator-reply', requestId: origin.requestId, ok: false, code: r.code, detail: r.detail.slice(0, 256), payload: new Uint8Array(0) };
    this.replies.set(`${origin.from}/${origin.requestId}`, { reply, at: now });
    if (this.replies.size > REPLY_CACHE_SIZE) this.replies.delete(this.replies.keys().next().value!);
    this.send(origin.from, reply);
  }

  // ----------------------------------------------------------------------------------------------
  // Configuration
  // ----------------------------------------------------------------------------------------------

  /**
   * Persists (when configured) and adopts `next`; as master, first sends it to every member so that they
   * run it before they see it in MASTER KEEPALIVE. Nothing is adopted when the file cannot be written.
   */
  private adopt(now: number, origin: Origin | null, next: { config: MemberConfig; raw: Record<string, unknown> }, from: MemberId | 'operator', view: MemberSnapshot, updateFrom: MemberId | null): void {
    const adoption: Adoption = {
      next: next.config,
      from,
      before: view.config.cluster.configVersion,
      pushTo: view.role === 'master' ? view.members.filter((m) => m.id !== this.cfg.self).map((m) => m.id) : [],
      updateFrom,
    };
    if (this.cfg.persist && next.config.source) {
      this.awaiting = { kind: 'persist', origin, adoption };
      this.out.push({ type: 'persist', file: next.config.source, raw: next.raw });
      return;
    }
    this.adopted(now, origin, adoption);
  }

  private adopted(now: number, origin: Origin | null, a: Adoption): void {
    const update = updateMessage(a.next);
    for (const m of a.pushTo) this.send(m, update);
    this.out.push({ type: 'adopt', config: a.next, from: a.from });
    const version = a.next.cluster.configVersion;
    this.note('info', 'config', `adopted cluster configuration version ${version} (was ${a.before}, from ${a.from})`, { from: a.before, to: version, by: a.from });
    if (origin) {
      const k: Confirming = { origin, config: a.next, before: a.before, waiting: new Set(a.pushTo), failed: new Map(), deadline: now + this.cfg.confirmTimeoutMs, nextSendAt: now + this.cfg.retransmitMs };
      this.confirming.set(version, k);
      this.settleConfirmation(now, k);
    }
    if (a.updateFrom !== null) {
      this.lastSent.delete(`status:${a.updateFrom}`);
      this.sendStatus(now, a.updateFrom, a.next);
    }
  }

  /**
   * The file could not be written (`why`): nothing was adopted. A member given the version by a peer
   * leaves the cluster: the others run a version it does not, and it must not keep serving units.
   */
  private refused(now: number, origin: Origin | null, a: Adoption, why: string): void {
    const version = a.next.cluster.configVersion;
    if (origin) {
      this.finish(now, origin, { ok: false, code: 'GW_INTERNAL', detail: `cannot write the configuration file ${a.next.source}: ${why}` });
      return;
    }
    this.note('error', 'config', `refused cluster configuration version ${version} from ${a.from}: ${why}; leaving the cluster (fix the file, then gwctl join ${this.cfg.self})`, { from: a.from, version });
    // EXIT CLUSTER detail: at most 256 characters on the wire.
    const detail = `cannot write its configuration file, so it did not adopt version ${version}: ${why}`.slice(0, 256);
    this.out.push({ type: 'core', event: { type: 'leave', detail } });
  }

  /** Answers a confirmed change once no member is awaited; the members that did not adopt it make it fail. */
  private settleConfirmation(now: number, k: Confirming): void {
    if (k.waiting.size > 0) return;
    const version = k.config.cluster.configVersion;
    this.confirming.delete(version);
    if (k.failed.size === 0) {
      const c = clusterConfiguration(k.config);
      this.finish(now, k.origin, { ok: true, detail: `cluster configuration version ${c.version}`, result: { version: c.version, settings: c.settings } });
      return;
    }
    const who = [...k.failed].map(([m, why]) => `${m}: ${why}`).join('; ');
    this.note('error', 'config', `configuration version ${version} not adopted by ${[...k.failed.keys()].join(', ')}`, { version, failed: Object.fromEntries(k.failed) });
    this.finish(now, k.origin, {
      ok: false,
      code: 'GW_CONFIG_NOT_ADOPTED',
      detail: `configuration version ${version} (was ${k.before}) is in force on the master ${this.cfg.self}, but not on ${k.failed.size} member(s): ${who}`,
    });
  }

  /** A member the master waits on confirmed `version` (CONFIG STATUS) or left (EXIT CLUSTER, `left` why). */
  private confirmationFrom(now: number, from: MemberId, version: number | null, left: string | null): void {
    for (const k of [...this.confirming.values()]) {
      if (!k.waiting.has(from)) continue;
      if (left !== null) k.failed.set(from, left);
      else if (version === null || version < k.config.cluster.configVersion) continue;
      k.waiting.delete(from);
      this.settleConfirmation(now, k);
    }
  }

  private rateLimited(now: number, key: string): boolean {
    const last = this.lastSent.get(key) ?? -Infinity;
    if (now - last < RATE_MS) return true;
    this.lastSent.set(key, now);
    return false;
  }

  private sendUpdate(now: number, to: MemberId, config: MemberConfig): void {
    if (this.rateLimited(now, `update:${to}`)) return;
    this.send(to, updateMessage(config));
  }

  private sendStatus(now: number, to: MemberId, config: MemberConfig): void {
    if (this.rateLimited(now, `status:${to}`)) return;
    this.send(to, { type: 'config-status', version: config.cluster.configVersion });
  }

  /** Compares a peer's version with ours and starts the exchange that brings the lower one up. */
  private compareVersion(now: number, from: MemberId, theirs: number, config: MemberConfig): void {
    const ours = config.cluster.configVersion;
    if (theirs < ours) this.sendUpdate(now, from, config);
    else if (theirs > ours) this.sendStatus(now, from, config);
  }

  // ----------------------------------------------------------------------------------------------
  // Messages
  // ----------------------------------------------------------------------------------------------

  private onMessage(now: number, from: MemberId, msg: OperatorMessage, view: MemberSnapshot, configFile: Readonly<Record<string, unknown>>): void {
    switch (msg.type) {
      case 'operator-request':
        return this.onRequest(now, from, msg.requestId, msg.action, msg.member, msg.payload, view, configFile);
      case 'operator-reply':
        return this.onReply(msg);
      case 'config-update':
        return this.onUpdate(now, from, msg.version, msg.clusterConfig, view, configFile);
      case 'config-status':
        this.confirmationFrom(now, from, msg.version, null);
        return this.compareVersion(now, from, msg.version, view.config);
    }
  }

  // Protocol messages: versions are compared once the core has handled the message (and sent its answer),
  // so that a CONFIG UPDATE follows, never overtakes, the EXIT CLUSTER it repairs.
  private onProtocolMessage(now: number, from: MemberId, msg: ClusterMessage, role: string): void {
    if (msg.type === 'exit-cluster' && this.confirming.size > 0) this.confirmationFrom(now, from, null, `left the cluster (${msg.reason}): ${msg.detail}`);
    const compare = (version: number) => this.out.push({ type: 'compare-after-core', from, version });
    if (msg.type === 'join-request' && role === 'master') compare(msg.configVersion);
    else if (msg.type === 'master-keepalive') compare(msg.configVersion);
    else if (msg.type === 'exit-cluster' && msg.reason === 'config-mismatch') compare(msg.configVersion);
  }

  private onRequest(
    now: number,
    from: MemberId,
    requestId: number,
    action: OperatorAction,
    member: MemberId | '',
    payloadBytes: Uint8Array,
    view: MemberSnapshot,
    configFile: Readonly<Record<string, unknown>>,
  ): void {
    for (const [k, v] of this.replies) if (now - v.at > REPLY_CACHE_MS) this.replies.delete(k);
    const cached = this.replies.get(`${from}/${requestId}`);
    if (cached) {
      this.send(from, cached.reply);
      return;
    }
    const origin: Origin = { kind: 'remote', from, requestId };
    let payload: Record<string, unknown>;
    try {
      payload = payloadBytes.length > 0 ? (JSON.parse(DEC.decode(payloadBytes)) as Record<string, unknown>) : {};
    } catch (e) {
      this.finish(now, origin, { ok: false, code: 'GW_BAD_REQUEST', detail: `the forwarded ${action} request does not parse: ${(e as Error).message}` });
      return;
    }
    this.execute(now, origin, action, member, payload, from, view, configFile);
  }

  private onUpdate(now: number, from: MemberId, version: number, bytes: Uint8Array, view: MemberSnapshot, configFile: Readonly<Record<string, unknown>>): void {
    const ours = view.config.cluster.configVersion;
    if (version <= ours) {
      if (version < ours) this.sendUpdate(now, from, view.config);
      else this.sendStatus(now, from, view.config);
      return;
    }
    let next: { config: MemberConfig; raw: Record<string, unknown> };
    try {
      // A newer member (rolling upgrade) may propagate live fields this release does not know: they are
      // ignored (one warning per field, and a counter), so that the change does not push this member out.
      // What an operator sends is still checked strictly (the 'config' action above).
      const settings = decodeClusterSettings(bytes);
      const { known, unknown } = splitUnknownSettings(settings);
      if (unknown.length > 0) {
        this.out.push({ type: 'count', name: UNKNOWN_CONFIG_FIELDS_COUNTER });
        const fresh = unknown.filter((f) => !this.warnedUnknown.has(f));
        for (const f of fresh) this.warnedUnknown.add(f);
        if (fresh.length > 0) {
          this.note('warn', 'config', `cluster configuration version ${version} from ${from} has field(s) this release does not know, ignored: ${fresh.join(', ')} (a newer member; upgrade this one)`, {
            from,
            version,
            ignored: fresh,
          });
        }
      }
      // Their values are kept with the configuration (HELD_FIELDS_KEY), so that this member, once upgraded
      // to a release that knows them, boots with the cluster's values rather than the defaults.
      next = withClusterSettings(view.config, unknown.length > 0 ? withHeldFields(configFile, unknown, settings) : configFile, known, version);
    } catch (e) {
      this.note('error', 'config', `refused cluster configuration version ${version} from ${from}: ${(e as Error).message}`, { from, version });
      return;
    }
    this.adopt(now, null, next, from, view, from);
  }

  private send(to: MemberId, message: ClusterMessage): void {
    this.out.push({ type: 'send', to, message });
  }

  private answer(ticket: number, answer: ActAnswer): void {
    this.out.push({ type: 'answer', ticket, answer });
  }

  private note(level: 'info' | 'warn' | 'error', kind: 'operator' | 'config', message: string, fields: Record<string, unknown>): void {
    this.out.push({ type: 'note', level, kind, message, fields });
  }
}

/**
 * leave and join are carried out only by the member they name: a request naming another member is
 * refused whatever its signature (the envelope's recipient binding already keeps a request addressed
 * to one member from reaching another; this holds even for a request built wrongly).
 */
function notAddressedTo(action: OperatorAction, member: MemberId | '', self: MemberId): string {
  return `the ${action} request is for ${member || '(no member)'}, and only that member carries it out, not ${self}`;
}

/** `raw` (a configuration's file form) with the `names` fields of `settings` added to its held fields of a newer release. */
function withHeldFields(raw: Readonly<Record<string, unknown>>, names: readonly string[], settings: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const cluster = (raw.cluster ?? {}) as Record<string, unknown>;
  const held: Record<string, unknown> = { ...heldFields(cluster) };
  // Only names the configuration schema can hold; any other is ignored (it was warned about already).
  for (const name of names) if (/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(name) && Object.keys(held).length < 64) held[name] = settings[name];
  return { ...raw, cluster: { ...cluster, [HELD_FIELDS_KEY]: held } };
}

function updateMessage(config: MemberConfig): ClusterMessage {
  const c = clusterConfiguration(config);
  return { type: 'config-update', version: c.version, clusterConfig: encodeClusterSettings(c.settings) };
}
