// What the failover measurements share (scripts/measure-failover.mjs, scripts/measure-failover-compare.mjs):
// the three members' addresses, the client and server addresses of the paced TCP connections (as in the
// failover e2e test: the flows' units fall in every member's share of the table), the soak client, the
// work unit of a client>server pair, and a percentile.
import { fileURLToPath } from 'node:url';

export const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
export const LOCALS = Array.from({ length: 20 }, (_, i) => `198.51.100.${30 + i * 11}`);
export const SERVERS = ['192.0.2.100', '203.0.113.100'];
export const SOAK = fileURLToPath(new URL('../test/e2e/tools/soak.mjs', import.meta.url));

const { classifyFlow } = await import('../native-addon/dist/index.js');

/** The work unit of a forwarded TCP flow "src>dst". */
export const unitOf = (pair) => {
  const [src, dst] = pair.split('>');
  return classifyFlow({ proto: 'tcp', src, dst, forwarding: true }).unit;
};

/** The p-th percentile (0..1) of xs, or null when empty. */
export const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : null;
};
