/**
 * The cluster protocol of one member as a pure state machine (digest section 1; Figures 6, 8A-8I, 9).
 *
 *   const m = new ClusterMember(config);
 *   const effects = m.step({ type: 'start', now });   // then for every event: m.step(event)
 *
 * step() never performs I/O, reads no clock and draws no random number: the same events give the same
 * effects. The driver (packages/daemon) carries the effects out: it sends messages, binds the cluster
 * IP, programs the data plane, asks applications, writes logs. step() is not re-entrant: the driver must
 * not call it again from inside the handling of its effects, and never concurrently.
 *
 * A role is a set of handlers (JOINING, OFFERING, MEMBER, MASTER, IDLE below), in the manner of
 * etcd-raft's stepLeader/stepFollower; shared state lives on the member.
 */
import {
  UNIT_COUNT,
  type ClientKeepalive,
  type ClusterMessage,
  type ExitCluster,
  type ExitReason,
  type JoinReply,
  type JoinRequest,
  type MasterKeepalive,
  type MemberEntry,
  type MemberId,
  type UnitLoad,
  type WorkAck,
  type WorkUnit,
} from '@gwcluster/wire';
import type { CoreConfig } from './config.js';
import type { CoreEffect, CoreEvent, LogLevel, Role } from './events.js';
import { lostBetween, updateLoss, watchdogMs, watchdogPeriods } from './adaptive.js';
import { compareMemberIds } from './ip.js';
import { distribute, planRebalance } from './balance.js';

/** What the master knows of each member (itself included). */
export interface MemberRecord {
  readonly id: MemberId;
  joinedAt: number;
  lastHeardAt: number;
  lastSeq: number;
  /** Loss estimate P of this member's client keepalives. */
  loss: number;
  /** Adaptive multiple n: declared dead after n missed keepalives. */
  watchdogPeriods: number;
  /** Reported load, or -1 before the first report. */
  load: number;
  busiestUnits: readonly UnitLoad[];
  /** Units it reported serving in its last client keepalive. */
  reportedUnits: ReadonlySet<WorkUnit>;
  reportsSeen: number;
  draining: boolean;
  /** It holds the other members' session state (state sync); only ready members are given units. */
  ready: boolean;
}

/** An outstanding WORK ASSIGN or WORK DE-ASSIGN. */
interface PendingWork {
  readonly requestId: number;
  readonly kind: 'assign' | 'deassign';
  readonly member: MemberId;
  readonly units: WorkUnit[];
  /** For a de-assign: who gets the units once the current owner let them go. */
  readonly to: MemberId | null;
  sentAt: number;
  attempts: number;
}

interface MasterState {
  epoch: number;
  keepaliveSeq: number;
  nextKeepaliveAt: number;
  nextRebalanceAt: number;
  graceUntil: number;
  /** Members of the previous term expected to re-join during the grace period. */
  expected: Set<MemberId>;
  /** True when the grace period waits for `expected` (a master change), so it may end early. */
  reclaiming: boolean;
  members: Map<MemberId, MemberRecord>;
  /** owners[unit]: the acknowledged owner, or for a unit being assigned, the member it goes to. */
  owners: (MemberId | null)[];
  /** unit -> request id of the assign/de-assign in flight for it. */
  moving: Map<WorkUnit, number>;
  pending: Map<number, PendingWork>;
  tableVersion: number;
  /** Joiners waiting for the applications' verdict. */
  approvals: Map<MemberId, { nonce: number; claims: readonly WorkUnit[]; askedAt: number }>;
}

interface MemberRoleState {
  master: MemberId;
  epoch: number;
  periodMs: number;
  lastMasterHeardAt: number;
  masterSeq: number;
  masterLoss: number;
  masterWatchdogPeriods: number;
  clientSeq: number;
  nextKeepaliveAt: number;
}

interface JoinState {
  nonce: number;
  resendAt: number;
  /** When JOINING gives up and offers to become master; Infinity while a master said "in progress". */
  offerAt: number;
  /** Set when a master answered NAK in-progress: wait for the verdict until then. */
  verdictBy: number;
}

interface OfferState {
  epoch: number;
  becomeMasterAt: number;
}

export interface MemberView {
  readonly id: MemberId;
  readonly role: 'master' | 'member';
  readonly loss: number;
  readonly watchdogPeriods: number;
  readonly load: number;
  readonly lastHeardMsAgo: number | null;
  readonly units: number;
  readonly draining: boolean;
}

export interface ClusterStatus {
  readonly self: MemberId;
  readonly role: Role;
  readonly master: MemberId | null;
  readonly epoch: number;
  readonly configVersion: number;
  readonly keepalivePeriodMs: number;
  readonly members: readonly MemberView[];
  /** owners[unit], as this member knows it (the master's own table, or the last MASTER KEEPALIVE's). */
  readonly owners: readonly (MemberId | null)[];
  readonly tableVersion: number;
  readonly ownedUnits: readonly WorkUnit[];
  /** Units with an assign or de-assign in flight (master only). */
  readonly movingUnits: number;
  readonly counters: Readonly<Record<string, number>>;
}

type Handler = {
  readonly role: Role;
  onMessage(m: ClusterMember, now: number, from: MemberId, msg: ClusterMessage): void;
  onTick(m: ClusterMember, now: number): void;
};

export class ClusterMember {
  /** Replaced (never mutated) when a propagated configuration changes its timings. */
  config: CoreConfig;
  private handler: Handler = IDLE_STOPPED;
  private effects: CoreEffect[] = [];
  configVersion: number;
  /** Highest epoch seen in any message; a new master takes the next one. */
  epochSeen = 0;
  /** Units this member serves. */
  owned = new Set<WorkUnit>();
  load = -1;
  /** State sync snapshot received (always true without state sync). */
  syncReady: boolean;
  busiestUnits: readonly UnitLoad[] = [];
  private nonceCounter = 0;
  private requestCounter = 0;
  join: JoinState | null = null;
  offer: OfferState | null = null;
  mem: MemberRoleState | null = null;
  master: MasterState | null = null;
  /** Last member list and table learned from a MASTER KEEPALIVE (or, as master, our own). */
  private view: { members: readonly MemberEntry[]; owners: readonly (MemberId | null)[]; version: number; at: number } = {
    members: [],
    owners: new Array<MemberId | null>(UNIT_COUNT).fill(null),
    version: 0,
    at: 0,
  };
  /** Members the applications were last told about (Figure 8G). */
  private announced = new Set<MemberId>();
  retryAt = 0;
  readonly counters: Record<string, number> = {};

  constructor(config: CoreConfig) {
    this.config = config;
    this.configVersion = config.configVersion;
    this.syncReady = !config.waitForSyncReady;
  }

  get role(): Role {
    return this.handler.role;
  }

  /** Feeds one event; returns the effects to carry out, in order. */
  step(event: CoreEvent): CoreEffect[] {
    this.effects = [];
    const now = event.now;
    switch (event.type) {
      case 'start':
        if (this.role === 'stopped' || this.role === 'left') this.enterJoining(now, 'start');
        break;
      case 'tick':
        this.handler.onTick(this, now);
        break;
      case 'message':
        if (event.from === this.config.self) break;
        this.noteEpoch(event.message);
        this.count(`rx.${event.message.type}`);
        this.handler.onMessage(this, now, event.from, event.message);
        break;
      case 'untrusted-join':
        if (this.master) {
          this.send(event.from, { type: 'join-reply', result: 'nak', code: 'certificate-rejected', reason: event.reason, nonce: event.nonce, epoch: this.master.epoch });
          this.log('warn', 'join refused: certificate rejected', { joiner: event.from, reason: event.reason });
        }
        break;
      case 'application-verdict':
        if (this.master) this.masterVerdict(now, event.joiner, event.accepted, event.reason);
        break;
      case 'unit-needs-owner':
        if (this.master) this.masterUnitNeedsOwner(now, event.unit);
        break;
      case 'load-report':
        this.load = event.load;
        this.busiestUnits = event.busiestUnits.slice(0, 32);
        if (this.master) {
          const me = this.master.members.get(this.config.self);
          if (me) {
            me.load = event.load;
            me.busiestUnits = this.busiestUnits;
          }
        }
        break;
      case 'config-changed':
        if (event.timings) this.config = { ...this.config, ...event.timings, self: this.config.self };
        this.configChanged(now, event.configVersion);
        break;
      case 'rebalance-now':
        if (this.master) this.masterRebalance(now);
        break;
      case 'drain':
      case 'undrain':
        if (this.master) this.masterDrain(now, event.member, event.type === 'drain');
        break;
      case 'handover-done': {
        const own = this.master?.pending.get(event.requestId);
        if (own && own.member === this.config.self) {
          this.masterWorkAck(now, this.config.self, { type: 'work-ack', epoch: this.master!.epoch, requestId: event.requestId, units: own.units });
          break;
        }
        const h = this.handovers.get(event.requestId);
        if (!h) break;
        this.handovers.delete(event.requestId);
        if (this.mem && this.mem.master === h.master && this.mem.epoch === h.epoch) {
          this.send(h.master, { type: 'work-ack', epoch: h.epoch, requestId: event.requestId, units: h.units });
        }
        break;
      }
      case 'sync-ready':
        if (!this.syncReady) {
          this.syncReady = true;
          this.log('info', 'holds every member\'s session state: ready for work');
          const me = this.master?.members.get(this.config.self);
          if (me) me.ready = true;
        }
        break;
      case 'leave':
        this.leave(now);
        break;
    }
    return this.effects;
  }

  // ----------------------------------------------------------------------------------------------
  // Shared helpers
  // ----------------------------------------------------------------------------------------------

  emit(e: CoreEffect): void {
    this.effects.push(e);
  }

  send(to: MemberId | 'broadcast', message: ClusterMessage): void {
    this.count(`tx.${message.type}`);
    this.effects.push({ type: 'send', to, message });
  }

  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    this.effects.push(fields ? { type: 'log', level, msg, fields } : { type: 'log', level, msg });
  }

  count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }

  private noteEpoch(msg: ClusterMessage): void {
    if ('epoch' in msg && msg.epoch > this.epochSeen) this.epochSeen = msg.epoch;
  }

  nextRequestId(): number {
    return ++this.requestCounter;
  }

  setRole(handler: Handler, now: number): void {
    const before = this.handler.role;
    this.handler = handler;
    const master = this.master ? this.config.self : (this.mem?.master ?? null);
    const epoch = this.master?.epoch ?? this.mem?.epoch ?? this.epochSeen;
    this.emit({ type: 'role', role: handler.role, master, epoch });
    if (before !== handler.role) this.log('info', `role ${before} -> ${handler.role}`, { master, epoch, at: now });
  }

  /** Changes this member's own unit set and tells the driver. */
  changeOwned(gained: readonly WorkUnit[], lost: readonly WorkUnit[], reason: string): void {
    const g = gained.filter((u) => !this.owned.has(u));
    const l = lost.filter((u) => this.owned.has(u));
    for (const u of g) this.owned.add(u);
    for (const u of l) this.owned.delete(u);
    if (g.length > 0 || l.length > 0) this.emit({ type: 'ownership', gained: g, lost: l, reason });
  }

  ownedList(): WorkUnit[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  /** Tells applications the difference between what they were told and `current` (Figure 8G). */
  announceMembers(current: Iterable<MemberId>): void {
    const now = new Set(current);
    const joined = [...now].filter((m) => !this.announced.has(m)).sort(compareMemberIds);
    const left = [...this.announced].filter((m) => !now.has(m)).sort(compareMemberIds);
    this.announced = now;
    if (joined.length > 0 || left.length > 0) this.emit({ type: 'membership', joined, left });
  }

  // ----------------------------------------------------------------------------------------------
  // JOINING (Figure 6, steps 1-4)
  // ----------------------------------------------------------------------------------------------

  enterJoining(now: number, why: string, offerDelayMs = this.config.joinTimeoutMs): void {
    const wasMaster = this.master !== null;
    this.master = null;
    this.mem = null;
    this.offer = null;
    if (wasMaster) this.emit({ type: 'release-cluster-ip' });
    this.join = { nonce: 0, resendAt: now, offerAt: now + offerDelayMs, verdictBy: 0 };
    this.setRole(JOINING, now);
    this.log('info', `joining (${why})`, { claims: this.owned.size });
    this.sendJoinRequest(now);
  }

  sendJoinRequest(now: number): void {
    const j = this.join!;
    j.nonce = ++this.nonceCounter;
    j.resendAt = now + this.config.joinTimeoutMs;
    const req: JoinRequest = { type: 'join-request', configVersion: this.configVersion, claimedUnits: this.ownedList(), nonce: j.nonce };
    this.send('broadcast', req);
  }

  joiningReply(now: number, from: MemberId, reply: JoinReply): void {
    const j = this.join!;
    if (reply.nonce !== j.nonce && !(reply.result === 'nak' && reply.code === 'in-progress')) {
      // A reply to an earlier attempt: only "ok" for the nonce we are waiting on counts.
      if (reply.result !== 'ok' || j.verdictBy === 0) return;
    }
    if (reply.result === 'ok') {
      const granted = new Set(reply.grantedUnits);
      const dropped = [...this.owned].filter((u) => !granted.has(u));
      this.changeOwned([], dropped, 'not granted at join');
      this.join = null;
      this.mem = {
        master: from,
        epoch: reply.epoch,
        periodMs: reply.keepalivePeriodMs,
        lastMasterHeardAt: now,
        masterSeq: 0,
        masterLoss: 0,
        masterWatchdogPeriods: 2,
        clientSeq: 0,
        nextKeepaliveAt: now,
      };
      this.setRole(MEMBER, now);
      this.log('info', 'joined cluster', { master: from, epoch: reply.epoch, granted: granted.size });
      MEMBER.onTick(this, now);
      return;
    }
    switch (reply.code) {
      case 'in-progress':
        j.verdictBy = now + this.config.approvalTimeoutMs;
        j.offerAt = Infinity;
        if (reply.nonce === j.nonce) j.resendAt = j.verdictBy;
        return;
      case 'config-mismatch':
        this.enterIdle(now, WAITING_CONFIG, `master ${from} runs another configuration version: ${reply.reason}`);
        return;
      default:
        this.retryAt = now + this.config.rejoinBackoffMs;
        this.enterIdle(now, REJECTED, `join refused by ${from} (${reply.code}): ${reply.reason}`);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // OFFERING (Figure 6, step 4)
  // ----------------------------------------------------------------------------------------------

  enterOffering(now: number): void {
    this.join = null;
    this.offer = { epoch: this.epochSeen + 1, becomeMasterAt: now + this.config.offerTimeoutMs };
    this.setRole(OFFERING, now);
    this.send('broadcast', { type: 'master-offer', epoch: this.offer.epoch, memberCount: 1 });
  }

  // ----------------------------------------------------------------------------------------------
  // MASTER
  // ----------------------------------------------------------------------------------------------

  enterMaster(now: number, previousMembers: readonly MemberId[]): void {
    const epoch = Math.max(this.epochSeen + 1, this.offer?.epoch ?? 0);
    this.epochSeen = epoch;
    this.offer = null;
    this.join = null;
    this.mem = null;
    const owners = new Array<MemberId | null>(UNIT_COUNT).fill(null);
    for (const u of this.owned) owners[u] = this.config.self;
    const expected = new Set(previousMembers.filter((m) => m !== this.config.self));
    this.master = {
      epoch,
      keepaliveSeq: 0,
      nextKeepaliveAt: now,
      nextRebalanceAt: now + this.config.rebalanceIntervalMs,
      // A new master waits before handing out units nobody claims: after a master change for the previous
      // members to re-join and claim theirs; at first boot for the members booting alongside it.
      graceUntil: now + this.config.reclaimGraceMs,
      reclaiming: expected.size > 0,
      expected,
      members: new Map(),
      owners,
      moving: new Map(),
      pending: new Map(),
      tableVersion: 1,
      approvals: new Map(),
    };
    this.previousMembers = [];
    this.master.members.set(this.config.self, this.newRecord(this.config.self, now));
    this.setRole(MASTER, now);
    this.emit({ type: 'announce-cluster-ip' });
    this.log('info', 'took office as master', { epoch, claims: this.owned.size, awaiting: [...expected] });
    MASTER.onTick(this, now);
  }

  newRecord(id: MemberId, now: number): MemberRecord {
    return {
      id,
      joinedAt: now,
      lastHeardAt: now,
      lastSeq: 0,
      loss: 0,
      watchdogPeriods: 2,
      load: -1,
      busiestUnits: [],
      reportedUnits: new Set(),
      reportsSeen: 0,
      draining: false,
      ready: id === this.config.self ? this.syncReady : !this.config.waitForSyncReady,
    };
  }

  /** Expected members of the previous term still to re-join while in grace, plus current members. */
  masterView(): MemberId[] {
    const s = this.master!;
    return [...s.members.keys(), ...s.expected];
  }

  masterJoinRequest(now: number, from: MemberId, req: JoinRequest): void {
    const s = this.master!;
    if (req.configVersion !== this.configVersion) {
      const detail = `member runs configuration version ${req.configVersion}, the cluster runs ${this.configVersion}`;
      this.send(from, { type: 'exit-cluster', reason: 'config-mismatch', detail, epoch: s.epoch, configVersion: this.configVersion });
      this.log('warn', 'join refused: configuration version mismatch', { joiner: from, theirs: req.configVersion, ours: this.configVersion });
      return;
    }
    if (!s.members.has(from) && s.members.size >= this.config.maxMembers) {
      this.send(from, { type: 'join-reply', result: 'nak', code: 'cluster-full', reason: `the cluster has its maximum of ${this.config.maxMembers} members`, nonce: req.nonce, epoch: s.epoch });
      return;
    }
    const asking = s.approvals.get(from);
    s.approvals.set(from, { nonce: req.nonce, claims: req.claimedUnits, askedAt: asking?.askedAt ?? now });
    this.send(from, { type: 'join-reply', result: 'nak', code: 'in-progress', reason: 'applications are being asked to approve the joiner', nonce: req.nonce, epoch: s.epoch });
    if (!asking) this.emit({ type: 'ask-applications', joiner: from });
  }

  masterVerdict(now: number, joiner: MemberId, accepted: boolean, reason: string): void {
    const s = this.master!;
    const asked = s.approvals.get(joiner);
    if (!asked) return;
    s.approvals.delete(joiner);
    if (!accepted) {
      this.send(joiner, { type: 'join-reply', result: 'nak', code: 'application-rejected', reason, nonce: asked.nonce, epoch: s.epoch });
      this.log('warn', 'join refused by an application', { joiner, reason });
      return;
    }
    if (s.members.has(joiner)) this.masterRemoveMember(now, joiner, 're-joined', false);
    const rec = this.newRecord(joiner, now);
    s.members.set(joiner, rec);
    s.expected.delete(joiner);
    const granted: WorkUnit[] = [];
    for (const u of asked.claims) {
      if (s.owners[u] === null && !s.moving.has(u)) {
        s.owners[u] = joiner;
        granted.push(u);
      }
    }
    if (granted.length > 0) s.tableVersion++;
    rec.reportedUnits = new Set(granted);
    this.send(joiner, { type: 'join-reply', result: 'ok', nonce: asked.nonce, epoch: s.epoch, grantedUnits: granted, keepalivePeriodMs: this.config.keepalivePeriodMs });
    this.log('info', 'member joined', { joiner, granted: granted.length, claimed: asked.claims.length, members: s.members.size });
    if (granted.length > 0) this.emit({ type: 'assignment-acked', owner: joiner, units: granted });
    this.announceMembers(this.masterView());
    if (s.reclaiming && s.expected.size === 0 && s.graceUntil > now) {
      s.graceUntil = now;
      this.log('info', 'every previous member re-joined; handing out unclaimed units now');
    }
  }

  /** Removes a member; its units return to the unassigned pool (Figure 8E). */
  masterRemoveMember(now: number, id: MemberId, why: string, announce = true): void {
    const s = this.master!;
    if (!s.members.delete(id)) return;
    let freed = 0;
    for (let u = 0; u < UNIT_COUNT; u++) {
      if (s.owners[u] === id) {
        s.owners[u] = null;
        freed++;
      }
    }
    // Cancel work in flight to or from it: units being assigned to it are free again; units it was
    // handing over go straight to their receiver.
    for (const [rid, p] of [...s.pending]) {
      if (p.member === id) {
        s.pending.delete(rid);
        for (const u of p.units) s.moving.delete(u);
        if (p.kind === 'deassign' && p.to && s.members.has(p.to)) this.masterAssign(now, p.to, p.units.filter((u) => s.owners[u] === null));
      } else if (p.kind === 'deassign' && p.to === id) {
        // The old owner keeps them when it acks nothing more; simplest: treat the ack as a plain release.
        (p as { to: MemberId | null }).to = null;
      }
    }
    s.tableVersion++;
    this.log(announce ? 'warn' : 'info', 'member removed', { member: id, why, freedUnits: freed, members: s.members.size });
    if (announce) this.announceMembers(this.masterView());
  }

  /** Sends WORK ASSIGN for units that are unassigned now; they count as the receiver's at once. */
  masterAssign(now: number, to: MemberId, units: readonly WorkUnit[]): void {
    const s = this.master!;
    const free = units.filter((u) => s.owners[u] === null && !s.moving.has(u));
    if (free.length === 0) return;
    for (const u of free) s.owners[u] = to;
    s.tableVersion++;
    if (to === this.config.self) {
      this.changeOwned(free, [], 'assigned by master');
      this.emit({ type: 'assignment-acked', owner: to, units: free });
      return;
    }
    const requestId = this.nextRequestId();
    for (const u of free) s.moving.set(u, requestId);
    s.pending.set(requestId, { requestId, kind: 'assign', member: to, units: free, to: null, sentAt: now, attempts: 1 });
    this.send(to, { type: 'work-assign', epoch: s.epoch, requestId, units: free });
  }

  /** Asks `from` to let go of units that `to` will own next (to = null: they return to the pool). */
  masterDeassign(now: number, from: MemberId, to: MemberId | null, units: readonly WorkUnit[]): void {
    const s = this.master!;
    const mine = units.filter((u) => s.owners[u] === from && !s.moving.has(u));
    if (mine.length === 0) return;
    if (from === this.config.self) {
      this.changeOwned([], mine, to ? `moved to ${to}` : 'released');
      if (this.config.handoverBeforeAck && to) {
        // The master's own units: hand their sessions to `to` first, like any owner (the units are held
        // meanwhile); masterWorkAck finishes the move when the driver answers handover-done.
        const requestId = this.nextRequestId();
        for (const u of mine) s.moving.set(u, requestId);
        s.pending.set(requestId, { requestId, kind: 'deassign', member: from, units: mine, to, sentAt: now, attempts: 1 });
        this.emit({ type: 'handover', requestId, units: mine, to });
        return;
      }
      for (const u of mine) s.owners[u] = null;
      s.tableVersion++;
      if (to) this.masterAssign(now, to, mine);
      return;
    }
    const requestId = this.nextRequestId();
    for (const u of mine) s.moving.set(u, requestId);
    s.pending.set(requestId, { requestId, kind: 'deassign', member: from, units: mine, to, sentAt: now, attempts: 1 });
    this.send(from, { type: 'work-deassign', epoch: s.epoch, requestId, units: mine, to: to ?? '' });
  }

  masterWorkAck(now: number, from: MemberId, ack: WorkAck): void {
    const s = this.master!;
    if (ack.epoch !== s.epoch) return;
    const p = s.pending.get(ack.requestId);
    if (!p || p.member !== from) return;
    s.pending.delete(ack.requestId);
    for (const u of p.units) s.moving.delete(u);
    if (p.kind === 'assign') {
      const units = p.units.filter((u) => s.owners[u] === from);
      this.emit({ type: 'assignment-acked', owner: from, units });
      return;
    }
    for (const u of p.units) if (s.owners[u] === from) s.owners[u] = null;
    s.tableVersion++;
    if (p.to && s.members.has(p.to)) this.masterAssign(now, p.to, p.units);
  }

  masterUnitNeedsOwner(now: number, unit: WorkUnit): void {
    const s = this.master!;
    if (unit < 0 || unit >= UNIT_COUNT || s.owners[unit] !== null || s.moving.has(unit)) return;
    // During the grace period the unit may still be claimed by a re-joining member; the data plane
    // keeps holding its packets and the unit is handed out when the grace period ends.
    if (now < s.graceUntil) return;
    const target = distribute([unit], this.masterLoads(false));
    for (const [m, us] of target) this.masterAssign(now, m, us);
  }

  /** Loads by the documented measure; unit counts stand in until a member reports. */
  masterLoads(includeDraining: boolean): Map<MemberId, number> {
    const s = this.master!;
    const counts = new Map<MemberId, number>();
    for (const id of s.members.keys()) counts.set(id, 0);
    for (const o of s.owners) if (o !== null && counts.has(o)) counts.set(o, counts.get(o)! + 1);
    const loads = new Map<MemberId, number>();
    for (const [id, rec] of s.members) {
      if ((rec.draining || !rec.ready) && !includeDraining) continue;
      const c = counts.get(id)!;
      loads.set(id, rec.load >= c ? rec.load : c);
    }
    return loads;
  }

  masterUnitWeight(): (u: WorkUnit) => number {
    const s = this.master!;
    const weights = new Map<WorkUnit, number>();
    const average = new Map<MemberId, number>();
    const counts = new Map<MemberId, number>();
    for (const o of s.owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
    for (const [id, rec] of s.members) {
      const c = counts.get(id) ?? 0;
      let known = 0;
      let knownCount = 0;
      for (const b of rec.busiestUnits) {
        if (s.owners[b.unit] === id) {
          weights.set(b.unit, b.weight);
          known += b.weight;
          knownCount++;
        }
      }
      const rest = c - knownCount;
      const load = rec.load >= c ? rec.load : c;
      average.set(id, rest > 0 ? Math.max(1, (load - known) / rest) : 1);
    }
    return (u) => weights.get(u) ?? average.get(s.owners[u] ?? '') ?? 1;
  }

  masterRebalance(now: number): void {
    const s = this.master!;
    s.nextRebalanceAt = now + this.config.rebalanceIntervalMs;
    if (now < s.graceUntil) return;
    const loads = this.masterLoads(true);
    const movable = new Map<MemberId, WorkUnit[]>();
    for (let u = 0; u < UNIT_COUNT; u++) {
      const o = s.owners[u];
      if (o == null || s.moving.has(u)) continue;
      let list = movable.get(o);
      if (!list) movable.set(o, (list = []));
      list.push(u);
    }
    const receivers = new Set([...s.members.values()].filter((r) => !r.draining && r.ready).map((r) => r.id));
    const receiving = [...loads].filter(([id]) => receivers.has(id)).map(([, l]) => l);
    const givers = [...loads].filter(([id]) => (movable.get(id)?.length ?? 0) > 0).map(([, l]) => l);
    if (receiving.length === 0 || givers.length === 0) return;
    const mean = [...loads.values()].reduce((a, b) => a + b, 0) / Math.max(1, loads.size);
    if (Math.max(...givers) - Math.min(...receiving) <= Math.max(1, this.config.rebalanceThreshold * mean)) return;
    const moves = planRebalance(loads, movable, this.masterUnitWeight(), this.config.maxMovesPerRebalance, receivers);
    if (moves.length === 0) return;
    const batches = new Map<string, { from: MemberId; to: MemberId; units: WorkUnit[] }>();
    for (const mv of moves) {
      const key = `${mv.from}>${mv.to}`;
      let b = batches.get(key);
      if (!b) batches.set(key, (b = { from: mv.from, to: mv.to, units: [] }));
      b.units.push(mv.unit);
    }
    for (const b of batches.values()) this.masterDeassign(now, b.from, b.to, b.units.sort((a, c) => a - c));
    this.count('rebalance.moves', moves.length);
    this.log('info', 'rebalance', { moves: moves.length, batches: [...batches.values()].map((b) => `${b.from}->${b.to}:${b.units.length}`) });
  }

  masterDrain(now: number, member: MemberId, drain: boolean): void {
    const s = this.master!;
    const rec = s.members.get(member);
    if (!rec) return;
    rec.draining = drain;
    this.log('info', drain ? 'draining member' : 'member accepts work again', { member });
    if (!drain) {
      this.masterRebalance(now);
      return;
    }
    const units: WorkUnit[] = [];
    for (let u = 0; u < UNIT_COUNT; u++) if (s.owners[u] === member && !s.moving.has(u)) units.push(u);
    const loads = this.masterLoads(false);
    for (const [to, us] of distribute(units, loads)) this.masterDeassign(now, member, to, us);
  }

  masterClientKeepalive(now: number, from: MemberId, ka: ClientKeepalive): void {
    const s = this.master!;
    const rec = s.members.get(from);
    if (!rec || ka.epoch !== s.epoch) {
      if (!s.approvals.has(from)) {
        this.send(from, { type: 'exit-cluster', reason: 'not-a-member', detail: `${from} is not a member of the cluster of master ${this.config.self} (epoch ${s.epoch})`, epoch: s.epoch, configVersion: this.configVersion });
      }
      return;
    }
    if (ka.seq <= rec.lastSeq) {
      this.count('rx.client-keepalive.stale');
      return;
    }
    if (rec.lastSeq > 0) {
      rec.loss = updateLoss(rec.loss, lostBetween(rec.lastSeq, ka.seq));
      rec.watchdogPeriods = watchdogPeriods(rec.loss, this.config.lossToleranceK, this.config.maxWatchdogPeriods);
    }
    rec.lastSeq = ka.seq;
    rec.lastHeardAt = now;
    rec.load = ka.load;
    rec.busiestUnits = ka.busiestUnits;
    rec.reportedUnits = new Set(ka.ownedUnits);
    rec.reportsSeen++;
    if (ka.syncReady !== false && !rec.ready) {
      rec.ready = true;
      this.log('info', 'member holds the cluster state now; it may be given units', { member: from });
    }
    // Reconcile: units the table gives it (acknowledged, nothing in flight) that it does not serve are
    // offered to it again (a WORK ASSIGN was lost, or it dropped them on a stale keepalive).
    const missing: WorkUnit[] = [];
    for (let u = 0; u < UNIT_COUNT; u++) if (s.owners[u] === from && !s.moving.has(u) && !rec.reportedUnits.has(u)) missing.push(u);
    if (missing.length > 0 && rec.reportsSeen > 1) {
      this.count('reconcile.reassign', missing.length);
      const requestId = this.nextRequestId();
      for (const u of missing) s.moving.set(u, requestId);
      s.pending.set(requestId, { requestId, kind: 'assign', member: from, units: missing, to: null, sentAt: now, attempts: 1 });
      this.send(from, { type: 'work-assign', epoch: s.epoch, requestId, units: missing });
    }
  }

  masterTick(now: number): void {
    const s = this.master!;
    // Watchdogs (Figure 8C): a member silent for (n + 0.5) * T is dead.
    for (const rec of [...s.members.values()]) {
      if (rec.id === this.config.self) continue;
      if (now - rec.lastHeardAt > watchdogMs(rec.watchdogPeriods, this.config.keepalivePeriodMs)) {
        this.count('watchdog.member-dead');
        this.masterRemoveMember(now, rec.id, `no keepalive for ${now - rec.lastHeardAt} ms (watchdog ${rec.watchdogPeriods} periods)`);
      }
    }
    for (const [joiner, a] of [...s.approvals]) {
      if (now - a.askedAt > this.config.applicationTimeoutMs) {
        this.masterVerdict(now, joiner, false, `applications did not answer within ${this.config.applicationTimeoutMs} ms`);
      }
    }
    // Retransmit unacknowledged work messages.
    for (const p of s.pending.values()) {
      if (p.member === this.config.self) continue; // the master's own hand-over: nothing to re-send
      if (now - p.sentAt >= this.config.workAckTimeoutMs) {
        p.sentAt = now;
        p.attempts++;
        this.count('work.retransmit');
        if (p.kind === 'assign') this.send(p.member, { type: 'work-assign', epoch: s.epoch, requestId: p.requestId, units: p.units });
        else this.send(p.member, { type: 'work-deassign', epoch: s.epoch, requestId: p.requestId, units: p.units, to: p.to ?? '' });
      }
    }
    if (now >= s.graceUntil) {
      if (s.expected.size > 0) {
        this.log('warn', 'previous members did not re-join in time', { missing: [...s.expected] });
        s.expected.clear();
        this.announceMembers(this.masterView());
      }
      // Figure 9 assigns a unit when its first packet arrives; gwcluster also hands out every unassigned
      // unit at once (docs/decisions.md), so the table is complete without waiting for traffic.
      const free: WorkUnit[] = [];
      for (let u = 0; u < UNIT_COUNT; u++) if (s.owners[u] === null && !s.moving.has(u)) free.push(u);
      if (free.length > 0) {
        const plan = distribute(free, this.masterLoads(false));
        for (const [m, us] of plan) this.masterAssign(now, m, us);
        this.log('info', 'assigned unowned units', { units: free.length, to: [...plan].map(([m, us]) => `${m}:${us.length}`) });
      }
      if (now >= s.nextRebalanceAt) this.masterRebalance(now);
    }
    if (now >= s.nextKeepaliveAt) {
      s.nextKeepaliveAt = Math.max(s.nextKeepaliveAt + this.config.keepalivePeriodMs, now + 1);
      this.sendMasterKeepalive(now);
    }
  }

  sendMasterKeepalive(now: number): void {
    const s = this.master!;
    const me = s.members.get(this.config.self)!;
    me.lastHeardAt = now;
    me.load = this.load;
    // Loads as status() reports them (unit counts until a member reports), so every member shows the same.
    const counts = new Map<MemberId, number>();
    for (const o of s.owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
    const members: MemberEntry[] = [...s.members.values()].map((r) => ({
      member: r.id,
      watchdogPeriods: r.watchdogPeriods,
      loss: r.loss,
      load: Math.max(0, r.load, counts.get(r.id) ?? 0),
      draining: r.draining,
      lastHeardMsAgo: r.id === this.config.self ? 0 : Math.max(0, now - r.lastHeardAt),
    }));
    const ka: MasterKeepalive = {
      type: 'master-keepalive',
      epoch: s.epoch,
      seq: ++s.keepaliveSeq,
      keepalivePeriodMs: this.config.keepalivePeriodMs,
      configVersion: this.configVersion,
      members,
      table: { version: s.tableVersion, owners: s.owners },
    };
    this.view = { members, owners: [...s.owners], version: s.tableVersion, at: now };
    this.send('broadcast', ka);
  }

  /** Figure 8A: another master's keepalive reached us. More members wins; equal: lower address. */
  masterTieBreak(now: number, from: MemberId, theirCount: number, viaKeepalive: boolean): void {
    const s = this.master!;
    const ours = s.members.size;
    const weWin = ours > theirCount || (ours === theirCount && compareMemberIds(this.config.self, from) < 0);
    this.count('tie-break');
    if (weWin) {
      if (viaKeepalive) {
        this.send(from, { type: 'other-master-exists', epoch: s.epoch, memberCount: ours });
        this.emit({ type: 'announce-cluster-ip' });
        this.log('warn', 'won tie-break against another master', { other: from, ours, theirs: theirCount });
      }
      return;
    }
    this.log('warn', 'lost tie-break; leaving office and re-joining', { other: from, ours, theirs: theirCount });
    for (const id of s.members.keys()) {
      if (id === this.config.self) continue;
      this.send(id, { type: 'exit-cluster', reason: 'lost-tie-break', detail: `master ${this.config.self} lost the tie-break to ${from}`, epoch: s.epoch, configVersion: this.configVersion });
    }
    this.enterJoining(now, `lost tie-break to ${from}`);
  }

  // ----------------------------------------------------------------------------------------------
  // MEMBER
  // ----------------------------------------------------------------------------------------------

  memberMasterKeepalive(now: number, from: MemberId, ka: MasterKeepalive): void {
    const st = this.mem!;
    if (from !== st.master) {
      this.count('rx.master-keepalive.other-master');
      return;
    }
    if (ka.seq <= st.masterSeq) return;
    if (st.masterSeq > 0) {
      st.masterLoss = updateLoss(st.masterLoss, lostBetween(st.masterSeq, ka.seq));
      st.masterWatchdogPeriods = watchdogPeriods(st.masterLoss, this.config.lossToleranceK, this.config.maxWatchdogPeriods);
    }
    st.masterSeq = ka.seq;
    st.lastMasterHeardAt = now;
    st.epoch = ka.epoch;
    st.periodMs = ka.keepalivePeriodMs;
    if (ka.configVersion !== this.configVersion) {
      this.enterIdle(now, WAITING_CONFIG, `master ${from} runs configuration version ${ka.configVersion}, this member ${this.configVersion}`);
      return;
    }
    this.view = { members: ka.members, owners: ka.table.owners, version: ka.table.version, at: now };
    this.announceMembers(ka.members.map((e) => e.member));
    // Units the master's table gives to someone else are not ours (a de-assign we missed, or a
    // conflicting claim after a partition healed).
    const notOurs = [...this.owned].filter((u) => ka.table.owners[u] !== this.config.self);
    if (notOurs.length > 0) {
      this.count('reconcile.dropped', notOurs.length);
      this.changeOwned([], notOurs, 'the master table gives them to another member');
    }
  }

  memberTick(now: number): void {
    const st = this.mem!;
    const limit = watchdogMs(st.masterWatchdogPeriods, st.periodMs);
    if (now - st.lastMasterHeardAt > limit) {
      this.count('watchdog.master-dead');
      const previous = this.view.members.map((e) => e.member).filter((m) => m !== st.master);
      this.log('warn', 'master watchdog expired', { master: st.master, silentMs: now - st.lastMasterHeardAt, watchdogPeriods: st.masterWatchdogPeriods });
      this.previousMembers = previous;
      this.enterJoining(now, `master ${st.master} silent for ${now - st.lastMasterHeardAt} ms`);
      return;
    }
    if (now >= st.nextKeepaliveAt) {
      st.nextKeepaliveAt = Math.max(st.nextKeepaliveAt + st.periodMs, now + 1);
      const busiest = this.busiestUnits.filter((b) => this.owned.has(b.unit));
      this.send(st.master, {
        type: 'client-keepalive',
        epoch: st.epoch,
        seq: ++st.clientSeq,
        load: Math.max(this.load, 0),
        ownedUnits: this.ownedList(),
        busiestUnits: busiest,
        syncReady: this.syncReady,
      });
    }
  }

  /** De-assigns whose WORK ACK waits for the session hand-over (request id -> what to acknowledge). */
  readonly handovers = new Map<number, { epoch: number; master: MemberId; units: readonly WorkUnit[] }>();

  /** Members known from the last master's keepalives, for the grace period of a new master. */
  previousMembers: MemberId[] = [];

  memberWork(now: number, from: MemberId, msg: ClusterMessage): void {
    const st = this.mem!;
    if (from !== st.master || !('epoch' in msg) || msg.epoch !== st.epoch) {
      this.count('rx.work.stale');
      return;
    }
    if (msg.type === 'work-assign') {
      this.changeOwned(msg.units, [], 'assigned by master');
      this.send(from, { type: 'work-ack', epoch: st.epoch, requestId: msg.requestId, units: msg.units });
    } else if (msg.type === 'work-deassign') {
      if (this.handovers.has(msg.requestId)) return; // a retransmission while the hand-over runs
      const mine = msg.units.filter((u) => this.owned.has(u));
      this.changeOwned([], msg.units, msg.to ? `moved to ${msg.to}` : 'released');
      if (this.config.handoverBeforeAck && mine.length > 0) {
        this.handovers.set(msg.requestId, { epoch: st.epoch, master: from, units: msg.units });
        this.emit({ type: 'handover', requestId: msg.requestId, units: mine, to: msg.to });
        return;
      }
      this.send(from, { type: 'work-ack', epoch: st.epoch, requestId: msg.requestId, units: msg.units });
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Exit, configuration, leave
  // ----------------------------------------------------------------------------------------------

  onExitCluster(now: number, from: MemberId, ex: ExitCluster): void {
    const fromMyMaster = this.mem?.master === from;
    const joiningReply = this.role === 'joining' && ex.reason === 'config-mismatch';
    if (!fromMyMaster && !joiningReply && this.role !== 'master') {
      this.count('rx.exit-cluster.ignored');
      return;
    }
    if (this.role === 'master' && ex.reason !== 'config-mismatch' && ex.reason !== 'lost-tie-break') return;
    this.handleExit(now, from, ex.reason, ex.detail, ex.configVersion);
  }

  handleExit(now: number, from: MemberId, reason: ExitReason, detail: string, theirVersion?: number): void {
    if (reason === 'config-mismatch' && theirVersion === this.configVersion && this.role !== 'master') {
      // We adopted the sender's version since it refused us (the EXIT crossed a configuration update).
      this.enterJoining(now, `told to exit by ${from} for a configuration version this member now runs (${theirVersion})`);
    } else if (reason === 'config-mismatch') {
      this.enterIdle(now, WAITING_CONFIG, `told to exit by ${from}: ${detail}`);
    } else if (reason === 'removed') {
      this.changeOwned([], this.ownedList(), 'removed from the cluster');
      this.enterIdle(now, LEFT, `removed by ${from}: ${detail}`);
    } else {
      if (this.mem) this.previousMembers = this.view.members.map((e) => e.member);
      this.enterJoining(now, `told to exit by ${from} (${reason}): ${detail}`);
    }
  }

  enterIdle(now: number, handler: Handler, why: string): void {
    const wasMaster = this.master !== null;
    this.master = null;
    this.mem = null;
    this.join = null;
    this.offer = null;
    if (wasMaster) this.emit({ type: 'release-cluster-ip' });
    this.setRole(handler, now);
    this.log('warn', `out of the cluster: ${why}`);
  }

  configChanged(now: number, version: number): void {
    if (version === this.configVersion) return;
    this.log('info', 'configuration version changed', { from: this.configVersion, to: version });
    this.configVersion = version;
    if (this.role === 'waiting-config') this.enterJoining(now, 'configuration changed');
  }

  leave(now: number): void {
    if (this.master) {
      for (const id of this.master.members.keys()) {
        if (id !== this.config.self) {
          this.send(id, { type: 'exit-cluster', reason: 'leaving', detail: `master ${this.config.self} leaves the cluster`, epoch: this.master.epoch, configVersion: this.configVersion });
        }
      }
    } else if (this.mem) {
      this.send(this.mem.master, { type: 'exit-cluster', reason: 'leaving', detail: `${this.config.self} leaves the cluster`, epoch: this.mem.epoch, configVersion: this.configVersion });
    }
    this.changeOwned([], this.ownedList(), 'left the cluster');
    this.enterIdle(now, LEFT, 'left the cluster');
  }

  /**
   * What the data plane needs after each step: this member's units, the table as known here, and (master)
   * the units whose packets must be held: unassigned, or being assigned and not yet acknowledged
   * (Figure 9). With `holdHandover` (method 1, where every packet passes the master) a unit is also held
   * while its current owner hands it over, so nothing reaches the old owner after it let go.
   */
  dataPlaneView(holdHandover = false): {
    master: boolean;
    owned: ReadonlySet<WorkUnit>;
    owners: readonly (MemberId | null)[];
    holding: ReadonlySet<WorkUnit>;
    /** The members as known here (this one included); empty while not in a cluster. */
    members: readonly MemberId[];
  } {
    const s = this.master;
    if (!s) return { master: false, owned: this.owned, owners: this.view.owners, holding: new Set(), members: this.mem ? this.view.members.map((e) => e.member) : [] };
    const holding = new Set<WorkUnit>();
    for (let u = 0; u < UNIT_COUNT; u++) if (s.owners[u] === null) holding.add(u);
    for (const p of s.pending.values()) {
      // The master's own hand-over is held in every method: nobody serves those units meanwhile.
      if (p.kind === 'assign' || holdHandover || p.member === this.config.self) for (const u of p.units) holding.add(u);
    }
    return { master: true, owned: this.owned, owners: s.owners, holding, members: [...s.members.keys()] };
  }

  // ----------------------------------------------------------------------------------------------
  // Status
  // ----------------------------------------------------------------------------------------------

  status(now: number): ClusterStatus {
    const s = this.master;
    let members: MemberView[];
    let owners: readonly (MemberId | null)[];
    if (s) {
      owners = s.owners;
      const counts = new Map<MemberId, number>();
      for (const o of s.owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
      members = [...s.members.values()].map((r) => ({
        id: r.id,
        role: r.id === this.config.self ? 'master' : 'member',
        loss: r.loss,
        watchdogPeriods: r.watchdogPeriods,
        load: r.id === this.config.self ? Math.max(this.load, counts.get(r.id) ?? 0) : Math.max(r.load, counts.get(r.id) ?? 0),
        lastHeardMsAgo: r.id === this.config.self ? 0 : now - r.lastHeardAt,
        units: counts.get(r.id) ?? 0,
        draining: r.draining,
      }));
    } else {
      owners = this.view.owners;
      const counts = new Map<MemberId, number>();
      for (const o of owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
      const master = this.mem?.master ?? null;
      // The master's figures, aged by the time since its keepalive; for the master itself, our own watch.
      const age = now - this.view.at;
      members = this.view.members.map((e) => ({
        id: e.member,
        role: e.member === master ? 'master' : 'member',
        loss: e.loss,
        watchdogPeriods: e.watchdogPeriods,
        load: e.load,
        lastHeardMsAgo: e.member === master && this.mem ? now - this.mem.lastMasterHeardAt : this.mem ? (e.lastHeardMsAgo ?? 0) + age : null,
        units: counts.get(e.member) ?? 0,
        draining: e.draining ?? false,
      }));
    }
    return {
      self: this.config.self,
      role: this.role,
      master: s ? this.config.self : (this.mem?.master ?? null),
      epoch: s?.epoch ?? this.mem?.epoch ?? this.epochSeen,
      configVersion: this.configVersion,
      keepalivePeriodMs: this.mem?.periodMs ?? this.config.keepalivePeriodMs,
      members,
      owners: [...owners],
      tableVersion: s?.tableVersion ?? this.view.version,
      ownedUnits: this.ownedList(),
      movingUnits: s?.moving.size ?? 0,
      counters: { ...this.counters },
    };
  }
}

// ------------------------------------------------------------------------------------------------
// Role handlers
// ------------------------------------------------------------------------------------------------

const JOINING: Handler = {
  role: 'joining',
  onMessage(m, now, from, msg) {
    switch (msg.type) {
      case 'join-reply':
        m.joiningReply(now, from, msg);
        break;
      case 'other-master-exists':
        // Someone is master: re-send JOIN now.
        m.sendJoinRequest(now);
        break;
      case 'master-offer':
        // Another joiner offers; a lower address will become master, so wait for it instead of offering.
        if (compareMemberIds(from, m.config.self) < 0 && m.join) {
          m.join.offerAt = Math.max(m.join.offerAt, now + m.config.offerTimeoutMs + 2 * m.config.joinTimeoutMs);
        }
        break;
      case 'exit-cluster':
        m.onExitCluster(now, from, msg);
        break;
      default:
        break;
    }
  },
  onTick(m, now) {
    const j = m.join!;
    if (j.verdictBy > 0 && now >= j.verdictBy) {
      // The master went quiet while asking its applications: start over.
      j.verdictBy = 0;
      j.offerAt = now + m.config.joinTimeoutMs;
      m.sendJoinRequest(now);
      return;
    }
    if (now >= j.offerAt) {
      m.enterOffering(now);
      return;
    }
    if (now >= j.resendAt) m.sendJoinRequest(now);
  },
};

const OFFERING: Handler = {
  role: 'offering',
  onMessage(m, now, from, msg) {
    switch (msg.type) {
      case 'other-master-exists':
        m.enterJoining(now, `${from} says it is master`);
        break;
      case 'master-keepalive':
        m.enterJoining(now, `${from} sends master keepalives`);
        break;
      case 'master-offer':
        if (compareMemberIds(from, m.config.self) < 0) {
          m.enterJoining(now, `${from} (lower address) also offers`, m.config.offerTimeoutMs + 2 * m.config.joinTimeoutMs);
        }
        break;
      case 'join-reply':
        if (msg.result === 'ok') {
          // A master answered a late JOIN: take it.
          m.join = { nonce: msg.nonce, resendAt: Infinity, offerAt: Infinity, verdictBy: 0 };
          m.joiningReply(now, from, msg);
        }
        break;
      default:
        break;
    }
  },
  onTick(m, now) {
    if (now >= m.offer!.becomeMasterAt) m.enterMaster(now, m.previousMembers);
  },
};

const MEMBER: Handler = {
  role: 'member',
  onMessage(m, now, from, msg) {
    switch (msg.type) {
      case 'master-keepalive':
        m.memberMasterKeepalive(now, from, msg);
        break;
      case 'work-assign':
      case 'work-deassign':
        m.memberWork(now, from, msg);
        break;
      case 'exit-cluster':
        m.onExitCluster(now, from, msg);
        break;
      default:
        break;
    }
  },
  onTick(m, now) {
    m.memberTick(now);
  },
};

const MASTER: Handler = {
  role: 'master',
  onMessage(m, now, from, msg) {
    const s = m.master!;
    switch (msg.type) {
      case 'join-request':
        m.masterJoinRequest(now, from, msg);
        break;
      case 'master-offer':
        m.send(from, { type: 'other-master-exists', epoch: s.epoch, memberCount: s.members.size });
        break;
      case 'client-keepalive':
        m.masterClientKeepalive(now, from, msg);
        break;
      case 'work-ack':
        m.masterWorkAck(now, from, msg);
        break;
      case 'master-keepalive':
        m.masterTieBreak(now, from, msg.members.length, true);
        break;
      case 'other-master-exists':
        m.masterTieBreak(now, from, msg.memberCount, false);
        break;
      case 'exit-cluster':
        if (msg.reason === 'leaving' && s.members.has(from)) {
          m.masterRemoveMember(now, from, 'left the cluster');
        } else {
          m.onExitCluster(now, from, msg);
        }
        break;
      default:
        break;
    }
  },
  onTick(m, now) {
    m.masterTick(now);
  },
};

function idle(role: Role): Handler {
  return {
    role,
    onMessage() {},
    onTick(m, now) {
      if (role === 'rejected' && now >= m.retryAt) m.enterJoining(now, 'retry after refusal');
    },
  };
}

const IDLE_STOPPED = idle('stopped');
const WAITING_CONFIG = idle('waiting-config');
const REJECTED = idle('rejected');
const LEFT = idle('left');
