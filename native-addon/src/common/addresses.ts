// Cluster IP addresses in the compact form shared by the TypeScript reference and the C++ filter, and
// the text <-> bytes conversions of IPv4/IPv6 addresses (through ipaddr.js) every component uses.
import ipaddr from 'ipaddr.js';

/**
 * The destination addresses that are "a cluster IP" (003, Figure 9: "cluster IP? -> work-set filter").
 * `v4`: IPv4 addresses as unsigned 32-bit network-order values (a.b.c.d = a<<24|b<<16|c<<8|d).
 * `v6`: IPv6 addresses, 16 bytes each, concatenated.
 */
export interface ClusterAddresses {
  readonly v4: Uint32Array;
  readonly v6: Uint8Array;
}

/** Accepted forms: a Set or array of address strings and IPv4 numbers, or an already parsed set. */
export type ClusterIpsInput = ReadonlySet<string | number> | readonly (string | number)[] | ClusterAddresses;

const ACCEPTED = 'a Set or array of IPv4/IPv6 address strings or IPv4 numbers (0..2^32-1), or a ClusterAddresses';

export function isClusterAddresses(x: unknown): x is ClusterAddresses {
  return (
    typeof x === 'object' &&
    x !== null &&
    (x as ClusterAddresses).v4 instanceof Uint32Array &&
    (x as ClusterAddresses).v6 instanceof Uint8Array &&
    (x as ClusterAddresses).v6.length % 16 === 0
  );
}

/**
 * A dotted quad: four decimal parts 0..255 without leading zeros (what node:net isIPv4 accepts; not
 * the classful or hexadecimal forms ipaddr.js's IPv4.isValid also takes).
 */
export function isIpv4Text(text: unknown): text is string {
  return typeof text === 'string' && ipaddr.IPv4.isValidFourPartDecimal(text);
}

/** An IPv6 address without a zone; an embedded IPv4 tail (::ffff:192.0.2.1) must be a dotted quad. */
export function isIpv6Text(text: unknown): text is string {
  if (typeof text !== 'string' || text.includes('%') || !ipaddr.IPv6.isValid(text)) return false;
  const tail = text.slice(text.lastIndexOf(':') + 1);
  return !tail.includes('.') || isIpv4Text(tail);
}

/** a.b.c.d -> a<<24|b<<16|c<<8|d (unsigned). Throws TypeError naming `argName` on anything else. */
export function parseIpv4(text: string, argName = 'address'): number {
  if (!isIpv4Text(text)) throw new TypeError(`${argName}: expected a dotted-quad IPv4 address, got ${JSON.stringify(text)}`);
  const [a, b, c, d] = ipaddr.IPv4.parse(text).octets as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/** An IPv6 address (with :: and an optional embedded IPv4 tail, no zone) -> 16 bytes. */
export function parseIpv6(text: string, argName = 'address'): Uint8Array {
  if (!isIpv6Text(text)) {
    throw new TypeError(`${argName}: expected an IPv6 address without a zone, got ${JSON.stringify(text)}`);
  }
  // An embedded IPv4 tail becomes its two hex groups first: ipaddr.js reads '::a.b.c.d' as the mapped
  // address ::ffff:a.b.c.d, RFC 4291 2.5.5.1 (and node:net) as ::a.b.c.d.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  let groups = text;
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail, argName);
    groups = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  return Uint8Array.from(ipaddr.IPv6.parse(groups).toByteArray());
}

/** a<<24|b<<16|c<<8|d -> a.b.c.d. */
export function formatIpv4(n: number): string {
  return new ipaddr.IPv4([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]).toString();
}

/** IPv6 bytes (16 from `offset`) -> RFC 5952 text (the first longest run of >= 2 zero groups compressed). */
export function formatIpv6(b: Uint8Array, offset = 0): string {
  return new ipaddr.IPv6(Array.from(b.subarray(offset, offset + 16))).toRFC5952String();
}

/** The XOR of the four big-endian 32-bit words of an IPv6 address: its contribution to a key. */
export function foldIpv6(bytes: Uint8Array, offset = 0): number {
  let x = 0;
  for (let i = 0; i < 16; i += 4) {
    x ^= (bytes[offset + i]! << 24) | (bytes[offset + i + 1]! << 16) | (bytes[offset + i + 2]! << 8) | bytes[offset + i + 3]!;
  }
  return x >>> 0;
}

/** A key contribution of an address given as text or an IPv4 number: IPv4 value, or folded IPv6. */
export function addressValue(a: string | number, argName: string): { family: 4 | 6; value: number } {
  if (typeof a === 'number') {
    if (!Number.isInteger(a) || a < 0 || a > 0xffffffff) {
      throw new TypeError(`${argName}: expected an IPv4 number 0..4294967295 or an address string, got ${a}`);
    }
    return { family: 4, value: a >>> 0 };
  }
  if (typeof a !== 'string') throw new TypeError(`${argName}: expected an address string or an IPv4 number, got ${typeof a}`);
  if (isIpv4Text(a)) return { family: 4, value: parseIpv4(a, argName) };
  return { family: 6, value: foldIpv6(parseIpv6(a, argName)) };
}

/** Parses the cluster IPs into the compact form. Parse once and pass the result on hot paths. */
export function parseClusterIps(input: ClusterIpsInput, argName = 'clusterIps'): ClusterAddresses {
  if (isClusterAddresses(input)) return input;
  const isSet = input instanceof Set;
  if (!isSet && !Array.isArray(input)) throw new TypeError(`${argName}: expected ${ACCEPTED}`);
  const v4: number[] = [];
  const v6: Uint8Array[] = [];
  for (const a of input as Iterable<unknown>) {
    if (typeof a === 'number') {
      v4.push(addressValue(a, `${argName} entry`).value);
    } else if (isIpv4Text(a)) {
      v4.push(parseIpv4(a, `${argName} entry`));
    } else if (typeof a === 'string') {
      v6.push(parseIpv6(a, `${argName} entry`));
    } else {
      throw new TypeError(`${argName}: entries must be address strings or IPv4 numbers, got ${typeof a}`);
    }
  }
  const v6bytes = new Uint8Array(16 * v6.length);
  v6.forEach((a, i) => v6bytes.set(a, 16 * i));
  return { v4: Uint32Array.from(v4), v6: v6bytes };
}
