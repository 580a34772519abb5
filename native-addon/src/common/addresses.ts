// Cluster IP addresses in the compact form shared by the TypeScript reference and the C++ filter.
import { isIPv4, isIPv6 } from 'node:net';

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

/** a.b.c.d -> a<<24|b<<16|c<<8|d (unsigned). Throws TypeError naming `argName` on anything else. */
export function parseIpv4(text: string, argName = 'address'): number {
  if (!isIPv4(text)) throw new TypeError(`${argName}: expected a dotted-quad IPv4 address, got ${JSON.stringify(text)}`);
  const [a, b, c, d] = text.split('.').map(Number) as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/** An IPv6 address (with :: and an optional embedded IPv4 tail, no zone) -> 16 bytes. */
export function parseIpv6(text: string, argName = 'address'): Uint8Array {
  if (!isIPv6(text) || text.includes('%')) {
    throw new TypeError(`${argName}: expected an IPv6 address without a zone, got ${JSON.stringify(text)}`);
  }
  let s = text;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    // An embedded IPv4 tail (::ffff:192.0.2.1) becomes its two hex groups.
    const v4 = parseIpv4(s.slice(lastColon + 1), argName);
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const groupsFrom = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const dbl = s.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    const head = groupsFrom(s.slice(0, dbl));
    const rest = groupsFrom(s.slice(dbl + 2));
    const fill = 8 - head.length - rest.length;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  } else {
    groups = groupsFrom(s);
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/** IPv6 bytes -> RFC 5952 text (longest run of >= 2 zero groups compressed). */
export function formatIpv6(b: Uint8Array, offset = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[offset + 2 * i]! << 8) | b[offset + 2 * i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
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
  if (isIPv4(a)) return { family: 4, value: parseIpv4(a, argName) };
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
    } else if (typeof a === 'string' && isIPv4(a)) {
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
