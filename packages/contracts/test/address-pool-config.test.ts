// cluster.addressPool and cluster.memberAddressTakeover in the member configuration: defaults, and every
// bad pool refused with the field named (docs/configuration.md).
import { describe, expect, it } from 'vitest';
import { addressPoolClusterProblems, memberConfigProblems } from '../src/config-check.js';

function config(cluster: Record<string, unknown>): Record<string, unknown> {
  return {
    cluster: { name: 'edge', clusterIp: '198.51.100.10', ...cluster },
    member: { address: '192.0.2.11', interface: 'eth0' },
    pki: { certificate: 'member.crt', key: 'member.key', ca: 'ca.crt' },
  };
}

describe('cluster.addressPool', () => {
  it('defaults to an empty pool and no takeover', () => {
    const c = config({});
    expect(memberConfigProblems(c)).toEqual([]);
    expect((c.cluster as Record<string, unknown>).addressPool).toEqual([]);
    expect((c.cluster as Record<string, unknown>).memberAddressTakeover).toBe(false);
  });

  it('accepts addresses on the member interface in its subnet, and on other interfaces', () => {
    expect(memberConfigProblems(config({ addressPool: [{ address: '192.0.2.101', interface: 'eth0' }, { address: '203.0.113.5', interface: 'eth1' }] }))).toEqual([]);
  });

  it('names every problem: a duplicate, the cluster IP, the own address, outside the subnet, a bad address, an unknown field', () => {
    const problems = memberConfigProblems(
      config({
        addressPool: [
          { address: '192.0.2.101', interface: 'eth0' },
          { address: '192.0.2.101', interface: 'eth0' },
          { address: '198.51.100.10', interface: 'eth1' },
          { address: '192.0.2.11', interface: 'eth0' },
          { address: '203.0.113.7', interface: 'eth0' },
        ],
      }),
    );
    expect(problems).toEqual([
      'cluster.addressPool[1].address: 192.0.2.101 is listed twice (also cluster.addressPool[0])',
      'cluster.addressPool[2].address: 198.51.100.10 is the cluster IP (cluster.clusterIp); a pool address must be another address',
      "cluster.addressPool[3].address: 192.0.2.11 is this member's own address (member.address); a pool address must be another address",
      'cluster.addressPool[4].address: 203.0.113.7 is outside the subnet of eth0 (192.0.2.11/24)',
    ]);
    expect(memberConfigProblems(config({ addressPool: [{ address: '192.0.2.300', interface: 'eth0' }] }))).toEqual(['cluster.addressPool.0.address: must be a dotted-quad IPv4 address']);
    expect(memberConfigProblems(config({ addressPool: [{ address: '192.0.2.101', interface: 'eth0', mac: 'x' }] }))[0]).toMatch(/cluster\.addressPool\.0\.mac: unknown field/);
  });
});

describe('cluster.addressPool against the running cluster (addressPoolClusterProblems)', () => {
  const subnets = [
    { iface: 'eth0', address: '192.0.2.11', prefixLength: 24 },
    { iface: 'eth1', address: '203.0.113.1', prefixLength: 24 },
    { iface: 'lo', address: '127.0.0.1', prefixLength: 8 },
  ];
  it('accepts addresses in their interface subnet that are nobody\'s own', () => {
    expect(addressPoolClusterProblems([{ address: '192.0.2.101', interface: 'eth0' }, { address: '203.0.113.5', interface: 'eth1' }], ['192.0.2.11', '192.0.2.12'], subnets, '192.0.2.11')).toEqual([]);
  });
  it("names another member's own address, an address outside its interface's subnets, and an interface without an address", () => {
    expect(
      addressPoolClusterProblems(
        [
          { address: '192.0.2.12', interface: 'eth0' },
          { address: '203.0.113.9', interface: 'eth0' },
          { address: '198.51.100.9', interface: 'eth1' },
          { address: '192.0.2.102', interface: 'eth7' },
        ],
        ['192.0.2.11', '192.0.2.12'],
        subnets,
        '192.0.2.11',
      ),
    ).toEqual([
      'cluster.addressPool[0].address: 192.0.2.12 is the own address of member 192.0.2.12; a pool address must be another address',
      'cluster.addressPool[1].address: 203.0.113.9 is outside every subnet of eth0 on 192.0.2.11 (192.0.2.11/24); it is in the subnet of eth1',
      'cluster.addressPool[2].address: 198.51.100.9 is outside every subnet of eth1 on 192.0.2.11 (203.0.113.1/24)',
      'cluster.addressPool[3].interface: eth7 has no IPv4 address on 192.0.2.11 (interfaces with one: eth0, eth1, lo)',
    ]);
  });
  it('checks only the members when the host is not known', () => {
    expect(addressPoolClusterProblems([{ address: '203.0.113.9', interface: 'eth0' }], ['192.0.2.11'], null)).toEqual([]);
  });
});
