import { describe, expect, it } from 'vitest';
import { ENGINE_ACCEPT_MARK, forwardRules, iptablesRestoreInput, iptablesRules, type NetfilterPlan } from '../../src/dataplane/netfilter.js';

const plan: NetfilterPlan = {
  interfaces: [
    { name: 'eth0', clusterIps: ['192.0.2.1'] },
    { name: 'eth1', clusterIps: ['198.51.100.1'] },
  ],
  method: 'master-forward',
  ownAddresses: ['192.0.2.11'],
  queueNum: 3,
  forwarding: true,
};

describe('netfilter rules for a dead daemon', () => {
  it('drop (methods 2 and 3, or chosen): one queue rule without bypass, no FORWARD guard', () => {
    const rules = iptablesRules(plan).map((r) => r.join(' '));
    expect(rules.at(-1)).toBe('-A GWCLUSTER -j NFQUEUE --queue-num 3');
    expect(rules.some((r) => r.includes('bypass'))).toBe(false);
    expect(iptablesRestoreInput(plan)).not.toContain('*filter');
  });

  it('route-established: a cluster IP is queued without bypass, routed traffic with it, and the guard goes in in the same commit', () => {
    const p = { ...plan, routeEstablishedWhenDead: true };
    const rules = iptablesRules(p).map((r) => r.join(' '));
    expect(rules.slice(-3)).toEqual([
      '-A GWCLUSTER -d 192.0.2.1/32 -j NFQUEUE --queue-num 3',
      '-A GWCLUSTER -d 198.51.100.1/32 -j NFQUEUE --queue-num 3',
      '-A GWCLUSTER -j NFQUEUE --queue-num 3 --queue-bypass',
    ]);
    const guard = forwardRules(p).map((r) => r.join(' '));
    expect(guard).toEqual([
      `-A GWCLUSTER-DEAD -m mark --mark 0x${ENGINE_ACCEPT_MARK.toString(16)}/0x${ENGINE_ACCEPT_MARK.toString(16)} -j RETURN`,
      '-A GWCLUSTER-DEAD -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN',
      '-A GWCLUSTER-DEAD -j DROP',
    ]);
    const input = iptablesRestoreInput(p);
    expect(input.indexOf('*filter')).toBeLessThan(input.indexOf('*raw')); // the guard before the bypass
    expect(forwardRules({ ...p, passMark: 0x10000000 }).map((r) => r.join(' '))).toContain('-A GWCLUSTER-DEAD -m mark --mark 0x10000000/0x10000000 -j RETURN');
  });
});
