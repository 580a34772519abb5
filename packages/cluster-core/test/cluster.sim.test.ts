import { describe, expect, it } from 'vitest';
import { DEFAULT_CORE_CONFIG, SimNetwork } from '../src/index.js';
import { UNIT_COUNT } from '@gwcluster/wire';
const WIRE_UNITS = 1024;

const ip = (i: number) => `192.0.2.${i}`;

function boot(n: number, opts: ConstructorParameters<typeof SimNetwork>[0] = {}): SimNetwork {
  const net = new SimNetwork(opts);
  for (let i = 1; i <= n; i++) net.add(ip(i + 10));
  for (let i = 1; i <= n; i++) net.start(ip(i + 10));
  return net;
}

describe('cluster formation (Figure 6)', () => {
  it.each([3, 64])('%i members booted at once end with one master and every unit owned once', (n) => {
    const net = boot(n, { seed: n });
    const took = net.runUntil(() => net.converged(n), 20_000);
    expect(took, 'cluster did not converge').not.toBeNull();
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]); // the lowest address wins the offers
    // Stays converged: no flapping afterwards.
    net.run(5000);
    expect(net.converged(n)).toBe(true);
    const counts = net.alive().map((x) => x.member.owned.size);
    expect(counts.reduce((a, b) => a + b)).toBe(UNIT_COUNT);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(UNIT_COUNT).toBe(WIRE_UNITS);
  }, 180_000); // 64 members x 25 keepalives/s through the codec: slow on a loaded host

  it('a lone member becomes master after join and offer time out (100 ms + 100 ms)', () => {
    const net = boot(1);
    net.run(150);
    expect(net.node(ip(11)).member.role).toBe('offering');
    net.run(100);
    expect(net.node(ip(11)).member.role).toBe('master');
    expect(net.node(ip(11)).clusterIpAnnouncements).toBe(1);
  });

  it('a member started later joins the existing master without an election', () => {
    const net = boot(2);
    expect(net.runUntil(() => net.converged(2), 5000)).not.toBeNull();
    const epoch = net.node(ip(11)).member.status(net.now).epoch;
    net.add(ip(20));
    net.start(ip(20));
    expect(net.runUntil(() => net.converged(3), 5000)).not.toBeNull();
    expect(net.node(ip(20)).trace.some((t) => t.effect.type === 'send' && t.effect.message.type === 'master-offer')).toBe(false);
    expect(net.node(ip(11)).member.status(net.now).epoch).toBe(epoch);
  });
});

describe('failures', () => {
  it('master death: a new master, a complete table, and only the dead master\'s units move', () => {
    const net = boot(3, { seed: 7 });
    expect(net.runUntil(() => net.converged(3), 10_000)).not.toBeNull();
    net.run(3000);
    const before = new Map(net.alive().map((n) => [n.id, new Set(n.member.owned)]));
    net.kill(ip(11));
    const took = net.runUntil(() => net.converged(2), 10_000);
    expect(took).not.toBeNull();
    expect(net.masters()).toHaveLength(1);
    // Survivors kept every unit they had: the new master rebuilt its table from their claims.
    for (const id of [ip(12), ip(13)]) {
      const now = net.node(id).member.owned;
      for (const u of before.get(id)!) expect(now.has(u)).toBe(true);
    }
    // Detection plus election plus reassignment stays well under a second on a quiet network.
    expect(took!).toBeLessThan(1500);
    // The dead master's units went to the survivors.
    expect(net.node(ip(12)).member.owned.size + net.node(ip(13)).member.owned.size).toBe(UNIT_COUNT);
  });

  it('master death: the named successor takes office with the table, no JOIN or OFFER, as fast as a member death', () => {
    const net = boot(4, { seed: 9 });
    expect(net.runUntil(() => net.converged(4), 10_000)).not.toBeNull();
    net.run(3000);
    const epoch = net.node(ip(12)).member.epoch;
    const before = new Map(net.alive().map((n) => [n.id, new Set(n.member.owned)]));
    const traced = new Map(net.alive().map((n) => [n.id, n.trace.length]));
    net.kill(ip(11));
    const took = net.runUntil(() => net.converged(3), 5000);
    expect(took).not.toBeNull();
    // The 250 ms watchdog, a 10 ms tick, one WORK ASSIGN round trip: what a member's death costs.
    expect(took!).toBeLessThan(300);
    expect(net.masters().map((m) => m.id)).toEqual([ip(12)]);
    expect(net.node(ip(12)).member.epoch).toBe(epoch + 1);
    for (const id of [ip(12), ip(13), ip(14)]) {
      const sent = net.node(id).trace.slice(traced.get(id)).filter((t) => t.effect.type === 'send').map((t) => (t.effect as { message: { type: string } }).message.type);
      expect(sent.filter((t) => t === 'join-request' || t === 'master-offer')).toEqual([]);
      for (const u of before.get(id)!) expect(net.node(id).member.owned.has(u)).toBe(true);
    }
  });

  it.each([1, 2, 3])('the master and its successor die together (seed %i, 5 %% loss): one master and a full table', (seed) => {
    const net = boot(5, { seed, loss: 0.05 });
    expect(net.runUntil(() => net.converged(5), 20_000)).not.toBeNull();
    net.run(3000);
    net.kill(ip(11));
    net.kill(ip(12));
    expect(net.runUntil(() => net.converged(3), 10_000)).not.toBeNull();
    net.run(3000);
    expect(net.masters()).toHaveLength(1);
    expect(net.converged(3)).toBe(true);
  });

  it.each([1, 2, 3])('a successor that cannot hear the master (seed %i): one master at the end', (seed) => {
    const net = boot(4, { seed });
    expect(net.runUntil(() => net.converged(4), 10_000)).not.toBeNull();
    net.run(3000);
    // 192.0.2.12 is the successor of 192.0.2.11 (lowest address among the others).
    net.network.drop = (d) => d.from === ip(11) && d.to === ip(12);
    net.run(3000);
    expect(net.masters()).toHaveLength(1);
    net.network.drop = () => false;
    expect(net.runUntil(() => net.converged(4), 10_000)).not.toBeNull();
    expect(net.masters()).toHaveLength(1);
  });

  it('member death: its units return to the pool and are reassigned; applications hear it left', () => {
    const net = boot(3, { seed: 3 });
    expect(net.runUntil(() => net.converged(3), 10_000)).not.toBeNull();
    net.kill(ip(13));
    const t0 = net.now;
    expect(net.runUntil(() => net.converged(2), 5000)).not.toBeNull();
    net.run(300); // the next MASTER KEEPALIVE carries the new member list
    const left = net.node(ip(12)).notifications.find((n) => n.left.includes(ip(13)));
    expect(left).toBeDefined();
    expect(left!.at - t0).toBeLessThan(600);
    expect(net.node(ip(11)).notifications.some((n) => n.left.includes(ip(13)))).toBe(true);
  });

  it('a killed member restarts and re-joins; work is rebalanced to it', () => {
    const net = boot(3, { seed: 5 });
    expect(net.runUntil(() => net.converged(3), 10_000)).not.toBeNull();
    net.kill(ip(12));
    expect(net.runUntil(() => net.converged(2), 5000)).not.toBeNull();
    net.restart(ip(12));
    expect(net.runUntil(() => net.converged(3) && net.node(ip(12)).member.owned.size >= 341, 10_000)).not.toBeNull();
  });

  it('a partition makes two masters; healing leaves one, chosen by the tie-breaker', () => {
    const net = boot(5, { seed: 11 });
    expect(net.runUntil(() => net.converged(5), 10_000)).not.toBeNull();
    // Minority {11, 12} keeps the old master; majority {13, 14, 15} elects 13.
    net.partition([ip(11), ip(12)], [ip(13), ip(14), ip(15)]);
    net.run(3000);
    expect(net.masters().map((m) => m.id).sort()).toEqual([ip(11), ip(13)]);
    net.heal();
    expect(net.runUntil(() => net.converged(5), 10_000)).not.toBeNull();
    // More members wins, even against a lower address.
    expect(net.masters().map((m) => m.id)).toEqual([ip(13)]);
    expect(net.node(ip(11)).trace.some((t) => t.effect.type === 'log' && t.effect.msg.startsWith('lost tie-break'))).toBe(true);
  });

  it('equal halves: the lower address wins the tie-break', () => {
    const net = boot(4, { seed: 12 });
    expect(net.runUntil(() => net.converged(4), 10_000)).not.toBeNull();
    net.partition([ip(11), ip(12)], [ip(13), ip(14)]);
    net.run(3000);
    net.heal();
    expect(net.runUntil(() => net.converged(4), 10_000)).not.toBeNull();
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
  });
});

describe('message loss and the adaptive interval', () => {
  it.each([0.05, 0.2])('converges and stays converged with %f loss', (loss) => {
    const net = boot(5, { seed: 21, loss });
    expect(net.runUntil(() => net.converged(5), 30_000)).not.toBeNull();
    // Count spurious deaths over 60 s: with the adaptive multiple they should be rare.
    const masterBefore = net.masters()[0]!.id;
    net.run(60_000);
    expect(net.masters().map((m) => m.id)).toEqual([masterBefore]);
    expect(net.runUntil(() => net.converged(5), 10_000)).not.toBeNull();
  });

  it('the master\'s watchdog multiple follows the formula as loss changes', () => {
    const net = boot(3, { seed: 2 });
    expect(net.runUntil(() => net.converged(3), 10_000)).not.toBeNull();
    const master = net.node(ip(11)).member;
    const n = () => master.status(net.now).members.find((m) => m.id === ip(13))!;
    expect(n().watchdogPeriods).toBe(DEFAULT_CORE_CONFIG.minWatchdogPeriods);
    net.memberLoss.set(ip(13), 0.2);
    net.run(60_000);
    const during = n();
    // P converges towards the per-keepalive loss (~0.2 per sent keepalive, counted as gaps); n follows.
    expect(during.loss).toBeGreaterThan(0.1);
    let expected = 20;
    const { minWatchdogPeriods, lossToleranceK } = DEFAULT_CORE_CONFIG;
    for (let k = minWatchdogPeriods; k <= 20; k++) if (k * during.loss ** k < 1 / lossToleranceK) { expected = k; break; }
    expect(during.watchdogPeriods).toBe(expected);
    expect(during.watchdogPeriods).toBeGreaterThanOrEqual(7);
    net.memberLoss.delete(ip(13));
    net.run(120_000);
    expect(n().loss).toBeLessThan(0.01);
    expect(n().watchdogPeriods).toBe(DEFAULT_CORE_CONFIG.minWatchdogPeriods);
  });
});

describe('join approval and configuration', () => {
  it('an application veto keeps a member out with the reason; others join', () => {
    const net = new SimNetwork({ seed: 4 });
    net.add(ip(11), {}, (joiner) => (joiner === ip(13) ? { accepted: false, reason: 'ipsec: peer not in policy' } : { accepted: true, reason: '' }));
    net.add(ip(12));
    net.add(ip(13));
    net.start(ip(11));
    net.run(500);
    net.start(ip(12));
    net.start(ip(13));
    net.run(2000);
    expect(net.node(ip(13)).member.role).toBe('rejected');
    const nak = net.node(ip(11)).trace.find((t) => t.effect.type === 'send' && t.effect.message.type === 'join-reply' && t.effect.message.result === 'nak' && t.effect.message.code === 'application-rejected');
    expect(nak).toBeDefined();
    // The in-progress NAK came first (Figure 8F).
    const replies = net.node(ip(11)).trace.filter((t) => t.effect.type === 'send' && t.effect.to === ip(13) && t.effect.message.type === 'join-reply');
    expect(replies[0]!.effect.type === 'send' && replies[0]!.effect.message.type === 'join-reply' && replies[0]!.effect.message.result === 'nak' && replies[0]!.effect.message.code).toBe('in-progress');
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
    expect(net.node(ip(12)).member.role).toBe('member');
    // The refused member never makes itself master.
    net.run(10_000);
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
  });

  it('a configuration-version mismatch sends EXIT CLUSTER; the member re-joins once its version matches', () => {
    const net = new SimNetwork({ seed: 6 });
    net.add(ip(11));
    net.add(ip(12), { configVersion: 7 });
    net.start(ip(11));
    net.run(500);
    net.start(ip(12));
    net.run(1000);
    expect(net.node(ip(12)).member.role).toBe('waiting-config');
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
    net.event(ip(12), { type: 'config-changed', configVersion: 1 });
    expect(net.runUntil(() => net.converged(2), 3000)).not.toBeNull();
  });
});

describe('operator actions', () => {
  it('drain moves every unit off a member; undrain brings work back', () => {
    const net = boot(3, { seed: 8 });
    expect(net.runUntil(() => net.converged(3), 10_000)).not.toBeNull();
    net.event(ip(11), { type: 'drain', member: ip(12) });
    expect(net.runUntil(() => net.node(ip(12)).member.owned.size === 0, 3000)).not.toBeNull();
    net.run(5000);
    expect(net.node(ip(12)).member.owned.size).toBe(0);
    expect(net.node(ip(11)).member.owned.size + net.node(ip(13)).member.owned.size).toBe(UNIT_COUNT);
    net.event(ip(11), { type: 'undrain', member: ip(12) });
    expect(net.runUntil(() => net.converged(3) && net.node(ip(12)).member.owned.size >= 341, 3000)).not.toBeNull();
  });

  it('a drain survives the death of the master: the next master carries it on from its table', () => {
    const net = boot(4, { seed: 12, coreOverrides: { handoverBeforeAck: true } });
    expect(net.runUntil(() => net.converged(4), 10_000)).not.toBeNull();
    // The drained member holds its hand-overs: the drain is still running when the master dies.
    const drained = net.node(ip(13));
    drained.holdHandovers = true;
    net.event(ip(11), { type: 'drain', member: ip(13) });
    net.run(300);
    expect(drained.handovers.length).toBeGreaterThan(0);
    net.kill(ip(11));
    drained.holdHandovers = false;
    for (const h of drained.handovers) net.event(ip(13), { type: 'handover-done', requestId: h.requestId });
    expect(net.runUntil(() => net.masters().length === 1 && net.masters()[0]!.id !== ip(11) && net.converged(3), 10_000)).not.toBeNull();
    net.run(5000);
    const master = net.masters()[0]!.member;
    const entry = master.status(0).members.find((m) => m.id === ip(13));
    expect(entry?.draining).toBe(true);
    expect(drained.member.owned.size).toBe(0);
    expect(net.node(ip(12)).member.owned.size + net.node(ip(14)).member.owned.size).toBe(UNIT_COUNT);
    // Undrain still works under the new master.
    net.event(master.self, { type: 'undrain', member: ip(13) });
    expect(net.runUntil(() => net.converged(3) && drained.member.owned.size >= 300, 5000)).not.toBeNull();
  });

  it('rebalances by reported load, moving units from the busiest member', () => {
    const net = boot(2, { seed: 9 });
    expect(net.runUntil(() => net.converged(2), 10_000)).not.toBeNull();
    const busy = net.node(ip(12)).member;
    const units = [...busy.owned].slice(0, 4);
    // ip(12) reports four hot units of weight 100 each.
    net.event(ip(12), { type: 'load-report', load: busy.owned.size + 400, busiestUnits: units.map((unit) => ({ unit, weight: 101 })) });
    net.run(2500);
    const a = net.node(ip(11)).member.owned;
    const b = net.node(ip(12)).member.owned;
    expect(a.size + b.size).toBe(UNIT_COUNT);
    // Loads were 512 (unit counts) against 512 + 400: moving two hot units (101 each) narrows the gap
    // to 714 vs 710; light units then even it out (713/711, 712/712). Hot units are spread, not piled.
    expect(units.filter((u) => a.has(u))).toHaveLength(2);
    expect(units.filter((u) => b.has(u))).toHaveLength(2);
  });
});

describe('state sync readiness', () => {
  it('a member gets units only after it reports that it holds the cluster state', () => {
    const net = new SimNetwork({ seed: 31, coreOverrides: { waitForSyncReady: true } });
    net.add(ip(11));
    net.add(ip(12));
    net.start(ip(11));
    net.event(ip(11), { type: 'sync-ready' }); // alone: nothing to receive
    net.run(2000);
    expect(net.node(ip(11)).member.owned.size).toBe(1024);
    net.start(ip(12));
    net.run(5000);
    expect(net.node(ip(12)).member.role).toBe('member');
    expect(net.node(ip(12)).member.owned.size).toBe(0); // joined, but not ready: no work
    net.event(ip(12), { type: 'sync-ready' });
    expect(net.runUntil(() => net.node(ip(12)).member.owned.size === 512, 5000)).not.toBeNull();
  });
});

describe('hand-over before a planned move', () => {
  it('the old owner acknowledges WORK DE-ASSIGN only after its hand-over is done', () => {
    const net = boot(2, { seed: 41, coreOverrides: { handoverBeforeAck: true } });
    expect(net.runUntil(() => net.converged(2), 10_000)).not.toBeNull();
    const member = net.node(ip(12));
    member.holdHandovers = true;
    net.event(ip(11), { type: 'drain', member: ip(12) });
    net.run(2000);
    expect(member.member.owned.size).toBe(0); // it stopped serving at once
    expect(member.handovers).toHaveLength(1);
    const h = member.handovers[0]!;
    expect(h.to).toBe(ip(11));
    expect(h.units).toHaveLength(512);
    // The master still waits: the units are not the master's yet.
    expect(net.node(ip(11)).member.owned.size).toBe(512);
    net.event(ip(12), { type: 'handover-done', requestId: h.requestId });
    expect(net.runUntil(() => net.node(ip(11)).member.owned.size === 1024, 2000)).not.toBeNull();
  });
});

describe('the master hands over its own units too', () => {
  it('moves the master\'s units only after its hand-over is done, holding them meanwhile', () => {
    const net = boot(2, { seed: 43, coreOverrides: { handoverBeforeAck: true } });
    expect(net.runUntil(() => net.converged(2), 10_000)).not.toBeNull();
    const master = net.node(ip(11));
    master.holdHandovers = true;
    net.event(ip(11), { type: 'drain', member: ip(11) });
    net.run(1000);
    expect(master.member.owned.size).toBe(0);
    expect(master.handovers).toHaveLength(1);
    expect(net.node(ip(12)).member.owned.size).toBe(512); // not yet given to the other member
    const view = master.member.dataPlaneView(false);
    expect(view.holding.size).toBe(512);
    net.event(ip(11), { type: 'handover-done', requestId: master.handovers[0]!.requestId });
    expect(net.runUntil(() => net.node(ip(12)).member.owned.size === 1024, 2000)).not.toBeNull();
  });
});
