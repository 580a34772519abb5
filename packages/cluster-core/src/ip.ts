import type { MemberId } from '@gwcluster/wire';

/** IPv4 dotted quad as an unsigned 32-bit number (network order value). */
export function ipv4ToNumber(ip: MemberId): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** Orders member ids by address, lower first (the tie-breaker's order, Figure 8A). */
export function compareMemberIds(a: MemberId, b: MemberId): number {
  return ipv4ToNumber(a) - ipv4ToNumber(b);
}
