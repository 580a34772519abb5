import { describe, expect, it } from 'vitest';
import { distribute, planRebalance } from '../src/balance.js';

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('distribute', () => {
  it('evens out loads with contiguous shares', () => {
    const plan = distribute(range(0, 1024), new Map([['192.0.2.1', 0], ['192.0.2.2', 0], ['192.0.2.3', 0]]));
    const sizes = [...plan.values()].map((u) => u.length);
    expect(sizes.reduce((a, b) => a + b)).toBe(1024);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    for (const units of plan.values()) expect(units[units.length - 1]! - units[0]!).toBe(units.length - 1);
  });

  it('gives the least loaded member the most', () => {
    const plan = distribute(range(0, 10), new Map([['192.0.2.1', 20], ['192.0.2.2', 10]]));
    expect(plan.get('192.0.2.2')).toEqual(range(0, 10));
    expect(plan.has('192.0.2.1')).toBe(false);
  });
});

describe('planRebalance (Figure 8D)', () => {
  it('moves one unit at a time while the gap narrows', () => {
    const movable = new Map([['192.0.2.1', range(0, 1024)]]);
    const loads = new Map([['192.0.2.1', 1024], ['192.0.2.2', 0], ['192.0.2.3', 0]]);
    const moves = planRebalance(loads, movable, () => 1, 1024);
    expect(moves).toHaveLength(682);
    const to = (m: string) => moves.filter((x) => x.to === m).length;
    expect([to('192.0.2.2'), to('192.0.2.3')].sort()).toEqual([341, 341]);
  });

  it('does not move a unit heavier than the gap', () => {
    const movable = new Map([['192.0.2.1', [1, 2]], ['192.0.2.2', [3]]]);
    const weights: Record<number, number> = { 1: 10, 2: 10, 3: 12 };
    // loads 20 vs 12: gap 8; every unit of K weighs 10 >= 8, so moving it would widen the gap.
    const moves = planRebalance(new Map([['192.0.2.1', 20], ['192.0.2.2', 12]]), movable, (u) => weights[u]!, 10);
    expect(moves).toEqual([]);
  });

  it('prefers the heaviest unit that still narrows the gap', () => {
    const movable = new Map([['192.0.2.1', [1, 2, 3]]]);
    const weights: Record<number, number> = { 1: 1, 2: 5, 3: 30 };
    const moves = planRebalance(new Map([['192.0.2.1', 36], ['192.0.2.2', 26]]), movable, (u) => weights[u]!, 1);
    expect(moves).toEqual([{ unit: 2, from: '192.0.2.1', to: '192.0.2.2' }]);
  });

  it('never picks a draining member as receiver', () => {
    const movable = new Map([['192.0.2.1', range(0, 10)]]);
    const moves = planRebalance(new Map([['192.0.2.1', 10], ['192.0.2.2', 0], ['192.0.2.3', 0]]), movable, () => 1, 100, new Set(['192.0.2.1', '192.0.2.3']));
    expect(moves.every((m) => m.to === '192.0.2.3')).toBe(true);
  });
});
