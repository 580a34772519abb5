/**
 * The master's work table: assigning units (Figure 9; at once or on the first packet, per
 * `unitAssignment`), moving them with WORK DE-ASSIGN / WORK ASSIGN and
 * their acknowledgements, removing members (Figure 8E), rebalancing by load (Figure 8D) and draining.
 */
import { UNIT_COUNT, type MemberId, type WorkAck, type WorkUnit } from '@gwcluster/wire';
import { distribute, leastLoaded, placeByWeight, planRebalance } from '../balance.js';
import type { MasterState, MemberCore, MemberRecord } from './shared.js';

export function newRecord(c: MemberCore, id: MemberId, now: number): MemberRecord {
  return {
    id,
    joinedAt: now,
    admittedByJoin: false,
    silent: false,
    lastHeardAt: now,
    lastSeq: 0,
    loss: 0,
    watchdogPeriods: c.config.minWatchdogPeriods,
    load: -1,
    busiestUnits: [],
    reportedUnits: new Set(),
    reportsSeen: 0,
    draining: false,
    ready: id === c.self ? c.syncReady : !c.config.waitForSyncReady,
    softwareVersion: id === c.self ? c.config.softwareVersion : undefined,
    fresh: new Map(),
  };
}

/**
 * unitAssignment 'first-packet': a unit just given to a member counts 1 in its projected load for this
 * long, until the member's reported load includes it (the data plane measures every second and reports
 * with the next CLIENT KEEPALIVE). Without it a burst of new flows would all go to the member that was
 * least loaded at its last report.
 */
export const FRESH_ASSIGNMENT_MS = 1500;

function firstPacket(c: MemberCore): boolean {
  return c.config.unitAssignment === 'first-packet';
}

/** Expected members of the previous term still to re-join while in grace, plus current members. */
export function masterView(s: MasterState): MemberId[] {
  return [...s.members.keys(), ...s.expected];
}

/** Removes a member; its units return to the unassigned pool (Figure 8E). */
export function removeMember(c: MemberCore, s: MasterState, now: number, id: MemberId, why: string, announce = true): void {
  if (!s.members.has(id)) return;
  // First-packet assignment: the dead member's units are placed again at once, heaviest first by its
  // last reported weights, so its flows' next packets find an owner (as with 'at-once'); the other
  // units return to the pool and are assigned on their first packet.
  const weightOf = firstPacket(c) ? unitWeight(s) : null;
  s.members.delete(id);
  const freedUnits: WorkUnit[] = [];
  for (let u = 0; u < UNIT_COUNT; u++) {
    if (s.owners[u] === id) {
      s.owners[u] = null;
      freedUnits.push(u);
    }
  }
  const freed = freedUnits.length;
  // Cancel work in flight to or from it: units being assigned to it are free again; units it was
  // handing over go straight to their receiver.
  for (const [rid, p] of [...s.pending]) {
    if (p.member === id) {
      s.pending.delete(rid);
      for (const u of p.units) s.moving.delete(u);
      if (p.kind === 'deassign' && p.to && s.members.has(p.to)) assign(c, s, now, p.to, p.units.filter((u) => s.owners[u] === null));
    } else if (p.kind === 'deassign' && p.to === id) {
      // The old owner keeps them when it acks nothing more; simplest: treat the ack as a plain release.
      p.to = null;
    }
  }
  s.tableVersion++;
  if (weightOf && now >= s.graceUntil) {
    const free = freedUnits.filter((u) => s.owners[u] === null && !s.moving.has(u));
    for (const [to, us] of placeByWeight(free, weightOf, loads(s, false, now))) assign(c, s, now, to, us);
  }
  c.log(announce ? 'warn' : 'info', 'member removed', { member: id, why, freedUnits: freed, members: s.members.size });
  if (announce) c.announceMembers(masterView(s));
}

/** Sends WORK ASSIGN for units that are unassigned now; they count as the receiver's at once. */
export function assign(c: MemberCore, s: MasterState, now: number, to: MemberId, units: readonly WorkUnit[]): void {
  const free = units.filter((u) => s.owners[u] === null && !s.moving.has(u));
  if (free.length === 0) return;
  for (const u of free) s.owners[u] = to;
  s.tableVersion++;
  if (firstPacket(c)) {
    const rec = s.members.get(to);
    for (const u of free) {
      rec?.fresh.set(u, now);
      s.wanted.delete(u);
    }
  }
  if (to === c.self) {
    c.changeOwned(free, [], 'assigned by master');
    c.emit({ type: 'assignment-acked', owner: to, units: free });
    return;
  }
  const requestId = c.nextRequestId();
  for (const u of free) s.moving.set(u, requestId);
  s.pending.set(requestId, { requestId, kind: 'assign', member: to, units: free, to: null, sentAt: now, attempts: 1 });
  c.send(to, { type: 'work-assign', epoch: s.epoch, requestId, units: free });
}

/** Asks `from` to let go of units that `to` will own next (to = null: they return to the pool). */
export function deassign(c: MemberCore, s: MasterState, now: number, from: MemberId, to: MemberId | null, units: readonly WorkUnit[]): void {
  const mine = units.filter((u) => s.owners[u] === from && !s.moving.has(u));
  if (mine.length === 0) return;
  if (from === c.self) {
    c.changeOwned([], mine, to ? `moved to ${to}` : 'released');
    if (c.config.handoverBeforeAck && to) {
      // The master's own units: hand their sessions to `to` first, like any owner (the units are held
      // meanwhile); workAck finishes the move when the driver answers handover-done.
      const requestId = c.nextRequestId();
      for (const u of mine) s.moving.set(u, requestId);
      s.pending.set(requestId, { requestId, kind: 'deassign', member: from, units: mine, to, sentAt: now, attempts: 1 });
      c.emit({ type: 'handover', requestId, units: mine, to });
      return;
    }
    for (const u of mine) s.owners[u] = null;
    s.tableVersion++;
    if (to) assign(c, s, now, to, mine);
    return;
  }
  const requestId = c.nextRequestId();
  for (const u of mine) s.moving.set(u, requestId);
  s.pending.set(requestId, { requestId, kind: 'deassign', member: from, units: mine, to, sentAt: now, attempts: 1 });
  c.send(from, { type: 'work-deassign', epoch: s.epoch, requestId, units: mine, to: to ?? '' });
}

export function workAck(c: MemberCore, s: MasterState, now: number, from: MemberId, ack: WorkAck): void {
  if (ack.epoch !== s.epoch) return;
  const p = s.pending.get(ack.requestId);
  if (!p || p.member !== from) return;
  s.pending.delete(ack.requestId);
  for (const u of p.units) s.moving.delete(u);
  if (p.kind === 'assign') {
    const units = p.units.filter((u) => s.owners[u] === from);
    c.emit({ type: 'assignment-acked', owner: from, units });
    return;
  }
  for (const u of p.units) if (s.owners[u] === from) s.owners[u] = null;
  s.tableVersion++;
  if (p.to && s.members.has(p.to)) assign(c, s, now, p.to, p.units);
}

export function unitNeedsOwner(c: MemberCore, s: MasterState, now: number, unit: WorkUnit): void {
  if (unit < 0 || unit >= UNIT_COUNT || s.owners[unit] !== null || s.moving.has(unit)) return;
  // During the grace period the unit may still be claimed by a re-joining member; the data plane
  // keeps holding its packets and the unit is handed out when the grace period ends.
  if (now < s.graceUntil) {
    if (firstPacket(c)) s.wanted.add(unit);
    return;
  }
  if (firstPacket(c)) {
    // Figure 9: the least loaded member (projected: reported load plus units given since) gets it.
    const to = leastLoaded(loads(s, false, now));
    if (to === undefined) s.wanted.add(unit);
    else assign(c, s, now, to, [unit]);
    return;
  }
  const target = distribute([unit], loads(s, false));
  for (const [m, us] of target) assign(c, s, now, m, us);
}

/**
 * Every master tick after the grace period. 'at-once': every unassigned unit goes out now, in
 * contiguous shares by load (docs/decisions.md), so the table is complete without waiting for traffic.
 * 'first-packet': only units whose packets asked for an owner when none could be given.
 */
export function assignUnowned(c: MemberCore, s: MasterState, now: number): void {
  if (firstPacket(c)) {
    for (const u of [...s.wanted]) {
      if (s.owners[u] !== null || s.moving.has(u)) {
        s.wanted.delete(u);
        continue;
      }
      const to = leastLoaded(loads(s, false, now));
      if (to === undefined) return;
      assign(c, s, now, to, [u]);
    }
    return;
  }
  const free: WorkUnit[] = [];
  for (let u = 0; u < UNIT_COUNT; u++) if (s.owners[u] === null && !s.moving.has(u)) free.push(u);
  assignUnits(c, s, now, free, 'assigned unowned units');
}

/** Hands `units` out now, distributed by load over the members (contiguous shares). */
export function assignUnits(c: MemberCore, s: MasterState, now: number, units: readonly WorkUnit[], what: string): void {
  if (units.length === 0) return;
  const plan = distribute([...units], loads(s, false));
  for (const [m, us] of plan) assign(c, s, now, m, us);
  c.log('info', what, { units: units.length, to: [...plan].map(([m, us]) => `${m}:${us.length}`) });
}

/**
 * Loads by the documented measure; unit counts stand in until a member reports. With first-packet
 * assignment and `now`, each unit given within FRESH_ASSIGNMENT_MS adds 1 (projected load).
 */
export function loads(s: MasterState, includeDraining: boolean, now?: number): Map<MemberId, number> {
  const counts = new Map<MemberId, number>();
  for (const id of s.members.keys()) counts.set(id, 0);
  for (const o of s.owners) if (o !== null && counts.has(o)) counts.set(o, counts.get(o)! + 1);
  const result = new Map<MemberId, number>();
  for (const [id, rec] of s.members) {
    if ((rec.draining || !rec.ready || rec.silent) && !includeDraining) continue;
    const c = counts.get(id)!;
    let fresh = 0;
    if (now !== undefined) {
      for (const [u, at] of rec.fresh) {
        if (now - at > FRESH_ASSIGNMENT_MS || s.owners[u] !== id) rec.fresh.delete(u);
        else fresh++;
      }
    }
    result.set(id, (rec.load >= c ? rec.load : c) + fresh);
  }
  return result;
}

function unitWeight(s: MasterState): (u: WorkUnit) => number {
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

export function rebalance(c: MemberCore, s: MasterState, now: number): void {
  s.nextRebalanceAt = now + c.config.rebalanceIntervalMs;
  if (now < s.graceUntil) return;
  const current = loads(s, true, firstPacket(c) ? now : undefined);
  const movable = new Map<MemberId, WorkUnit[]>();
  for (let u = 0; u < UNIT_COUNT; u++) {
    const o = s.owners[u];
    if (o == null || s.moving.has(u)) continue;
    let list = movable.get(o);
    if (!list) movable.set(o, (list = []));
    list.push(u);
  }
  // While a member admitted less than newMemberGraceMs ago may take work, the rebalance waits until its
  // grace ends: a just-started process stalls, and work moved to it then would wait for it (master.ts,
  // newMemberGrace); a rebalance planned without it would move units that must move again.
  let warmUntil = -Infinity;
  for (const r of s.members.values()) {
    if (r.admittedByJoin && !r.draining && now - r.joinedAt < c.config.newMemberGraceMs) warmUntil = Math.max(warmUntil, r.joinedAt + c.config.newMemberGraceMs);
  }
  if (warmUntil > now) {
    s.nextRebalanceAt = Math.min(s.nextRebalanceAt, warmUntil);
    return;
  }
  const receivers = new Set([...s.members.values()].filter((r) => !r.draining && r.ready).map((r) => r.id));
  const receiving = [...current].filter(([id]) => receivers.has(id)).map(([, l]) => l);
  const givers = [...current].filter(([id]) => (movable.get(id)?.length ?? 0) > 0).map(([, l]) => l);
  if (receiving.length === 0 || givers.length === 0) return;
  const mean = [...current.values()].reduce((a, b) => a + b, 0) / Math.max(1, current.size);
  if (Math.max(...givers) - Math.min(...receiving) <= Math.max(1, c.config.rebalanceThreshold * mean)) return;
  const moves = planRebalance(current, movable, unitWeight(s), c.config.maxMovesPerRebalance, receivers);
  if (moves.length === 0) return;
  const batches = new Map<string, { from: MemberId; to: MemberId; units: WorkUnit[] }>();
  for (const mv of moves) {
    const key = `${mv.from}>${mv.to}`;
    let b = batches.get(key);
    if (!b) batches.set(key, (b = { from: mv.from, to: mv.to, units: [] }));
    b.units.push(mv.unit);
  }
  for (const b of batches.values()) deassign(c, s, now, b.from, b.to, b.units.sort((a, x) => a - x));
  c.count('rebalance.moves', moves.length);
  c.log('info', 'rebalance', { moves: moves.length, batches: [...batches.values()].map((b) => `${b.from}->${b.to}:${b.units.length}`) });
}

export function drain(c: MemberCore, s: MasterState, now: number, member: MemberId, draining: boolean): void {
  const rec = s.members.get(member);
  if (!rec) return;
  rec.draining = draining;
  c.log('info', draining ? 'draining member' : 'member accepts work again', { member });
  if (!draining) {
    rebalance(c, s, now);
    return;
  }
  moveAway(c, s, now, member);
}

/** Moves the units of `member` that are not moving already to members that take work. */
function moveAway(c: MemberCore, s: MasterState, now: number, member: MemberId): void {
  const units: WorkUnit[] = [];
  for (let u = 0; u < UNIT_COUNT; u++) if (s.owners[u] === member && !s.moving.has(u)) units.push(u);
  if (units.length === 0) return;
  // First-packet assignment: the units go heaviest first to the least loaded (their weights are known);
  // 'at-once' keeps contiguous shares.
  const plan = firstPacket(c) ? placeByWeight(units, unitWeight(s), loads(s, false, now)) : distribute(units, loads(s, false));
  for (const [to, us] of plan) deassign(c, s, now, member, to, us);
}

/** Every draining member's units that are still its own and not moving go to members that take work. */
export function continueDrains(c: MemberCore, s: MasterState, now: number): void {
  for (const r of s.members.values()) if (r.draining) moveAway(c, s, now, r.id);
}
