// What the control-plane tests of MemberNode share: three member addresses, a fixed wall clock, and a
// member configuration with no cluster address (the protocol alone, over the in-memory network).
import { parseMemberConfig } from '../../src/config/config.js';

export const IPS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
export const WALL0 = Date.parse('2026-06-01T00:00:00Z');

export function config(ip: string) {
  return parseMemberConfig({
    cluster: { name: 'test', clusterIp: '198.51.100.10' },
    member: { address: ip, interface: 'eth0' },
    pki: { certificate: 'x', key: 'x', ca: 'x' },
    clusterAddress: { mode: 'none' },
    logLevel: 'error',
  });
}
