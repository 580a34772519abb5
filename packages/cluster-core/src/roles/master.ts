/**
 * MASTER: admits joiners after the applications approve (Figure 8F), sends MASTER KEEPALIVE with the
 * member list and table every period, watches members (Figure 8C), hands out and moves units
 * (master-work.ts), and settles a meeting with another master by the tie-break (Figure 8A).
 */
import { UNIT_COUNT, type ClientKeepalive, type JoinRequest, type MasterKeepalive, type MemberEntry, type MemberId, type WorkUnit } from '@gwcluster/wire';
import { LIVENESS_KEEPALIVES_LATE, lostBetween, peerWatchdogMs, updateLoss, watchdogPeriods } from '../adaptive.js';
import type { CoreEvent } from '../events.js';
import { compareMemberIds } from '@gwcluster/wire';
import { assignUnits, assignUnowned, continueDrains, drain, loads, masterView, newRecord, rebalance, removeMember, unitNeedsOwner, workAck } from './master-work.js';
import { leaveCluster, onExitCluster, stepAnyRole, type MasterState, type MemberCore, type MemberRecord } from './shared.js';
import { giveBack, holdAddresses, placeAddresses, poolFields, takeOver } from './address-pool.js';

/**
 * Takes office with the next epoch; the units this member serves stay its own. After an election the
 * other members re-join and claim theirs; as the named successor of a dead master (`succession`) it
 * adopts that master's members and table at once (docs/protocol.md, "Succession").
 */
export function enterMaster(c: MemberCore, now: number, previousMembers: readonly MemberId[], succession?: { readonly deadMaster: MemberId; readonly epoch: number }): void {
  const epoch = Math.max(c.epochSeen + 1, c.role.kind === 'offering' ? c.role.epoch : 0, succession ? succession.epoch + 1 : 0);
  c.epochSeen = epoch;
  const owners = new Array<MemberId | null>(UNIT_COUNT).fill(null);
  for (const u of c.owned) owners[u] = c.self;
  const expected = new Set(succession ? [] : previousMembers.filter((m) => m !== c.self));
  // Only after a master change (this member served the previous master, whose table it holds).
  const carriedDrains = new Set(previousMembers.length > 0 || succession ? c.table.members.filter((e) => e.draining).map((e) => e.member) : []);
  // After an election: units the previous table gave to a member nobody waits for (the dead master) go
  // out at once; the others wait for their owners' claims during the grace period.
  const orphans = new Set<WorkUnit>();
  if (!succession && previousMembers.length > 0) {
    c.table.owners.forEach((o, u) => {
      if (o !== null && o !== c.self && !expected.has(o) && owners[u] === null) orphans.add(u);
    });
  }
  const s: MasterState = {
    kind: 'master',
    epoch,
    keepaliveSeq: 0,
    nextKeepaliveAt: now,
    nextRebalanceAt: now + c.config.rebalanceIntervalMs,
    // A new master waits before handing out units nobody claims: after an election for the previous
    // members to re-join and claim theirs; at first boot for the members booting alongside it. A
    // successor adopts the table instead and waits for nobody.
    graceUntil: succession ? now : now + c.config.reclaimGraceMs,
    reclaiming: expected.size > 0,
    expected,
    orphans,
    members: new Map(),
    owners,
    moving: new Map(),
    pending: new Map(),
    tableVersion: 1,
    approvals: new Map(),
    carriedDrains,
    wanted: new Set(),
    // The pool as the previous master placed it (members that do not come back lose theirs at the first
    // placement, after the grace period); its takeovers go on.
    pool: learnedPool(c),
    poolPrevious: new Map(),
    takeovers: new Map((c.table.takeovers ?? []).filter((t) => t.member !== c.self).map((t) => [t.member, t.holder])),
  };
  c.previousMembers = [];
  s.members.set(c.self, newRecord(c, c.self, now));
  if (carriedDrains.has(c.self)) s.members.get(c.self)!.draining = true;
  if (succession) {
    adoptTable(c, s, now, succession.deadMaster);
    takeOver(c, s, succession.deadMaster);
  }
  c.setRole(s, now);
  c.emit({ type: 'announce-cluster-ip' });
  c.log('info', succession ? 'took office as the named successor' : 'took office as master', {
    epoch,
    claims: c.owned.size,
    ...(succession ? { deadMaster: succession.deadMaster, members: s.members.size } : { awaiting: [...expected] }),
    ...(carriedDrains.size > 0 ? { draining: [...carriedDrains] } : {}),
  });
  if (succession) {
    // The members learn of the new term from this keepalive before any WORK message of it arrives.
    s.nextKeepaliveAt = now + c.config.keepalivePeriodMs;
    sendMasterKeepalive(c, s, now);
    c.announceMembers(masterView(s));
    // A drain the dead master had started goes on: the drained members' units move on from this table.
    continueDrains(c, s, now);
  }
  tick(c, s, now);
}

/** The pool owners of the last keepalive, by the addresses of this member's configured pool. */
function learnedPool(c: MemberCore): MasterState['pool'] {
  const addresses = c.config.addressPool.map((p) => p.address);
  const owners = c.table.poolOwners;
  return { addresses, owners: addresses.map((_, i) => (owners && owners.length === addresses.length ? (owners[i] ?? null) : null)) };
}

/**
 * The successor's take-over: every member of the dead master's last table but the dead master stays a
 * member (it keeps its units and only switches master when this member's keepalive arrives); the dead
 * master's units are free and go out on the first tick.
 */
function adoptTable(c: MemberCore, s: MasterState, now: number, deadMaster: MemberId): void {
  const kept = new Set<MemberId>([c.self]);
  for (const e of c.table.members) {
    if (e.member === deadMaster || e.member === c.self) continue;
    const rec = newRecord(c, e.member, now);
    rec.load = e.load;
    rec.draining = e.draining === true;
    s.members.set(e.member, rec);
    kept.add(e.member);
  }
  c.table.owners.forEach((o, u) => {
    if (o !== null && o !== c.self && kept.has(o)) {
      s.owners[u] = o;
      const rec = s.members.get(o)!;
      // It served units, so it held the sessions; it is ready for more (a member that owns nothing
      // becomes ready with its first keepalive, as after a join).
      rec.ready = true;
      (rec.reportedUnits as Set<WorkUnit>).add(u);
    }
  });
}

export function stepMaster(c: MemberCore, s: MasterState, e: CoreEvent): void {
  const now = e.now;
  switch (e.type) {
    case 'tick':
      tick(c, s, now);
      return;
    case 'message': {
      const { from, message: msg } = e;
      switch (msg.type) {
        case 'join-request':
          joinRequest(c, s, now, from, msg);
          return;
        case 'master-offer':
          c.send(from, { type: 'other-master-exists', epoch: s.epoch, memberCount: liveCount(s) });
          return;
        case 'client-keepalive':
          clientKeepalive(c, s, now, from, msg);
          return;
        case 'work-ack':
          workAck(c, s, now, from, msg);
          return;
        case 'master-keepalive':
          tieBreak(c, s, now, from, msg.members.length, true);
          return;
        case 'other-master-exists':
          tieBreak(c, s, now, from, msg.memberCount, false);
          return;
        case 'exit-cluster':
          if (msg.reason === 'leaving' && s.members.has(from)) removeMember(c, s, now, from, 'left the cluster');
          else onExitCluster(c, now, from, msg);
          return;
        default:
          return;
      }
    }
    case 'peer-silent': {
      const rec = s.members.get(e.peer);
      if (!rec || e.peer === c.self) {
        c.count('liveness.ignored');
        return;
      }
      rec.silentReportedAt = now;
      tick(c, s, now);
      return;
    }
    case 'peer-alive': {
      const rec = s.members.get(e.peer);
      if (rec) delete rec.silentReportedAt;
      return;
    }
    case 'untrusted-join':
      c.send(e.from, { type: 'join-reply', result: 'nak', code: 'certificate-rejected', reason: e.reason, nonce: e.nonce, epoch: s.epoch });
      c.log('warn', 'join refused: certificate rejected', { joiner: e.from, reason: e.reason });
      return;
    case 'application-verdict':
      verdict(c, s, now, e.joiner, e.accepted, e.reason);
      return;
    case 'unit-needs-owner':
      unitNeedsOwner(c, s, now, e.unit);
      return;
    case 'load-report': {
      stepAnyRole(c, e);
      const me = s.members.get(c.self);
      if (me) {
        me.load = e.load;
        me.busiestUnits = c.busiestUnits;
      }
      return;
    }
    case 'rebalance-now':
      rebalance(c, s, now);
      s.poolBalanceAsked = true;
      return;
    case 'failback':
      s.poolFailbackAsked = e.member;
      c.log('info', 'failback asked: the member gets its share of the address pool back', { member: e.member });
      // Placed now (after the grace period; during it the next placement takes the request), so the
      // operator's answer shows the move and a keepalive announces it at once.
      if (now >= s.graceUntil && placeAddresses(c, s)) s.nextKeepaliveAt = now;
      return;
    case 'drain':
    case 'undrain':
      drain(c, s, now, e.member, e.type === 'drain');
      return;
    case 'handover-done': {
      // The master's own hand-over (deassign from itself) finishes like a member's WORK ACK.
      const own = s.pending.get(e.requestId);
      if (own && own.member === c.self) workAck(c, s, now, c.self, { type: 'work-ack', epoch: s.epoch, requestId: e.requestId, units: own.units });
      else stepAnyRole(c, e);
      return;
    }
    case 'sync-ready': {
      const becomesReady = !c.syncReady;
      stepAnyRole(c, e);
      const me = s.members.get(c.self);
      if (becomesReady && me) me.ready = true;
      return;
    }
    case 'leave':
      for (const id of s.members.keys()) {
        if (id !== c.self) {
          c.send(id, { type: 'exit-cluster', reason: 'leaving', detail: e.detail ?? `master ${c.self} leaves the cluster`, epoch: s.epoch, configVersion: c.configVersion });
        }
      }
      leaveCluster(c, now);
      return;
    default:
      stepAnyRole(c, e);
  }
}

function joinRequest(c: MemberCore, s: MasterState, now: number, from: MemberId, req: JoinRequest): void {
  if (req.configVersion !== c.configVersion) {
    const detail = `member runs configuration version ${req.configVersion}, the cluster runs ${c.configVersion}`;
    c.send(from, { type: 'exit-cluster', reason: 'config-mismatch', detail, epoch: s.epoch, configVersion: c.configVersion });
    c.log('warn', 'join refused: configuration version mismatch', { joiner: from, theirs: req.configVersion, ours: c.configVersion });
    return;
  }
  if (!s.members.has(from) && s.members.size >= c.config.maxMembers) {
    c.send(from, { type: 'join-reply', result: 'nak', code: 'cluster-full', reason: `the cluster has its maximum of ${c.config.maxMembers} members`, nonce: req.nonce, epoch: s.epoch });
    return;
  }
  const rec = s.members.get(from);
  if (rec && rec.admittedByJoin && rec.lastSeq === 0 && !s.approvals.has(from)) {
    // Admitted by this master and not one CLIENT KEEPALIVE since: a JOIN REQUEST that crossed our JOIN
    // REPLY (the joiner re-sends every joinTimeoutMs). Answer it again instead of admitting it a second
    // time (which freed and re-granted its units and restarted its grace).
    const granted = req.claimedUnits.filter((u) => s.owners[u] === from);
    c.count('join.duplicate');
    c.send(from, { type: 'join-reply', result: 'ok', nonce: req.nonce, epoch: s.epoch, grantedUnits: granted, keepalivePeriodMs: c.config.keepalivePeriodMs });
    return;
  }
  // The member is back: it answers for its own address again; whoever held it lets go first (before
  // this master's reply, which must reach the member and not the holder).
  if (giveBack(c, s, from)) {
    holdAddresses(c, s.pool.owners, poolFields(s).takeovers, `${from} is back`);
    s.nextKeepaliveAt = now;
  }
  const asking = s.approvals.get(from);
  s.approvals.set(from, { nonce: req.nonce, claims: req.claimedUnits, askedAt: asking?.askedAt ?? now, ...(req.softwareVersion !== undefined ? { softwareVersion: req.softwareVersion } : {}) });
  c.send(from, { type: 'join-reply', result: 'nak', code: 'in-progress', reason: 'applications are being asked to approve the joiner', nonce: req.nonce, epoch: s.epoch });
  if (!asking) c.emit({ type: 'ask-applications', joiner: from });
}

function verdict(c: MemberCore, s: MasterState, now: number, joiner: MemberId, accepted: boolean, reason: string): void {
  const asked = s.approvals.get(joiner);
  if (!asked) return;
  s.approvals.delete(joiner);
  if (!accepted) {
    c.send(joiner, { type: 'join-reply', result: 'nak', code: 'application-rejected', reason, nonce: asked.nonce, epoch: s.epoch });
    c.log('warn', 'join refused by an application', { joiner, reason });
    return;
  }
  if (s.members.has(joiner)) removeMember(c, s, now, joiner, 're-joined', false);
  const rec = newRecord(c, joiner, now);
  rec.admittedByJoin = true;
  rec.softwareVersion = asked.softwareVersion;
  s.members.set(joiner, rec);
  // A member from outside this term (a master that lost a tie-break after a partition healed, or one
  // that booted) may have answered for the cluster IP, or its neighbours may have heard another master:
  // announce again, so that the result does not depend on which keepalives crossed.
  if (!s.expected.delete(joiner)) c.emit({ type: 'announce-cluster-ip' });
  const granted: WorkUnit[] = [];
  for (const u of asked.claims) {
    if (s.owners[u] === null && !s.moving.has(u)) {
      s.owners[u] = joiner;
      granted.push(u);
    }
  }
  if (granted.length > 0) s.tableVersion++;
  rec.reportedUnits = new Set(granted);
  if (s.carriedDrains.has(joiner)) rec.draining = true;
  c.send(joiner, { type: 'join-reply', result: 'ok', nonce: asked.nonce, epoch: s.epoch, grantedUnits: granted, keepalivePeriodMs: c.config.keepalivePeriodMs });
  c.log('info', 'member joined', { joiner, granted: granted.length, claimed: asked.claims.length, members: s.members.size });
  if (granted.length > 0) c.emit({ type: 'assignment-acked', owner: joiner, units: granted });
  c.announceMembers(masterView(s));
  if (s.reclaiming && s.expected.size === 0 && s.graceUntil > now) {
    s.graceUntil = now;
    c.log('info', 'every previous member re-joined; handing out unclaimed units now');
  }
  // A carried drain goes on as soon as someone can take the units (the joiner, or the joiner's claims).
  continueDrains(c, s, now);
}

function clientKeepalive(c: MemberCore, s: MasterState, now: number, from: MemberId, ka: ClientKeepalive): void {
  const rec = s.members.get(from);
  if (!rec || ka.epoch !== s.epoch) {
    // A member declared dead that was not: it answers for its own address again.
    if (!rec && giveBack(c, s, from)) {
      holdAddresses(c, s.pool.owners, poolFields(s).takeovers, `${from} is alive`);
      s.nextKeepaliveAt = now;
    }
    if (!s.approvals.has(from)) {
      c.send(from, { type: 'exit-cluster', reason: 'not-a-member', detail: `${from} is not a member of the cluster of master ${c.self} (epoch ${s.epoch})`, epoch: s.epoch, configVersion: c.configVersion });
    }
    return;
  }
  if (ka.seq <= rec.lastSeq) {
    c.count('rx.client-keepalive.stale');
    return;
  }
  if (rec.lastSeq > 0) {
    rec.loss = updateLoss(rec.loss, lostBetween(rec.lastSeq, ka.seq));
    rec.watchdogPeriods = watchdogPeriods(rec.loss, c.config.lossToleranceK, c.config.maxWatchdogPeriods, c.config.minWatchdogPeriods);
  }
  rec.lastSeq = ka.seq;
  rec.lastHeardAt = now;
  delete rec.silentReportedAt;
  rec.silent = false;
  rec.load = ka.load;
  rec.busiestUnits = ka.busiestUnits;
  if (ka.softwareVersion !== undefined) rec.softwareVersion = ka.softwareVersion;
  rec.reportedUnits = new Set(ka.ownedUnits);
  rec.reportsSeen++;
  if (ka.syncReady !== false && !rec.ready) {
    rec.ready = true;
    c.log('info', 'member holds the cluster state now; it may be given units', { member: from });
  }
  // Reconcile: units the table gives it (acknowledged, nothing in flight) that it does not serve are
  // offered to it again (a WORK ASSIGN was lost, or it dropped them on a stale keepalive).
  const missing: WorkUnit[] = [];
  for (let u = 0; u < UNIT_COUNT; u++) if (s.owners[u] === from && !s.moving.has(u) && !rec.reportedUnits.has(u)) missing.push(u);
  if (missing.length > 0 && rec.reportsSeen > 1) {
    c.count('reconcile.reassign', missing.length);
    const requestId = c.nextRequestId();
    for (const u of missing) s.moving.set(u, requestId);
    s.pending.set(requestId, { requestId, kind: 'assign', member: from, units: missing, to: null, sentAt: now, attempts: 1 });
    c.send(from, { type: 'work-assign', epoch: s.epoch, requestId, units: missing });
  }
}

/**
 * A member admitted less than newMemberGraceMs ago that holds nothing: its silence is a just-started
 * process stalling, not a death that anything waits on (CoreConfig.newMemberGraceMs).
 */
function newMemberGrace(c: MemberCore, s: MasterState, rec: MemberRecord, now: number): boolean {
  if (!rec.admittedByJoin || now - rec.joinedAt >= c.config.newMemberGraceMs) return false;
  const id = rec.id;
  if (s.owners.includes(id) || s.pool.owners.includes(id)) return false;
  for (const holder of s.takeovers.values()) if (holder === id) return false;
  return true;
}

/** Members that count in a tie-break: every member but those silent in their new-member grace. */
function liveCount(s: MasterState): number {
  let n = 0;
  for (const rec of s.members.values()) if (!rec.silent) n++;
  return n;
}

function tick(c: MemberCore, s: MasterState, now: number): void {
  // Watchdogs (Figure 8C): a member silent for (n + 0.5) * T is dead (judged on a tick that came on time).
  for (const rec of [...s.members.values()]) {
    if (rec.id === c.self || !c.judgesSilence()) continue;
    if (now - rec.lastHeardAt > peerWatchdogMs(rec.watchdogPeriods, c.config.keepalivePeriodMs, c.vouched.has(rec.id))) {
      if (newMemberGrace(c, s, rec, now)) {
        if (!rec.silent) {
          c.count('watchdog.new-member-grace');
          c.log('info', 'new member silent past its watchdog: set aside, not removed (new-member grace)', { member: rec.id, silentMs: Math.round(now - rec.lastHeardAt), graceLeftMs: Math.round(rec.joinedAt + c.config.newMemberGraceMs - now) });
        }
        rec.silent = true;
        continue;
      }
      c.count(c.vouched.has(rec.id) ? 'watchdog.member-dead-vouched' : 'watchdog.member-dead');
      removeMember(c, s, now, rec.id, `no keepalive for ${now - rec.lastHeardAt} ms (watchdog ${rec.watchdogPeriods} periods)`);
      takeOver(c, s, rec.id);
    } else if (rec.silentReportedAt !== undefined && now - rec.lastHeardAt > LIVENESS_KEEPALIVES_LATE * c.config.keepalivePeriodMs) {
      // Fast liveness reported it silent and its keepalives are late too: dead now, not at the watchdog.
      c.count('liveness.member-dead');
      removeMember(c, s, now, rec.id, `no heartbeat (fast liveness) and no keepalive for ${now - rec.lastHeardAt} ms`);
      takeOver(c, s, rec.id);
    }
  }
  for (const [joiner, a] of [...s.approvals]) {
    if (now - a.askedAt > c.config.applicationTimeoutMs) {
      verdict(c, s, now, joiner, false, `applications did not answer within ${c.config.applicationTimeoutMs} ms`);
    }
  }
  // Retransmit unacknowledged work messages.
  for (const p of s.pending.values()) {
    if (p.member === c.self) continue; // the master's own hand-over: nothing to re-send
    if (now - p.sentAt >= c.config.workAckTimeoutMs) {
      p.sentAt = now;
      p.attempts++;
      c.count('work.retransmit');
      if (p.kind === 'assign') c.send(p.member, { type: 'work-assign', epoch: s.epoch, requestId: p.requestId, units: p.units });
      else c.send(p.member, { type: 'work-deassign', epoch: s.epoch, requestId: p.requestId, units: p.units, to: p.to ?? '' });
    }
  }
  if (now < s.graceUntil && s.orphans.size > 0) {
    const free = [...s.orphans].filter((u) => s.owners[u] === null && !s.moving.has(u));
    s.orphans.clear();
    assignUnits(c, s, now, free, 'assigned the units of the dead master');
  }
  if (now >= s.graceUntil) {
    if (s.expected.size > 0) {
      c.log('warn', 'previous members did not re-join in time', { missing: [...s.expected] });
      s.expected.clear();
      c.announceMembers(masterView(s));
    }
    assignUnowned(c, s, now);
    if (now >= s.nextRebalanceAt) rebalance(c, s, now);
    // A moved address is announced by a keepalive now, not at the next period.
    if (placeAddresses(c, s)) s.nextKeepaliveAt = now;
  }
  if (now >= s.nextKeepaliveAt) {
    s.nextKeepaliveAt = Math.max(s.nextKeepaliveAt + c.config.keepalivePeriodMs, now + 1);
    sendMasterKeepalive(c, s, now);
  }
}

function sendMasterKeepalive(c: MemberCore, s: MasterState, now: number): void {
  const me = s.members.get(c.self)!;
  me.lastHeardAt = now;
  me.load = c.load;
  // Loads as the status view reports them (unit counts until a member reports), so every member shows the same.
  const counts = new Map<MemberId, number>();
  for (const o of s.owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
  const members: MemberEntry[] = [...s.members.values()].map((r) => ({
    member: r.id,
    watchdogPeriods: r.watchdogPeriods,
    loss: r.loss,
    load: Math.max(0, r.load, counts.get(r.id) ?? 0),
    draining: r.draining,
    lastHeardMsAgo: r.id === c.self ? 0 : Math.max(0, now - r.lastHeardAt),
    ...(r.softwareVersion !== undefined ? { softwareVersion: r.softwareVersion } : {}),
  }));
  const successor = successorOf(c, s);
  const pool = poolFields(s);
  const ka: MasterKeepalive = {
    type: 'master-keepalive',
    epoch: s.epoch,
    seq: ++s.keepaliveSeq,
    keepalivePeriodMs: c.config.keepalivePeriodMs,
    configVersion: c.configVersion,
    members,
    table: { version: s.tableVersion, owners: s.owners },
    ...(successor ? { successor } : {}),
    ...pool,
  };
  c.table = { members, owners: [...s.owners], version: s.tableVersion, at: now, ...pool };
  // Placed after the grace period; until then this master keeps what it held, as the members do.
  if (pool.poolOwners || s.takeovers.size > 0 || c.held.size > 0) holdAddresses(c, pool.poolOwners, pool.takeovers, 'master placement');
  c.send('broadcast', ka);
}

/**
 * The member that takes office when this master dies, by the tie-breaker's rule: the lowest address
 * among the other members that hold the cluster's sessions (sync-ready), or among all others when none does.
 */
export function successorOf(c: MemberCore, s: MasterState): MemberId | undefined {
  const others = [...s.members.values()].filter((r) => r.id !== c.self);
  const ready = others.filter((r) => r.ready);
  const pool = (ready.length > 0 ? ready : others).map((r) => r.id).sort(compareMemberIds);
  return pool[0];
}

/**
 * Figure 8A: another master's keepalive or OTHER MASTER EXISTS reached us. More members wins; equal: lower
 * address. The winner announces the cluster IP whichever message told it (the other master answered ARP
 * until now); a loser that learnt of the winner from its keepalive tells the winner, which may not have
 * heard any of the loser's keepalives.
 */
function tieBreak(c: MemberCore, s: MasterState, now: number, from: MemberId, theirCount: number, viaKeepalive: boolean): void {
  const ours = liveCount(s);
  const weWin = ours > theirCount || (ours === theirCount && compareMemberIds(c.self, from) < 0);
  c.count('tie-break');
  if (weWin) {
    if (viaKeepalive) c.send(from, { type: 'other-master-exists', epoch: s.epoch, memberCount: ours });
    c.emit({ type: 'announce-cluster-ip' });
    c.log('warn', 'won tie-break against another master', { other: from, ours, theirs: theirCount });
    return;
  }
  c.log('warn', 'lost tie-break; leaving office and re-joining', { other: from, ours, theirs: theirCount });
  if (viaKeepalive) c.send(from, { type: 'other-master-exists', epoch: s.epoch, memberCount: ours });
  for (const [id, rec] of s.members) {
    // A member silent in its new-member grace has gone elsewhere or stalled; it re-joins on its own.
    if (id === c.self || rec.silent) continue;
    c.send(id, { type: 'exit-cluster', reason: 'lost-tie-break', detail: `master ${c.self} lost the tie-break to ${from}`, epoch: s.epoch, configVersion: c.configVersion });
  }
  c.become.joining(c, now, `lost tie-break to ${from}`);
}
