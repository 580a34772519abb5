/**
 * The state every role shares and the helpers every role uses: effects, counters, owned units, the table
 * learned from the master, and the moves between roles. Internal to the core: outside code reads a
 * member through its view (../view.ts) and acts through ClusterMember.step().
 *
 * A role's own state is one variant of RoleState, held in MemberCore.role; a role's step function
 * (roles/*.ts) receives it already narrowed. Moves between roles go through MemberCore.become, which
 * ClusterMember installs, so role files import only this file and never each other.
 */
import { UNIT_COUNT, type ClusterMessage, type ExitCluster, type ExitReason, type JoinReply, type MemberEntry, type MemberId, type UnitLoad, type WorkUnit } from '@gwcluster/wire';
import type { CoreConfig } from '../config.js';
import type { CoreEffect, CoreEvent, HeldAddress, LogLevel, PoolMove, Role } from '../events.js';
import type { AddressTakeover } from '@gwcluster/wire';
import { compareMemberIds } from '@gwcluster/wire';

/** What the master knows of each member (itself included). */
export interface MemberRecord {
  readonly id: MemberId;
  joinedAt: number;
  /** Admitted by this master on a JOIN REQUEST (not adopted by a successor): CoreConfig.newMemberGraceMs applies. */
  admittedByJoin: boolean;
  /** Silent past its watchdog but spared by the new-member grace: it keeps its membership, gets no work. */
  silent: boolean;
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
  /** The software release it announced (join request, client keepalives), or undefined. */
  softwareVersion: string | undefined;
  /**
   * unitAssignment 'first-packet': units given to it (unit -> when) that its reported load may not
   * include yet; each counts 1 in its projected load for FRESH_ASSIGNMENT_MS (master-work.ts).
   */
  readonly fresh: Map<WorkUnit, number>;
  /** When fast liveness reported it silent (a peer-silent event not yet acted on), or undefined. */
  silentReportedAt?: number;
}

/** An outstanding WORK ASSIGN or WORK DE-ASSIGN. */
export interface PendingWork {
  readonly requestId: number;
  readonly kind: 'assign' | 'deassign';
  readonly member: MemberId;
  readonly units: WorkUnit[];
  /** For a de-assign: who gets the units once the current owner let them go. */
  to: MemberId | null;
  sentAt: number;
  attempts: number;
}

/** JOINING (Figure 6, steps 1-4). */
export interface JoiningState {
  readonly kind: 'joining';
  nonce: number;
  resendAt: number;
  /** When JOINING gives up and offers to become master; Infinity while a master said "in progress". */
  offerAt: number;
  /** Set when a master answered NAK in-progress: wait for the verdict until then. */
  verdictBy: number;
  /** The master whose keepalive was last heard while joining (no offer while it is alive). */
  masterHeard?: MemberId;
}

/** OFFERING (Figure 6, step 4). */
export interface OfferingState {
  readonly kind: 'offering';
  readonly epoch: number;
  readonly becomeMasterAt: number;
}

/** MEMBER (client of a master). */
export interface MemberRoleState {
  readonly kind: 'member';
  master: MemberId;
  epoch: number;
  /** The successor the master named in its last keepalive (takes office when the master dies). */
  successor?: MemberId;
  /**
   * Set when this member's watchdog for the master expired and it is not the successor: since then it
   * waits for the successor's first keepalive (sending no client keepalive to the dead master); if none
   * comes within the shortest watchdog, it falls back to the election (JOINING).
   */
  awaitingSuccessorSince?: number;
  /** When fast liveness reported the master silent (not yet acted on), or undefined. */
  masterSilentReportedAt?: number;
  periodMs: number;
  lastMasterHeardAt: number;
  masterSeq: number;
  masterLoss: number;
  masterWatchdogPeriods: number;
  clientSeq: number;
  nextKeepaliveAt: number;
}

/** MASTER. */
export interface MasterState {
  readonly kind: 'master';
  readonly epoch: number;
  keepaliveSeq: number;
  nextKeepaliveAt: number;
  nextRebalanceAt: number;
  graceUntil: number;
  /** Members of the previous term expected to re-join during the grace period. */
  readonly expected: Set<MemberId>;
  /** True when the grace period waits for `expected` (a master change), so it may end early. */
  readonly reclaiming: boolean;
  readonly members: Map<MemberId, MemberRecord>;
  /** owners[unit]: the acknowledged owner, or for a unit being assigned, the member it goes to. */
  readonly owners: (MemberId | null)[];
  /** unit -> request id of the assign/de-assign in flight for it. */
  readonly moving: Map<WorkUnit, number>;
  readonly pending: Map<number, PendingWork>;
  tableVersion: number;
  /** Joiners waiting for the applications' verdict. */
  readonly approvals: Map<MemberId, { nonce: number; claims: readonly WorkUnit[]; askedAt: number; softwareVersion?: string }>;
  /**
   * Units to hand out at once even during the grace period: after an election, those the previous
   * master's table gave to members nobody waits for (the dead master).
   */
  readonly orphans: Set<WorkUnit>;
  /**
   * Members the previous master's table showed draining: a drain is cluster state (MASTER KEEPALIVE
   * carries it), so it holds for them when they re-join this term, until an operator undrains them.
   */
  readonly carriedDrains: ReadonlySet<MemberId>;
  /** unitAssignment 'first-packet': units whose packets asked for an owner while none could be given (grace period, no ready member). */
  readonly wanted: Set<WorkUnit>;
  /** The address pool as placed (address-pool.ts): the pool's addresses and each one's owner. */
  pool: { addresses: readonly string[]; owners: (MemberId | null)[] };
  /** The operator asked for a rebalance: spread the pool once even with addressPoolFailback 'on-command'. */
  poolBalanceAsked?: boolean;
  /** The operator asked that this member get its share of the pool back once (gwctl failback), whatever addressPoolFailback says. */
  poolFailbackAsked?: MemberId;
  /** Pool addresses taken from an owner that died or was drained: address -> that owner (failback prefers them). */
  readonly poolPrevious: Map<string, MemberId>;
  /** Own addresses of dead members: member -> the member answering for it. */
  readonly takeovers: Map<MemberId, MemberId>;
}

/** Out of the cluster: not started, waiting for another configuration, refused, or left. */
export type IdleState =
  | { readonly kind: 'stopped' }
  | { readonly kind: 'waiting-config' }
  /** Refused at join; tries again at retryAt. */
  | { readonly kind: 'rejected'; readonly retryAt: number }
  | { readonly kind: 'left' };

export type RoleState = JoiningState | OfferingState | MemberRoleState | MasterState | IdleState;

/** A JOIN REPLY that admits this member. */
export type JoinAccepted = Extract<JoinReply, { result: 'ok' }>;

/** The moves between roles; each emits the role effect and does the role's first step. */
export interface RoleTransitions {
  joining(c: MemberCore, now: number, why: string, offerDelayMs?: number): void;
  offering(c: MemberCore, now: number): void;
  /**
   * Takes office. `succession`: this member is the successor the dead master named; it adopts the table
   * and members it learned from that master (no join round, no grace period).
   */
  master(c: MemberCore, now: number, previousMembers: readonly MemberId[], succession?: { readonly deadMaster: MemberId; readonly epoch: number }): void;
  member(c: MemberCore, now: number, from: MemberId, reply: JoinAccepted): void;
  idle(c: MemberCore, now: number, state: IdleState, why: string): void;
}

/** Last member list and table learned from a MASTER KEEPALIVE (or, as master, its own). */
export interface LearnedTable {
  readonly members: readonly MemberEntry[];
  readonly owners: readonly (MemberId | null)[];
  readonly version: number;
  readonly at: number;
  /** Owners of the address pool's addresses, in the configuration's order (absent: not placed). */
  readonly poolOwners?: readonly (MemberId | null)[];
  readonly takeovers?: readonly AddressTakeover[];
}

export class MemberCore {
  /** Replaced (never mutated) when a propagated configuration changes its timings. */
  config: CoreConfig;
  role: RoleState = { kind: 'stopped' };
  configVersion: number;
  /** Highest epoch seen in any message; a new master takes the next one. */
  epochSeen = 0;
  /** Units this member serves. */
  readonly owned = new Set<WorkUnit>();
  load = -1;
  /** State sync snapshot received (always true without state sync). */
  syncReady: boolean;
  busiestUnits: readonly UnitLoad[] = [];
  table: LearnedTable = { members: [], owners: new Array<MemberId | null>(UNIT_COUNT).fill(null), version: 0, at: 0 };
  /** Addresses this member answers for besides its own (address-pool.ts), by address. */
  readonly held = new Map<string, HeldAddress>();
  /** The owner of each pool address in the last placement this member applied (address -> owner). */
  readonly poolOwnersSeen = new Map<string, MemberId | null>();
  /** De-assigns whose WORK ACK waits for the session hand-over (request id -> what to acknowledge). */
  readonly handovers = new Map<number, { epoch: number; master: MemberId; units: readonly WorkUnit[] }>();
  /** Members known from the last master's keepalives, for the grace period of a new master. */
  previousMembers: MemberId[] = [];
  readonly counters: Record<string, number> = {};
  /**
   * Peers whose fast-liveness heartbeats are heard (peer-alive, until a peer-silent): their process and
   * data plane live, so a late keepalive alone (a busy event loop) is not a death until
   * VOUCHED_WATCHDOG_FACTOR x the watchdog (adaptive.ts).
   */
  readonly vouched = new Set<MemberId>();
  /** The previous tick's time, and whether this tick came on time (see judgesSilence). */
  lastTickAt: number | undefined = undefined;
  tickLate = false;

  /**
   * Whether silence may be judged on this tick: not when the tick itself is late by more than a keepalive
   * period (this member's own event loop stalled; the peers' keepalives may wait unread in its socket).
   * The watchdogs then judge on the next tick, after the waiting messages are read.
   */
  judgesSilence(): boolean {
    return !this.tickLate;
  }
  private effects: CoreEffect[] = [];
  private nonceCounter = 0;
  private requestCounter = 0;
  /** Members the applications were last told about (Figure 8G). */
  private announced = new Set<MemberId>();

  constructor(
    config: CoreConfig,
    readonly become: RoleTransitions,
  ) {
    this.config = config;
    this.configVersion = config.configVersion;
    this.syncReady = !config.waitForSyncReady;
  }

  get self(): MemberId {
    return this.config.self;
  }

  /** Starts a step: the effects collected so far are discarded. */
  beginStep(): void {
    this.effects = [];
  }

  takeEffects(): CoreEffect[] {
    return this.effects;
  }

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

  noteEpoch(msg: ClusterMessage): void {
    if ('epoch' in msg && msg.epoch > this.epochSeen) this.epochSeen = msg.epoch;
  }

  nextRequestId(): number {
    return ++this.requestCounter;
  }

  nextNonce(): number {
    return ++this.nonceCounter;
  }

  /** The master as known here: this member when master, its master when member, else null. */
  knownMaster(): MemberId | null {
    const r = this.role;
    return r.kind === 'master' ? this.config.self : r.kind === 'member' ? r.master : null;
  }

  /** The epoch of the current term as known here. */
  knownEpoch(): number {
    const r = this.role;
    return r.kind === 'master' || r.kind === 'member' ? r.epoch : this.epochSeen;
  }

  /** Installs the next role and tells the driver. */
  setRole(next: RoleState, now: number): void {
    const before: Role = this.role.kind;
    this.role = next;
    const master = this.knownMaster();
    const epoch = this.knownEpoch();
    this.emit({ type: 'role', role: next.kind, master, epoch });
    if (before !== next.kind) this.log('info', `role ${before} -> ${next.kind}`, { master, epoch, at: now });
  }

  /** Changes this member's own unit set and tells the driver. */
  changeOwned(gained: readonly WorkUnit[], lost: readonly WorkUnit[], reason: string): void {
    const g = gained.filter((u) => !this.owned.has(u));
    const l = lost.filter((u) => this.owned.has(u));
    for (const u of g) this.owned.add(u);
    for (const u of l) this.owned.delete(u);
    if (g.length > 0 || l.length > 0) this.emit({ type: 'ownership', gained: g, lost: l, reason });
  }

  /** Makes this member answer for exactly `wanted` (address -> what), emitting the difference. */
  setHeld(wanted: ReadonlyMap<string, HeldAddress>, reason: string, moves: readonly PoolMove[] = []): void {
    const lost: HeldAddress[] = [];
    const gained: HeldAddress[] = [];
    for (const [a, h] of this.held) {
      const w = wanted.get(a);
      if (!w || w.kind !== h.kind || w.interface !== h.interface) lost.push(h);
    }
    for (const [a, w] of wanted) {
      const h = this.held.get(a);
      if (!h || w.kind !== h.kind || w.interface !== h.interface) gained.push(w);
    }
    if (lost.length === 0 && gained.length === 0) return;
    for (const h of lost) this.held.delete(h.address);
    for (const w of gained) this.held.set(w.address, w);
    const mine = moves.filter((m) => gained.some((g) => g.address === m.address) || lost.some((l) => l.address === m.address));
    this.emit({ type: 'addresses', gained, lost, reason, ...(mine.length > 0 ? { moves: mine } : {}) });
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
}

// ------------------------------------------------------------------------------------------------
// Handling shared by the roles
// ------------------------------------------------------------------------------------------------

/**
 * Leaves the role for an idle one; a master releases the cluster IP first. An idle member is out of the
 * cluster and owns no unit: the master hands its units to others (e.g. a member waiting for a configuration
 * version it could not adopt must not keep serving units the master gave away).
 */
export function enterIdle(c: MemberCore, now: number, state: IdleState, why: string): void {
  if (c.role.kind === 'master') c.emit({ type: 'release-cluster-ip' });
  c.changeOwned([], c.ownedList(), `out of the cluster: ${why}`);
  c.setHeld(new Map(), `out of the cluster: ${why}`);
  c.poolOwnersSeen.clear();
  c.setRole(state, now);
  c.log('warn', `out of the cluster: ${why}`);
}

/** An EXIT CLUSTER reached this member: it counts from its master, a config refusal while joining, or as master. */
export function onExitCluster(c: MemberCore, now: number, from: MemberId, ex: ExitCluster): void {
  const kind = c.role.kind;
  const fromMyMaster = c.role.kind === 'member' && c.role.master === from;
  const joiningReply = kind === 'joining' && ex.reason === 'config-mismatch';
  if (!fromMyMaster && !joiningReply && kind !== 'master') {
    c.count('rx.exit-cluster.ignored');
    return;
  }
  if (kind === 'master' && ex.reason !== 'config-mismatch' && ex.reason !== 'lost-tie-break') return;
  handleExit(c, now, from, ex.reason, ex.detail, ex.configVersion);
}

function handleExit(c: MemberCore, now: number, from: MemberId, reason: ExitReason, detail: string, theirVersion?: number): void {
  if (reason === 'config-mismatch' && theirVersion === c.configVersion && c.role.kind !== 'master') {
    // We adopted the sender's version since it refused us (the EXIT crossed a configuration update).
    c.become.joining(c, now, `told to exit by ${from} for a configuration version this member now runs (${theirVersion})`);
  } else if (reason === 'config-mismatch') {
    c.become.idle(c, now, { kind: 'waiting-config' }, `told to exit by ${from}: ${detail}`);
  } else if (reason === 'removed') {
    c.changeOwned([], c.ownedList(), 'removed from the cluster');
    c.become.idle(c, now, { kind: 'left' }, `removed by ${from}: ${detail}`);
  } else {
    if (c.role.kind === 'member') c.previousMembers = c.table.members.map((e) => e.member);
    c.become.joining(c, now, `told to exit by ${from} (${reason}): ${detail}`);
  }
}

/** Stops serving and goes idle; the role has sent its EXIT CLUSTER messages already. */
export function leaveCluster(c: MemberCore, now: number): void {
  c.changeOwned([], c.ownedList(), 'left the cluster');
  c.become.idle(c, now, { kind: 'left' }, 'left the cluster');
}

/** Adopts another configuration version; true when it differs from the one running. */
export function adoptConfig(c: MemberCore, e: Extract<CoreEvent, { type: 'config-changed' }>): boolean {
  if (e.timings) c.config = { ...c.config, ...e.timings, self: c.config.self };
  if (e.configVersion === c.configVersion) return false;
  c.log('info', 'configuration version changed', { from: c.configVersion, to: e.configVersion });
  c.configVersion = e.configVersion;
  return true;
}

/** A member's hand-over is done: acknowledge the de-assign to the master that asked, if still ours. */
export function finishHandover(c: MemberCore, requestId: number): void {
  const h = c.handovers.get(requestId);
  if (!h) return;
  c.handovers.delete(requestId);
  const r = c.role;
  if (r.kind === 'member' && r.master === h.master && r.epoch === h.epoch) {
    c.send(h.master, { type: 'work-ack', epoch: h.epoch, requestId, units: h.units });
  }
}

/**
 * The events every role handles alike. Role step functions handle what is theirs and pass the rest
 * here; events no role claims are ignored.
 */
export function stepAnyRole(c: MemberCore, e: CoreEvent): void {
  switch (e.type) {
    case 'load-report':
      c.load = e.load;
      c.busiestUnits = e.busiestUnits.slice(0, 32);
      break;
    case 'config-changed':
      adoptConfig(c, e);
      break;
    case 'sync-ready':
      if (!c.syncReady) {
        c.syncReady = true;
        c.log('info', "holds every member's session state: ready for work");
      }
      break;
    case 'handover-done':
      finishHandover(c, e.requestId);
      break;
    case 'leave':
      leaveCluster(c, e.now);
      break;
    case 'shutdown':
      c.counters['shutdown'] = 1;
      break;
    default:
      break;
  }
}
