// A member must never become master because it cannot take part (issue 10, defect 4): while it hears
// an authenticated MASTER KEEPALIVE it keeps joining and never offers.
import { describe, expect, it } from 'vitest';
import { SimNetwork } from '../src/index.js';

const ip = (i: number) => `192.0.2.${i}`;

describe('a joining member that hears a live master', () => {
  it('never offers nor takes office while everything it sends is lost, and joins once it gets through', () => {
    const net = new SimNetwork({ seed: 3 });
    for (const i of [11, 12]) net.add(ip(i));
    for (const i of [11, 12]) net.start(ip(i));
    expect(net.runUntil(() => net.converged(2), 5000)).not.toBeNull();
    // Member 13 hears everyone, but nothing it sends arrives (its JOIN REQUESTs, its offers).
    net.network.drop = (d) => d.from === ip(13);
    net.add(ip(13));
    net.start(ip(13));
    net.run(5000);
    const deaf = net.node(ip(13));
    expect(deaf.member.role).toBe('joining');
    expect(deaf.trace.some((t) => t.effect.type === 'send' && t.effect.message.type === 'master-offer')).toBe(false);
    expect(deaf.member.counters['join.master-alive']).toBeGreaterThan(10);
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
    net.network.drop = () => false;
    expect(net.runUntil(() => net.converged(3), 5000)).not.toBeNull();
    expect(net.masters().map((m) => m.id)).toEqual([ip(11)]);
  });

  it('offers once the master has been silent for 2.5 keepalive periods', () => {
    const net = new SimNetwork({ seed: 4 });
    net.add(ip(11));
    net.start(ip(11));
    expect(net.runUntil(() => net.converged(1), 5000)).not.toBeNull();
    net.network.drop = (d) => d.from === ip(12);
    net.add(ip(12));
    net.start(ip(12));
    net.run(1000);
    expect(net.node(ip(12)).member.role).toBe('joining');
    net.kill(ip(11));
    net.run(600);
    expect(net.node(ip(12)).member.role).toBe('master');
  });
});
