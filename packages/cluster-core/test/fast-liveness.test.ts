// The protocol's side of fast liveness (the native heartbeat thread reports a peer silent with a
// peer-silent event): a report is acted on once the peer's keepalives are late by a period as well, so
// a master's or a member's death costs the heartbeat's detection time instead of the keepalive watchdog;
// a report about a peer whose keepalives keep coming changes nothing.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CORE_CONFIG, SimNetwork, VOUCHED_WATCHDOG_FACTOR, watchdogMs } from '../src/index.js';

const ip = (i: number) => `192.0.2.${i}`;
const WATCHDOG = watchdogMs(DEFAULT_CORE_CONFIG.minWatchdogPeriods, DEFAULT_CORE_CONFIG.keepalivePeriodMs);
/** When fast liveness and the keepalives agree: 4.5 heartbeats of 5 ms, and a keepalive of 40 ms late (plus slack). */
const DETECT = 50;

function boot(n: number, seed: number): SimNetwork {
  const net = new SimNetwork({ seed, tickMs: 5 });
  for (let i = 1; i <= n; i++) net.add(ip(i + 10));
  for (let i = 1; i <= n; i++) net.start(ip(i + 10));
  expect(net.runUntil(() => net.converged(n), 10_000)).not.toBeNull();
  net.run(2000);
  return net;
}

describe('fast liveness reports (peer-silent)', () => {
  it('a dead master: the named successor takes office at the report, long before the watchdog', () => {
    const net = boot(3, 1);
    const epoch = net.node(ip(12)).member.epoch;
    net.kill(ip(11));
    net.run(DETECT);
    for (const id of [ip(12), ip(13)]) net.event(id, { type: 'peer-silent', peer: ip(11), silentMs: DETECT });
    const took = net.runUntil(() => net.converged(2), 2000);
    expect(took).not.toBeNull();
    expect(DETECT + took!).toBeLessThan(WATCHDOG / 2);
    expect(net.masters().map((m) => m.id)).toEqual([ip(12)]);
    expect(net.node(ip(12)).member.epoch).toBe(epoch + 1);
    expect(net.node(ip(12)).member.counters['liveness.master-dead']).toBe(1);
    expect(net.node(ip(12)).member.counters['watchdog.master-dead'] ?? 0).toBe(0);
  });

  it('a dead member: the master reassigns its units at the report', () => {
    const net = boot(3, 2);
    net.kill(ip(13));
    net.run(DETECT);
    net.event(ip(11), { type: 'peer-silent', peer: ip(13), silentMs: DETECT });
    const took = net.runUntil(() => net.converged(2), 2000);
    expect(took).not.toBeNull();
    expect(DETECT + took!).toBeLessThan(WATCHDOG / 2);
    expect(net.node(ip(11)).member.counters['liveness.member-dead']).toBe(1);
  });

  it('a report about a peer whose keepalives keep coming is withdrawn by them: nothing changes', () => {
    const net = boot(3, 3);
    const owned = net.alive().map((n) => n.member.owned.size);
    // Fast liveness is wrong (its path is broken, the protocol's is not): every member hears it.
    net.event(ip(11), { type: 'peer-silent', peer: ip(13), silentMs: DETECT });
    net.event(ip(12), { type: 'peer-silent', peer: ip(11), silentMs: DETECT });
    net.event(ip(13), { type: 'peer-silent', peer: ip(11), silentMs: DETECT });
    net.run(2000);
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
    expect(net.converged(3)).toBe(true);
    expect(net.alive().map((n) => n.member.owned.size)).toEqual(owned);
    for (const n of net.alive()) expect(n.member.counters['liveness.master-dead'] ?? 0).toBe(0);
  });

  it('a report about a stranger, or while joining, is ignored and counted', () => {
    const net = boot(2, 4);
    net.event(ip(11), { type: 'peer-silent', peer: ip(99), silentMs: DETECT });
    net.event(ip(12), { type: 'peer-silent', peer: ip(99), silentMs: DETECT });
    expect(net.node(ip(11)).member.counters['liveness.ignored']).toBe(1);
    expect(net.node(ip(12)).member.counters['liveness.ignored']).toBe(1);
    expect(net.converged(2)).toBe(true);
  });

  it.each([true, false])('keepalives lost for twice the watchdog: a member vouched for by its heartbeats stays (vouched %s)', (vouched) => {
    const net = boot(3, 5);
    if (vouched) net.event(ip(11), { type: 'peer-alive', peer: ip(13) });
    // The member's keepalives do not reach the master (its event loop stalls, or they are lost) for
    // two watchdogs; its heartbeats (native, not simulated) still arrive: the driver reported it alive.
    net.network.drop = (d) => d.from === ip(13) && d.to === ip(11);
    net.run(2 * WATCHDOG);
    net.network.drop = () => false;
    net.run(500);
    const master = net.node(ip(11)).member;
    if (vouched) {
      expect(2 * WATCHDOG).toBeLessThan(VOUCHED_WATCHDOG_FACTOR * WATCHDOG);
      expect(master.counters['watchdog.member-dead'] ?? 0).toBe(0);
      expect(net.converged(3)).toBe(true);
      expect(net.node(ip(13)).member.owned.size).toBeGreaterThan(0);
    } else {
      expect(master.counters['watchdog.member-dead']).toBe(1);
    }
  });

  it('a vouched member whose keepalives stop for good is still declared dead, at the longer watchdog', () => {
    const net = boot(3, 6);
    net.event(ip(11), { type: 'peer-alive', peer: ip(13) });
    net.network.drop = (d) => d.from === ip(13) && d.to === ip(11);
    net.run(VOUCHED_WATCHDOG_FACTOR * WATCHDOG + 200);
    expect(net.node(ip(11)).member.counters['watchdog.member-dead-vouched']).toBe(1);
  });

  it.each([true, false])('a successor slow to take office: a member its heartbeats reach waits the vouched watchdog (vouched %s)', (vouched) => {
    const net = boot(3, 7);
    if (vouched) net.event(ip(13), { type: 'peer-alive', peer: ip(12) });
    // The master dies; the successor (12) is alive but nothing it sends reaches 13 for 500 ms (a busy
    // host, a slow take-over); 13 hears of the death at once.
    net.network.drop = (d) => d.from === ip(12) && d.to === ip(13);
    net.kill(ip(11));
    net.run(DETECT);
    net.event(ip(13), { type: 'peer-silent', peer: ip(11), silentMs: DETECT });
    net.run(500 - DETECT);
    net.network.drop = () => false;
    expect(net.runUntil(() => net.converged(2), 3000)).not.toBeNull();
    const c = net.node(ip(13)).member.counters;
    if (vouched) {
      expect(c['succession.successor-silent'] ?? 0).toBe(0);
      expect(c['succession.followed']).toBe(1);
    } else {
      // Unvouched, the shortest watchdog ends the wait: the old election path.
      expect(c['succession.successor-silent']).toBe(1);
    }
  });
});
