/**
 * Pure work-distribution arithmetic used by the master (digest: Figures 8D and 9).
 *
 * Load measure: a member's load is the sum of its units' weights; a unit weighs 1 plus its measured
 * traffic in "unit equivalents" (docs/architecture.md). Without traffic every unit weighs 1, so load is
 * the number of units owned.
 */
import type { MemberId, WorkUnit } from '@gwcluster/wire';
import { compareMemberIds } from '@gwcluster/wire';

/**
 * Hands out `units` (ascending) to `members` so that loads even out: the least loaded member gets the
 * next unit, repeatedly; each member's share is then a contiguous slice of `units`, which keeps the
 * table's run-length encoding short. Ties go to the lower address. Returns member -> units.
 */
export function distribute(units: readonly WorkUnit[], loads: ReadonlyMap<MemberId, number>): Map<MemberId, WorkUnit[]> {
  const result = new Map<MemberId, WorkUnit[]>();
  const members = [...loads.keys()].sort(compareMemberIds);
  if (members.length === 0 || units.length === 0) return result;
  const projected = new Map(loads);
  const counts = new Map<MemberId, number>(members.map((m) => [m, 0]));
  for (let i = 0; i < units.length; i++) {
    let best = members[0]!;
    for (const m of members) if (projected.get(m)! < projected.get(best)!) best = m;
    projected.set(best, projected.get(best)! + 1);
    counts.set(best, counts.get(best)! + 1);
  }
  let next = 0;
  for (const m of members) {
    const c = counts.get(m)!;
    if (c > 0) result.set(m, units.slice(next, next + c));
    next += c;
  }
  return result;
}

export interface Move {
  readonly unit: WorkUnit;
  readonly from: MemberId;
  readonly to: MemberId;
}

/**
 * One rebalance round (Figure 8D): take the most loaded member K and the least loaded J; move K's unit
 * whose weight w is the largest with 0 < w < load(K) - load(J) (so the gap strictly narrows); repeat
 * while such a move exists, at most maxMoves times. `movable` lists each member's units that may move
 * (acknowledged, not already moving); `weight` gives a unit's weight.
 */
export function planRebalance(
  loads: ReadonlyMap<MemberId, number>,
  movable: ReadonlyMap<MemberId, readonly WorkUnit[]>,
  weight: (unit: WorkUnit) => number,
  maxMoves: number,
  receivers: ReadonlySet<MemberId> = new Set(loads.keys()),
): Move[] {
  const moves: Move[] = [];
  const load = new Map(loads);
  const pool = new Map([...movable].map(([m, us]) => [m, new Set(us)]));
  const members = [...load.keys()].sort(compareMemberIds);
  while (moves.length < maxMoves) {
    let k: MemberId | undefined;
    let j: MemberId | undefined;
    for (const m of members) {
      if ((pool.get(m)?.size ?? 0) > 0 && (k === undefined || load.get(m)! > load.get(k)!)) k = m;
      if (receivers.has(m) && (j === undefined || load.get(m)! < load.get(j)!)) j = m;
    }
    if (k === undefined || j === undefined || k === j) break;
    const gap = load.get(k)! - load.get(j)!;
    let best: WorkUnit | undefined;
    let bestWeight = 0;
    for (const u of pool.get(k)!) {
      const w = weight(u);
      if (w > 0 && w < gap && (w > bestWeight || (w === bestWeight && best !== undefined && u < best))) {
        best = u;
        bestWeight = w;
      }
    }
    if (best === undefined) break;
    pool.get(k)!.delete(best);
    load.set(k, load.get(k)! - bestWeight);
    load.set(j, load.get(j)! + bestWeight);
    moves.push({ unit: best, from: k, to: j });
  }
  return moves;
}

/** The least loaded member (ties: the lower address), or undefined when there is none. */
export function leastLoaded(loads: ReadonlyMap<MemberId, number>): MemberId | undefined {
  let best: MemberId | undefined;
  for (const m of [...loads.keys()].sort(compareMemberIds)) if (best === undefined || loads.get(m)! < loads.get(best)!) best = m;
  return best;
}

/**
 * Places `units` one at a time, heaviest first, each on the member whose projected load is least at
 * that moment (longest-processing-time first; ties: the lower address, then the lower unit). For units
 * whose weights are known (a dead or drained member's, by traffic), unlike distribute()'s contiguous
 * shares, which only even out unit counts. Returns member -> units (ascending).
 */
export function placeByWeight(
  units: readonly WorkUnit[],
  weight: (unit: WorkUnit) => number,
  loads: ReadonlyMap<MemberId, number>,
): Map<MemberId, WorkUnit[]> {
  const result = new Map<MemberId, WorkUnit[]>();
  const projected = new Map(loads);
  const order = [...units].sort((a, b) => weight(b) - weight(a) || a - b);
  for (const u of order) {
    const to = leastLoaded(projected);
    if (to === undefined) break;
    projected.set(to, projected.get(to)! + weight(u));
    let list = result.get(to);
    if (!list) result.set(to, (list = []));
    list.push(u);
  }
  for (const list of result.values()) list.sort((a, b) => a - b);
  return result;
}
