// A member whose own event loop stalled judges nobody by the silence it did not listen to: on the first
// tick after the stall the watchdogs wait, the keepalives that arrived meanwhile are read, and only then
// is silence judged (SimNetwork.stall: timers before I/O, as in Node.js).
import { describe, expect, it } from 'vitest';
import { DEFAULT_CORE_CONFIG, SimNetwork, watchdogMs } from '../src/index.js';

const ip = (i: number) => `192.0.2.${i}`;
const WATCHDOG = watchdogMs(DEFAULT_CORE_CONFIG.minWatchdogPeriods, DEFAULT_CORE_CONFIG.keepalivePeriodMs);

function boot(n: number, seed: number): SimNetwork {
  const net = new SimNetwork({ seed });
  for (let i = 1; i <= n; i++) net.add(ip(i + 10));
  for (let i = 1; i <= n; i++) net.start(ip(i + 10));
  expect(net.runUntil(() => net.converged(n), 10_000)).not.toBeNull();
  net.run(2000);
  return net;
}

describe("a member's own stall", () => {
  it('the master stalls for twice the watchdog: it removes nobody, and the cluster stays as it was', () => {
    const net = boot(3, 1);
    const owned = net.alive().map((n) => n.member.owned.size);
    net.stall(ip(11), 2 * WATCHDOG);
    net.run(2 * WATCHDOG + 500);
    const master = net.node(ip(11)).member;
    expect(master.counters['watchdog.member-dead'] ?? 0).toBe(0);
    expect(master.counters['watchdog.deferred-late-tick']).toBeGreaterThanOrEqual(1);
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
    expect(net.converged(3)).toBe(true);
    expect(net.alive().map((n) => n.member.owned.size)).toEqual(owned);
  });

  it('a member stalls for twice the watchdog: it does not declare its live master dead', () => {
    const net = boot(3, 2);
    net.stall(ip(13), 2 * WATCHDOG);
    net.run(2 * WATCHDOG + 500);
    expect(net.node(ip(13)).member.counters['watchdog.master-dead'] ?? 0).toBe(0);
    // The master did not hear it for twice the watchdog: it removed it (that is the protocol), and it is back.
    expect(net.runUntil(() => net.converged(3), 5000)).not.toBeNull();
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
  });
});
