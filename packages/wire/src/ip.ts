/**
 * IPv4 text <-> number conversions and the member-id order, defined once for every package (through
 * ipaddr.js). A member id is a dotted quad: four decimal parts 0..255, no leading zeros.
 */
import ipaddr from 'ipaddr.js';

/** A strict dotted quad (what node:net's isIPv4 accepts; not the classful or hexadecimal forms). */
export function isIpv4(text: string): boolean {
  return typeof text === 'string' && ipaddr.IPv4.isValidFourPartDecimal(text);
}

/** The four octets of a dotted quad. Throws on anything else (check with isIpv4 first). */
export function ipv4Octets(ip: string): [number, number, number, number] {
  return ipaddr.IPv4.parse(ip).octets as [number, number, number, number];
}

/** A dotted quad as an unsigned 32-bit number (network order value). */
export function ipv4ToNumber(ip: string): number {
  const [a, b, c, d] = ipv4Octets(ip);
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/** An unsigned 32-bit number as a dotted quad. */
export function numberToIpv4(n: number): string {
  return new ipaddr.IPv4([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]).toString();
}

/** The broadcast address of `address`/`prefixLength`. */
export function ipv4Broadcast(address: string, prefixLength: number): string {
  return ipaddr.IPv4.broadcastAddressFromCIDR(`${address}/${prefixLength}`).toString();
}

/** Orders member ids by address, lower first (the tie-breaker's order, Figure 8A). */
export function compareMemberIds(a: string, b: string): number {
  return ipv4ToNumber(a) - ipv4ToNumber(b);
}
