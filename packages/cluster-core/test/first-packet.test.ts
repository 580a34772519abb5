// unitAssignment 'first-packet' (digest Figure 9, docs/decisions.md "Work follows traffic"): a unit gets
// an owner when its first packet reaches the master, the least loaded member by projected load, held
// until acknowledged; a dead member's units are placed again by weight; drains go by weight.
import { describe, expect, it } from 'vitest';
import { UNIT_COUNT } from '@gwcluster/wire';
import { SimNetwork } from '../src/index.js';
import { placeByWeight, leastLoaded } from '../src/balance.js';

const ip = (i: number) => `192.0.2.${i}`;
const M = [ip(11), ip(12), ip(13)];

function formed(seed = 1): SimNetwork {
  const net = new SimNetwork({ seed, coreOverrides: { unitAssignment: 'first-packet' } });
  for (const m of M) net.add(m);
  for (const m of M) net.start(m);
  const ok = net.runUntil(() => net.masters().length === 1 && net.masters()[0]!.member.status(net.now).members.length === 3, 10_000);
  expect(ok).not.toBeNull();
  net.run(1500); // past the grace period
  return net;
}

const owned = (net: SimNetwork) => M.map((m) => net.node(m).member.owned.size);
const table = (net: SimNetwork) => net.node(M[0]!).member.status(net.now).owners;

describe('first-packet assignment', () => {
  it('hands out nothing without traffic: every unit stays unassigned and held at the master', () => {
    const net = formed();
    net.run(5000);
    expect(owned(net)).toEqual([0, 0, 0]);
    expect(table(net).every((o) => o === null)).toBe(true);
    expect(net.node(M[0]!).member.dataPlaneView().holding.size).toBe(UNIT_COUNT);
    expect(net.node(M[1]!).member.dataPlaneView().holding.size).toBe(0);
  });

  it('a unit asked for goes to one member, is held until that member acknowledges, then released', () => {
    const net = formed();
    // Load the master so that another member is least loaded and the WORK ASSIGN crosses the network.
    net.event(M[0]!, { type: 'load-report', load: 50, busiestUnits: [] });
    net.event(M[0]!, { type: 'unit-needs-owner', unit: 700 });
    const to = table(net)[700];
    expect(to).toBe(M[1]); // least loaded (0), the lower address of the two
    expect(net.node(M[0]!).member.dataPlaneView().holding.has(700)).toBe(true);
    expect(net.node(M[1]!).member.owned.has(700)).toBe(false);
    net.run(20);
    expect(net.node(M[1]!).member.owned.has(700)).toBe(true);
    expect(net.node(M[0]!).member.dataPlaneView().holding.has(700)).toBe(false);
    expect(owned(net)).toEqual([0, 1, 0]);
  });

  it('a burst of new units between two load reports spreads evenly (projected load counts fresh units)', () => {
    const net = formed();
    // Equal reported loads (traffic weighs more than the unit counts); no report comes during the burst.
    for (const m of M) net.event(m, { type: 'load-report', load: 20, busiestUnits: [] });
    net.run(150);
    for (let u = 0; u < 30; u++) net.event(M[0]!, { type: 'unit-needs-owner', unit: 100 + u });
    net.run(50);
    expect(owned(net)).toEqual([10, 10, 10]);
  });

  it('goes to the least loaded by measured traffic, not by unit count', () => {
    const net = formed();
    for (let u = 0; u < 3; u++) net.event(M[0]!, { type: 'unit-needs-owner', unit: u });
    net.run(2000); // fresh assignments expire
    // One unit each, but 12 carries much more traffic.
    for (const [m, load] of [[M[0]!, 2], [M[1]!, 9], [M[2]!, 3]] as const) net.event(m, { type: 'load-report', load, busiestUnits: [] });
    net.run(150); // the members' reports reach the master in their CLIENT KEEPALIVE
    for (let u = 10; u < 16; u++) net.event(M[0]!, { type: 'unit-needs-owner', unit: u });
    net.run(50);
    const got = M.map((m) => [...net.node(m).member.owned].filter((u) => u >= 10).length);
    expect(got[1]).toBe(0);
    expect(got[0]! + got[2]!).toBe(6);
  });

  it('units asked for during the grace period are handed out when it ends', () => {
    const net = new SimNetwork({ coreOverrides: { unitAssignment: 'first-packet' } });
    for (const m of M) net.add(m);
    for (const m of M) net.start(m);
    net.runUntil(() => net.masters().length === 1, 5000);
    const master = net.masters()[0]!.id;
    for (let u = 0; u < 6; u++) net.event(master, { type: 'unit-needs-owner', unit: 500 + u });
    expect(table(net).slice(500, 506).every((o) => o === null)).toBe(true);
    net.run(1500);
    expect(table(net).slice(500, 506).every((o) => o !== null)).toBe(true);
    expect(owned(net).reduce((a, b) => a + b)).toBe(6);
  });

  it("a dead member's units are placed again at once, heaviest first, over the survivors", () => {
    const net = formed(3);
    for (let u = 0; u < 30; u++) net.event(M[0]!, { type: 'unit-needs-owner', unit: u });
    net.run(2000);
    const victimUnits = [...net.node(M[2]!).member.owned].sort((a, b) => a - b);
    expect(victimUnits).toHaveLength(10);
    // The victim's two heaviest units are reported; they must land on different survivors.
    const [h1, h2] = victimUnits;
    net.event(M[2]!, { type: 'load-report', load: 10 + 40, busiestUnits: [{ unit: h1!, weight: 21 }, { unit: h2!, weight: 21 }] });
    net.run(200);
    net.kill(M[2]!);
    net.run(600);
    expect(net.node(M[0]!).member.status(net.now).members).toHaveLength(2);
    const t = table(net);
    expect(victimUnits.every((u) => t[u] === M[0] || t[u] === M[1])).toBe(true);
    expect(t[h1!]).not.toBe(t[h2!]);
    expect(owned(net).slice(0, 2).reduce((a, b) => a + b)).toBe(30);
  });

  it('a drain moves the units by weight to the others and an undrained member gets work again by rebalance', () => {
    const net = formed(4);
    for (let u = 0; u < 30; u++) net.event(M[0]!, { type: 'unit-needs-owner', unit: u });
    net.run(2000);
    net.event(M[0]!, { type: 'drain', member: M[1]! });
    net.run(500);
    expect(owned(net)).toEqual([15, 0, 15]);
    net.event(M[0]!, { type: 'undrain', member: M[1]! });
    net.run(3000);
    expect(Math.min(...owned(net))).toBeGreaterThanOrEqual(9);
  });
});

describe('placeByWeight and leastLoaded', () => {
  it('places heaviest first on the least loaded; ties go to the lower address', () => {
    const weights = new Map([[1, 5], [2, 4], [3, 3], [4, 3], [5, 1]]);
    const plan = placeByWeight([1, 2, 3, 4, 5], (u) => weights.get(u)!, new Map([[ip(11), 0], [ip(12), 0], [ip(13), 2]]));
    // 1(5) -> .11; 2(4) -> .12; 3(3) -> .13 (2 -> 5); 4(3) -> .12 (4 -> 7); 5(1) -> .11 (5 -> 6)
    expect(plan).toEqual(new Map([[ip(11), [1, 5]], [ip(12), [2, 4]], [ip(13), [3]]]));
    expect(leastLoaded(new Map([[ip(12), 1], [ip(11), 1]]))).toBe(ip(11));
    expect(leastLoaded(new Map())).toBeUndefined();
  });
});
