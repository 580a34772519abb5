// A tick that comes more than a keepalive period after the previous one (the member's own event loop
// stalled) judges no silence: the watchdogs wait for the next tick, after the driver has read what
// arrived meanwhile (docs/protocol.md, "Silence is judged on a tick that came on time").
import { describe, expect, it } from 'vitest';
import { SimNetwork } from '../src/index.js';

const ip = (i: number) => `192.0.2.${i}`;

describe("a member's own stall", () => {
  it('a member dies while the master stalls: it is removed on the tick after the late one, not on the late one', () => {
    const net = new SimNetwork({ seed: 1 });
    for (const i of [11, 12, 13]) net.add(ip(i));
    for (const i of [11, 12, 13]) net.start(ip(i));
    expect(net.runUntil(() => net.converged(3), 10_000)).not.toBeNull();
    net.run(2000);
    net.kill(ip(13));
    const resumeAt = net.now + 600;
    net.stall(ip(11), 600);
    net.run(800);
    const master = net.node(ip(11));
    const removal = master.notifications.find((n) => n.left.includes(ip(13)));
    expect(removal).toBeDefined();
    expect(master.member.counters['watchdog.deferred-late-tick']).toBeGreaterThanOrEqual(1);
    // The first tick after the stall (at resumeAt) was late: the removal waited for the next one.
    expect(removal!.at).toBeGreaterThanOrEqual(resumeAt + 10);
    expect(net.converged(2)).toBe(true);
  });
});
