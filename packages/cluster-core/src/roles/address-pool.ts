/**
 * The address pool and the takeover of a dead member's own address (docs/protocol.md, "Address pool and
 * address takeover"). The master decides; MASTER KEEPALIVE carries the result (pool_owners, takeovers);
 * every member derives from it the addresses it answers for and tells its driver the difference
 * (the `addresses` effect).
 *
 * - Pool: each address goes to exactly one member that may take work (not draining), spread evenly by
 *   count. Deterministic: an address keeps its owner while that owner may hold it; a free address goes to
 *   the member holding fewest (ties: the lowest address); then, while two members differ by more than one,
 *   the most loaded member's last address in pool order moves to the least loaded one.
 * - Takeover: when the watchdog declares a member dead (or a successor takes office for a dead master),
 *   its own address is answered by the next member after it in address order (wrapping), until it sends a
 *   JOIN REQUEST again (it is back and answers for itself). A member that left cleanly is not taken over.
 *   Only with `memberAddressTakeover` (off by default: see CoreConfig).
 */
import { compareMemberIds, type AddressTakeover, type MemberId } from '@gwcluster/wire';
import type { HeldAddress, PoolMove } from '../events.js';
import type { MasterState, MemberCore } from './shared.js';

/** Members that may hold addresses, in address order. */
function eligible(s: MasterState): MemberId[] {
  return [...s.members.values()].filter((r) => !r.draining).map((r) => r.id).sort(compareMemberIds);
}

/**
 * Places the pool and the takeovers on the master's current members. Returns true when anything moved
 * (the caller sends a keepalive at once, so the move is as fast as a work unit's).
 */
export function placeAddresses(c: MemberCore, s: MasterState): boolean {
  const pool = c.config.addressPool.map((p) => p.address);
  const before = JSON.stringify([s.pool.addresses, s.pool.owners, [...s.takeovers]]);
  // A new pool (configuration change): owners are kept by address.
  if (pool.join(',') !== s.pool.addresses.join(',')) {
    const old = new Map(s.pool.addresses.map((a, i) => [a, s.pool.owners[i] ?? null] as const));
    s.pool = { addresses: pool, owners: pool.map((a) => old.get(a) ?? null) };
  }
  const may = eligible(s);
  const mayHold = new Set(may);
  const owners = s.pool.owners;
  for (let i = 0; i < owners.length; i++) {
    if (owners[i] !== null && !mayHold.has(owners[i]!)) {
      s.poolPrevious.set(s.pool.addresses[i]!, owners[i]!);
      owners[i] = null;
    }
  }
  if (may.length > 0) {
    const count = new Map<MemberId, number>(may.map((m) => [m, 0]));
    for (const o of owners) if (o !== null) count.set(o, count.get(o)! + 1);
    const least = (): MemberId => may.reduce((a, b) => (count.get(b)! < count.get(a)! ? b : a));
    const most = (): MemberId => may.reduce((a, b) => (count.get(b)! >= count.get(a)! ? b : a));
    for (let i = 0; i < owners.length; i++) {
      if (owners[i] !== null) continue;
      const to = least();
      owners[i] = to;
      count.set(to, count.get(to)! + 1);
    }
    // gwctl failback MEMBER: MEMBER takes addresses from the most loaded members (those it held before it
    // died or was drained first) while that narrows the spread.
    const back = s.poolFailbackAsked;
    s.poolFailbackAsked = undefined;
    if (back !== undefined && mayHold.has(back)) {
      for (;;) {
        const hi = most();
        if (hi === back || count.get(hi)! - count.get(back)! <= 1) break;
        const mine = owners.findIndex((o, i) => o === hi && s.poolPrevious.get(s.pool.addresses[i]!) === back);
        const i = mine >= 0 ? mine : owners.lastIndexOf(hi);
        owners[i] = back;
        count.set(hi, count.get(hi)! - 1);
        count.set(back, count.get(back)! + 1);
        c.count('address.failback-asked');
      }
    }
    const balance = c.config.addressPoolFailback !== 'on-command' || s.poolBalanceAsked === true;
    s.poolBalanceAsked = false;
    for (; balance; ) {
      const hi = most();
      const lo = least();
      if (count.get(hi)! - count.get(lo)! <= 1) break;
      const i = owners.lastIndexOf(hi);
      owners[i] = lo;
      count.set(hi, count.get(hi)! - 1);
      count.set(lo, count.get(lo)! + 1);
    }
  }
  for (let i = 0; i < owners.length; i++) if (owners[i] === s.poolPrevious.get(s.pool.addresses[i]!)) s.poolPrevious.delete(s.pool.addresses[i]!);
  for (const a of [...s.poolPrevious.keys()]) if (!pool.includes(a)) s.poolPrevious.delete(a);
  // Takeovers: the dead member's address stays with its holder while the holder may hold it.
  for (const [dead, holder] of [...s.takeovers]) {
    if (s.members.has(dead) || !c.config.memberAddressTakeover) s.takeovers.delete(dead);
    else if (!mayHold.has(holder)) {
      const next = nextAfter(may, dead);
      if (next) s.takeovers.set(dead, next);
      else s.takeovers.delete(dead);
    }
  }
  const changed = JSON.stringify([s.pool.addresses, s.pool.owners, [...s.takeovers]]) !== before;
  if (changed) {
    c.log('info', 'address pool placed', { owners: Object.fromEntries(s.pool.addresses.map((a, i) => [a, s.pool.owners[i]])), takeovers: Object.fromEntries(s.takeovers) });
  }
  return changed;
}

/** The member after `dead` in address order, wrapping; undefined when none may hold addresses. */
function nextAfter(may: readonly MemberId[], dead: MemberId): MemberId | undefined {
  return may.find((m) => compareMemberIds(m, dead) > 0) ?? may[0];
}

/** Master: the watchdog declared `dead` dead (or a successor took office for it): answer for its address. */
export function takeOver(c: MemberCore, s: MasterState, dead: MemberId): void {
  if (!c.config.memberAddressTakeover || dead === c.self || s.takeovers.has(dead)) return;
  const holder = nextAfter(eligible(s), dead);
  if (!holder) return;
  s.takeovers.set(dead, holder);
  c.count('address.takeover');
  c.log('warn', "a survivor answers for the dead member's address", { member: dead, holder });
}

/** Master: `member` is back (its JOIN REQUEST arrived): it answers for its own address again. */
export function giveBack(c: MemberCore, s: MasterState, member: MemberId): boolean {
  if (!s.takeovers.delete(member)) return false;
  c.count('address.failback');
  c.log('info', 'member is back: it answers for its own address again', { member });
  return true;
}

/** The keepalive's fields for the pool and the takeovers (absent when empty). */
export function poolFields(s: MasterState): { poolOwners?: (MemberId | null)[]; takeovers?: AddressTakeover[] } {
  const takeovers = [...s.takeovers].sort((a, b) => compareMemberIds(a[0], b[0])).map(([member, holder]) => ({ member, holder }));
  return {
    ...(s.pool.owners.length > 0 ? { poolOwners: [...s.pool.owners] } : {}),
    ...(takeovers.length > 0 ? { takeovers } : {}),
  };
}

/**
 * Makes this member answer for exactly the addresses `poolOwners` and `takeovers` give it, emitting the
 * difference. `poolOwners` is in the order of this member's configured pool; a list of another length
 * (a keepalive of another configuration) changes nothing of the pool.
 */
export function holdAddresses(c: MemberCore, poolOwners: readonly (MemberId | null)[] | undefined, takeovers: readonly AddressTakeover[] | undefined, reason: string): void {
  const pool = c.config.addressPool;
  const wanted = new Map<string, HeldAddress>();
  const owners = poolOwners ?? [];
  const moves: PoolMove[] = [];
  if (owners.length === pool.length) {
    // Who had each address before and who has it now, when one of them is this member and the other a
    // live member (c.table holds the members of the placement being applied): the driver keeps the old
    // connections on the member that holds their state (affinity).
    const live = new Set(c.table.members.map((e) => e.member));
    pool.forEach((p, i) => {
      const now = owners[i] ?? null;
      const before = c.poolOwnersSeen.get(p.address);
      if (before === undefined && now === c.self) moves.push({ address: p.address, from: 'unknown', to: now });
      else if (before !== undefined && before !== now && (before === c.self || now === c.self)) {
        moves.push({ address: p.address, from: before !== null && live.has(before) ? before : null, to: now !== null && live.has(now) ? now : null });
      }
      c.poolOwnersSeen.set(p.address, now);
      if (now === c.self) wanted.set(p.address, { address: p.address, kind: 'pool', interface: p.interface });
    });
  } else {
    // Not placed yet (a new master's grace period) or placed for another configuration: keep the pool
    // addresses held until the master says otherwise.
    if (owners.length > 0) c.count('address.pool-mismatch');
    for (const [a, h] of c.held) if (h.kind === 'pool') wanted.set(a, h);
  }
  for (const t of takeovers ?? []) if (t.holder === c.self && t.member !== c.self) wanted.set(t.member, { address: t.member, kind: 'takeover' });
  c.setHeld(wanted, reason, moves);
}
