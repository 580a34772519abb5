// A member killed (kill -9) and restarted as a fresh process re-joins once: one master, every member,
// no epoch change, no second admission. A just-started process stalls (JIT, the data plane's first
// table, the state-sync snapshot); the stalls below are those measured on the restarted member in the
// namespace runs (scripts/measure-rejoin.mjs: 260-340 ms right after its JOIN REPLY), and longer.
import { describe, expect, it } from 'vitest';
import { encodeClusterMessage } from '@gwcluster/wire';
import { SimNetwork, type SimNode } from '../src/index.js';

const ip = (i: number) => `192.0.2.${i}`;
const M = [ip(11), ip(12), ip(13)];

function roles(node: SimNode, since: number): string[] {
  return node.trace.filter((t) => t.at >= since && t.plane === undefined && t.effect.type === 'role').map((t) => (t.effect as { role: string }).role);
}

function settledCluster(seed: number): SimNetwork {
  const net = new SimNetwork({ seed });
  for (const m of M) net.add(m);
  for (const m of M) net.start(m);
  expect(net.runUntil(() => net.converged(3), 20_000), 'the cluster forms').not.toBeNull();
  net.run(2000);
  return net;
}

describe('a restarted member re-joins without churn', () => {
  it.each([0, 300, 600, 1200])('kill -9, restart, and a %i ms stall right after its JOIN REPLY: one admission, no epoch change', (stallMs) => {
    const net = settledCluster(7 + stallMs);
    const master = net.masters()[0]!;
    const epoch = master.member.epoch;
    const victim = M.find((m) => m !== master.id && m !== ip(12)) ?? ip(13);
    net.kill(victim);
    // Its death is noticed: it held units.
    expect(net.runUntil(() => master.member.status(net.now).members.length === 2, 2000)).not.toBeNull();
    net.run(700);
    const t0 = net.now;
    net.restart(victim);
    // Until its JOIN REPLY OK is in, then its process stalls.
    expect(net.runUntil(() => net.node(victim).member.role === 'member', 2000), 'admitted').not.toBeNull();
    if (stallMs > 0) net.stall(victim, stallMs);
    const took = net.runUntil(() => net.converged(3) && master.member.status(net.now).members.length === 3, 10_000);
    expect(took, 'the cluster is whole again').not.toBeNull();
    net.run(3000); // and stays so
    expect(net.converged(3)).toBe(true);
    expect(net.masters().map((n) => n.id)).toEqual([master.id]);
    for (const m of M) expect(net.node(m).member.epoch, `epoch at ${m}`).toBe(epoch);
    // Admitted once: joining -> member, nothing else; nobody else changed role.
    expect(roles(net.node(victim), t0)).toEqual(['joining', 'member']);
    for (const m of M.filter((x) => x !== victim)) expect(roles(net.node(m), t0), `roles of ${m}`).toEqual([]);
    const admissions = master.trace.filter((t) => t.at >= t0 && t.effect.type === 'log' && t.effect.msg === 'member joined').length;
    expect(admissions).toBe(1);
  });

  it('a member that dies right after joining, holding nothing, is still removed (after the new-member grace)', () => {
    const net = settledCluster(3);
    const master = net.masters()[0]!;
    const victim = M.find((m) => m !== master.id)!;
    net.kill(victim);
    expect(net.runUntil(() => master.member.status(net.now).members.length === 2, 2000)).not.toBeNull();
    net.run(700);
    net.restart(victim);
    expect(net.runUntil(() => net.node(victim).member.role === 'member', 2000)).not.toBeNull();
    const admittedAt = net.now;
    net.kill(victim);
    const took = net.runUntil(() => master.member.status(net.now).members.length === 2, 10_000);
    expect(took).not.toBeNull();
    // Within the grace (2 s) plus one tick.
    expect(net.now - admittedAt).toBeLessThanOrEqual(master.member.config.newMemberGraceMs + 20);
  });
});

describe('a JOIN REQUEST that crossed the JOIN REPLY', () => {
  it('is answered again, not admitted a second time', () => {
    const net = settledCluster(11);
    const master = net.masters()[0]!;
    const victim = M.find((m) => m !== master.id)!;
    net.kill(victim);
    expect(net.runUntil(() => master.member.status(net.now).members.length === 2, 2000)).not.toBeNull();
    net.run(700);
    const t0 = net.now;
    net.restart(victim);
    // The master admits it; its JOIN REPLY is on the wire, and so is the joiner's re-sent JOIN REQUEST.
    for (let i = 0; i < 4000 && master.member.status(net.now).members.length < 3; i++) net.run(0.5);
    expect(master.member.status(net.now).members.length).toBe(3);
    expect(net.node(victim).member.role).toBe('joining');
    net.node(victim).transport.broadcast(encodeClusterMessage({ type: 'join-request', configVersion: 1, claimedUnits: [], nonce: 99 }));
    net.run(3000);
    expect(net.converged(3)).toBe(true);
    const masterLogs = master.trace.filter((t) => t.at >= t0 && t.effect.type === 'log').map((t) => (t.effect as { msg: string }).msg);
    expect(masterLogs.filter((m) => m === 'member joined')).toHaveLength(1);
    expect(masterLogs.filter((m) => m === 'member removed')).toHaveLength(0);
    expect(master.member.status(net.now).counters['join.duplicate']).toBe(1);
    expect(roles(net.node(victim), t0)).toEqual(['joining', 'member']);
  });
});
