// tunnels.wireguard in the member configuration: defaults, and every bad key, prefix and overlap refused
// with the field named (docs/configuration.md).
import { describe, expect, it } from 'vitest';
import { memberConfigProblems } from '../src/config-check.js';

const K1 = Buffer.alloc(32, 1).toString('base64');
const K2 = Buffer.alloc(32, 2).toString('base64');

function config(wireguard: Record<string, unknown>): Record<string, any> {
  return {
    cluster: { name: 'edge', clusterIp: '198.51.100.10' },
    member: { address: '192.0.2.11', interface: 'eth0' },
    pki: { certificate: 'member.crt', key: 'member.key', ca: 'ca.crt' },
    dataplane: { interfaces: [{ name: 'eth0', clusterIps: ['198.51.100.10'] }] },
    tunnels: { wireguard: { privateKeyFile: 'wg.key', ...wireguard } },
  };
}

describe('tunnels.wireguard', () => {
  it('fills the defaults: enabled, port 51820, interface gwwg0, MTU 1420, no peers', () => {
    const c = config({});
    expect(memberConfigProblems(c)).toEqual([]);
    expect(c.tunnels.wireguard).toMatchObject({ enabled: true, listenPort: 51820, interface: 'gwwg0', mtu: 1420, underLoadPerSecond: 1000, peers: [] });
  });

  it('accepts peers with disjoint prefixes', () => {
    expect(memberConfigProblems(config({ peers: [{ publicKey: K1, allowedIps: ['203.0.113.64/28', '10.0.0.0/8'] }, { publicKey: K2, allowedIps: ['203.0.113.80/28'] }] }))).toEqual([]);
  });

  it('names every problem: key length, bad prefix, host bits, overlap between peers and within one, the same peer twice', () => {
    const problems = memberConfigProblems(
      config({
        peers: [
          { publicKey: K1, allowedIps: ['203.0.113.64/26', '203.0.113.70/32'] },
          { publicKey: K2, allowedIps: ['203.0.113.80/28', '203.0.113.65/28', '203.0.113.300/32', '10.1.0.0/33'] },
          { publicKey: `${Buffer.alloc(31, 3).toString('base64')}AAAA`.slice(0, 44), allowedIps: ['198.51.100.0/24'] },
          { publicKey: K1, allowedIps: ['192.0.2.0/24'] },
        ],
      }),
    );
    expect(problems).toEqual([
      'tunnels.wireguard.peers[0].allowedIps[1]: 203.0.113.70/32 overlaps 203.0.113.64/26 of the same peer',
      'tunnels.wireguard.peers[1].allowedIps[0]: 203.0.113.80/28 overlaps 203.0.113.64/26 of tunnels.wireguard.peers[0] (a destination must belong to one peer)',
      'tunnels.wireguard.peers[1].allowedIps[1]: 203.0.113.65/28 has host bits set (the prefix is 203.0.113.64/28)',
      'tunnels.wireguard.peers[1].allowedIps[2]: 203.0.113.300/32 must be an IPv4 prefix a.b.c.d/n (n 0..32)',
      'tunnels.wireguard.peers[1].allowedIps[3]: 10.1.0.0/33 must be an IPv4 prefix a.b.c.d/n (n 0..32)',
      'tunnels.wireguard.peers[2].publicKey: must be base64 of 32 bytes (44 characters ending in "=", as wg genkey / wg pubkey print)',
      'tunnels.wireguard.peers[3].publicKey: the same peer as tunnels.wireguard.peers[0]',
    ]);
  });

  it('needs the data plane when enabled (the cluster IP must be on every member)', () => {
    const c = config({});
    delete c.dataplane;
    expect(memberConfigProblems(c)).toEqual([expect.stringMatching(/^tunnels\.wireguard: needs the dataplane section/)]);
    const off = config({ enabled: false });
    delete off.dataplane;
    expect(memberConfigProblems(off)).toEqual([]);
  });

  it('refuses a short key, a missing private key file, no allowed IPs and unknown fields through the schema', () => {
    const c = config({ peers: [{ publicKey: 'abc', allowedIps: [] }], listenPort: 0, color: 'red' });
    delete c.tunnels.wireguard.privateKeyFile;
    const problems = memberConfigProblems(c);
    expect(problems).toContain('tunnels.wireguard.privateKeyFile: required field is missing');
    expect(problems).toContain('tunnels.wireguard.color: unknown field (check its spelling against docs/configuration.md)');
    expect(problems.some((p) => p.startsWith('tunnels.wireguard.peers.0.publicKey'))).toBe(true);
    expect(problems.some((p) => p.startsWith('tunnels.wireguard.peers.0.allowedIps'))).toBe(true);
    expect(problems.some((p) => p.startsWith('tunnels.wireguard.listenPort'))).toBe(true);
  });
});
