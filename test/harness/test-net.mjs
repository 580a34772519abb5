// The only addresses the harness configures or pings: TEST-NET-1/2/3 (RFC 5737). IPv4 text is
// parsed by @gwcluster/wire (ip.ts), the one IPv4 parser of the project.

import { isIpv4, ipv4ToNumber } from '@gwcluster/wire';

/** TEST-NET-1, TEST-NET-2, TEST-NET-3 (RFC 5737). */
const TEST_NETS = [
  { base: ipv4ToNumber('192.0.2.0'), bits: 24 },
  { base: ipv4ToNumber('198.51.100.0'), bits: 24 },
  { base: ipv4ToNumber('203.0.113.0'), bits: 24 },
];

/** True when `ip` (a dotted IPv4 address, no prefix) is inside 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24. */
export function isTestNetAddress(ip) {
  if (!isIpv4(ip)) return false;
  const n = ipv4ToNumber(ip);
  return TEST_NETS.some(({ base, bits }) => ((n ^ base) >>> (32 - bits)) === 0);
}

/**
 * Validates "a.b.c.d/len" (len defaults to 32): the address must be in a TEST-NET range and the
 * prefix must not reach outside it (len >= 24). Returns { ip, len, cidr }.
 */
export function parseTestNetCidr(cidr) {
  if (typeof cidr !== 'string') throw new TypeError(`address must be a string, got ${typeof cidr}`);
  const [ip, lenStr, ...rest] = cidr.split('/');
  const len = lenStr === undefined ? 32 : Number(lenStr);
  if (rest.length || !ip || !Number.isInteger(len) || len < 0 || len > 32 || !isIpv4(ip)) {
    throw new Error(`invalid IPv4 address/prefix: ${JSON.stringify(cidr)}`);
  }
  if (!isTestNetAddress(ip)) {
    throw new Error(`address ${cidr} is outside the TEST-NET ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)`);
  }
  if (len < 24) throw new Error(`prefix length of ${cidr} reaches outside its TEST-NET /24`);
  return { ip, len, cidr: `${ip}/${len}` };
}
