// The address pool and the takeover of a dead member's own address (docs/protocol.md, "Address pool and
// address takeover"), on the simulator: who answers for what, after boot, a death, a return and a drain.
import { describe, expect, it } from 'vitest';
import { SimNetwork, type PoolAddress } from '../src/index.js';

const ip = (i: number) => `192.0.2.${i}`;
const pool: PoolAddress[] = [101, 102, 103, 104, 105, 106].map((i) => ({ address: ip(i), interface: 'eth0' }));

/** address -> the live members that answer for it. */
function holders(net: SimNetwork): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of net.alive()) {
    for (const a of n.member.status(net.now).addresses.held) out.set(a, [...(out.get(a) ?? []), n.id]);
  }
  return out;
}

function spread(net: SimNetwork): number[] {
  return net.alive().map((n) => n.member.status(net.now).addresses.held.filter((a) => pool.some((p) => p.address === a)).length).sort();
}

function exactlyOnce(net: SimNetwork, addresses: readonly string[]): boolean {
  const h = holders(net);
  return addresses.every((a) => (h.get(a) ?? []).length === 1);
}

/** The pool addresses member `id` answers for, sorted. */
function poolHeld(net: SimNetwork, id: string): string[] {
  return net.alive().find((n) => n.id === id)!.member.status(net.now).addresses.held.filter((a) => pool.some((p) => p.address === a)).sort();
}

/**
 * Three members with addressPoolFailback 'on-command', the pool placed 2/2/2 (a first placement spreads
 * a new pool as always); 192.0.2.13 killed (the pool goes 3/3) and back, holding nothing.
 */
function onCommandReturn(seed: number): { net: SimNetwork; before13: string[] } {
  const net = new SimNetwork({ seed, coreOverrides: { addressPool: pool, addressPoolFailback: 'on-command' } });
  for (const i of [11, 12, 13]) net.add(ip(i));
  for (const i of [11, 12, 13]) net.start(ip(i));
  expect(net.runUntil(() => net.converged(3) && spread(net).join() === '2,2,2', 5000)).not.toBeNull();
  const before13 = poolHeld(net, ip(13));
  expect(before13).toHaveLength(2);
  net.kill(ip(13));
  expect(net.runUntil(() => spread(net).join() === '3,3', 5000)).not.toBeNull();
  net.restart(ip(13));
  expect(net.runUntil(() => net.converged(3), 5000)).not.toBeNull();
  net.run(3000);
  expect(spread(net).join()).toBe('0,3,3');
  return { net, before13 };
}

describe('address pool', () => {
  it('takes over no member address unless memberAddressTakeover is on', () => {
    const net = new SimNetwork({ seed: 9, coreOverrides: { addressPool: pool } });
    for (const i of [11, 12, 13]) net.add(ip(i));
    for (const i of [11, 12, 13]) net.start(ip(i));
    expect(net.runUntil(() => net.converged(3) && spread(net).join() === '2,2,2', 5000)).not.toBeNull();
    net.kill(ip(13));
    expect(net.runUntil(() => spread(net).join() === '3,3' && exactlyOnce(net, pool.map((p) => p.address)), 5000)).not.toBeNull();
    net.run(500);
    expect(holders(net).has(ip(13))).toBe(false);
  });

  it('spreads the pool 2/2/2, moves a dead member\'s addresses and its own address to survivors, and gives it back on return', () => {
    const net = new SimNetwork({ seed: 7, coreOverrides: { addressPool: pool, memberAddressTakeover: true } });
    for (const i of [11, 12, 13]) net.add(ip(i));
    for (const i of [11, 12, 13]) net.start(ip(i));
    expect(net.runUntil(() => net.converged(3) && exactlyOnce(net, pool.map((p) => p.address)) && spread(net).join() === '2,2,2', 5000)).not.toBeNull();
    // Every member knows every owner.
    const views = net.alive().map((n) => JSON.stringify(n.member.status(net.now).addresses.pool));
    expect(new Set(views).size).toBe(1);

    const before = holders(net);
    net.kill(ip(12));
    const killedAt = net.now;
    const movedAt = net.runUntil(() => exactlyOnce(net, [...pool.map((p) => p.address), ip(12)]) && spread(net).join() === '3,3', 5000);
    expect(movedAt).not.toBeNull();
    // The dead member's own address: the member after it in address order.
    expect(holders(net).get(ip(12))).toEqual([ip(13)]);
    // Addresses of the survivors did not move.
    for (const [a, h] of before) if (h[0] !== ip(12)) expect(holders(net).get(a)).toEqual(h);
    expect(movedAt! - killedAt).toBeLessThan(1000);

    net.restart(ip(12));
    expect(net.runUntil(() => net.converged(3) && !holders(net).has(ip(12)) && spread(net).join() === '2,2,2' && exactlyOnce(net, pool.map((p) => p.address)), 5000)).not.toBeNull();
  });

  it("a successor answers for the dead master's address; a drained member holds nothing", () => {
    const net = new SimNetwork({ seed: 8, coreOverrides: { addressPool: pool, memberAddressTakeover: true } });
    for (const i of [11, 12, 13]) net.add(ip(i));
    for (const i of [11, 12, 13]) net.start(ip(i));
    expect(net.runUntil(() => net.converged(3) && spread(net).join() === '2,2,2', 5000)).not.toBeNull();
    net.kill(ip(11));
    expect(net.runUntil(() => net.masters().length === 1 && exactlyOnce(net, [...pool.map((p) => p.address), ip(11)]) && spread(net).join() === '3,3', 5000)).not.toBeNull();
    expect(holders(net).get(ip(11))).toEqual([ip(12)]);
    const master = net.masters()[0]!.id;
    net.event(master, { type: 'drain', member: ip(13) });
    expect(net.runUntil(() => holders(net).get(ip(11))?.[0] === ip(12) && spread(net).join() === '0,6', 5000)).not.toBeNull();
  });

  it('names who had an address and who has it now, when both are live members (affinity)', () => {
    const net = new SimNetwork({ seed: 7, coreOverrides: { addressPool: pool } });
    for (const i of [11, 12, 13]) net.add(ip(i));
    for (const i of [11, 12, 13]) net.start(ip(i));
    expect(net.runUntil(() => net.converged(3) && spread(net).join() === '2,2,2', 5000)).not.toBeNull();
    const theirs = net.node(ip(12)).member.status(net.now).addresses.held;
    net.kill(ip(12));
    expect(net.runUntil(() => spread(net).join() === '3,3', 5000)).not.toBeNull();
    // Taken from a dead member: no live previous owner.
    const fromDead = [ip(11), ip(13)].flatMap((m) => net.node(m).trace.flatMap((t) => (t.effect.type === 'addresses' ? (t.effect.moves ?? []) : [])));
    expect(fromDead.filter((m) => theirs.includes(m.address)).map((m) => m.from)).toEqual([null, null]);
    const mark = net.now;
    net.restart(ip(12));
    expect(net.runUntil(() => net.converged(3) && spread(net).join() === '2,2,2', 5000)).not.toBeNull();
    const moves = (m: string) => net.node(m).trace.filter((t) => t.at >= mark).flatMap((t) => (t.effect.type === 'addresses' ? (t.effect.moves ?? []) : []));
    // The returning member applies its first placement: it cannot tell who had its addresses ('unknown');
    // the members that gave them name the move.
    const back = moves(ip(12));
    expect(back.map((m) => [m.from, m.to])).toEqual([['unknown', ip(12)], ['unknown', ip(12)]]);
    const given = [...moves(ip(11)), ...moves(ip(13))];
    expect(given.map((m) => m.address).sort()).toEqual(back.map((m) => m.address).sort());
    for (const mv of given) expect(mv.to).toBe(ip(12));
  });

  it("addressPoolFailback 'on-command': a returning member gets no address until the operator's rebalance", () => {
    const { net } = onCommandReturn(11);
    net.event(net.masters()[0]!.id, { type: 'rebalance-now' });
    expect(net.runUntil(() => spread(net).join() === '2,2,2' && exactlyOnce(net, pool.map((p) => p.address)), 5000)).not.toBeNull();
  });

  it("gwctl failback MEMBER ('on-command'): the returning member gets back the addresses it held before, and no other move is made", () => {
    const { net, before13 } = onCommandReturn(12);
    const owned = (id: string) => poolHeld(net, id);
    const others = new Map([ip(11), ip(12)].map((id) => [id, owned(id)] as const));
    // Asked of a member that is not master: nothing happens (the operator plane sends it to the master).
    const notMaster = net.alive().find((n) => n.member.role !== 'master')!;
    net.event(notMaster.id, { type: 'failback', member: ip(13) });
    net.run(500);
    expect(spread(net).join()).toBe('0,3,3');
    net.event(net.masters()[0]!.id, { type: 'failback', member: ip(13) });
    expect(net.runUntil(() => spread(net).join() === '2,2,2' && exactlyOnce(net, pool.map((p) => p.address)), 5000)).not.toBeNull();
    // Exactly the two it held before, each taken from the member that had it; nothing else moved.
    expect(owned(ip(13))).toEqual(before13);
    for (const [id, had] of others) expect(owned(id)).toEqual(had.filter((a) => !before13.includes(a)));
    expect(net.masters()[0]!.member.counters['address.failback-asked']).toBe(2);
  });
});

