// Work follows traffic (sim/spread.ts): flows land on work units by the filter function; with
// unitAssignment 'first-packet' and the rebalance on measured packets and bytes, each member carries a
// fair share of the flows and bytes, and an elephant flow does not pull other flows onto its member.
import { describe, expect, it } from 'vitest';
import { filterKey, workUnitOfKey } from '../../../../native-addon/src/filter/reference.js';
import { runSpread, spreadOf, type SpreadFlow } from '../../src/sim/spread.js';

const ipv4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
/** Flow i: 400..600 packets/s of 1000 bytes (about 4 Mbit/s). */
const flow = (src: number, dst: number, i: number): SpreadFlow => ({
  unit: workUnitOfKey(filterKey({ src, dst, proto: 6, forwarding: true })),
  pps: 400 + ((i * 37) % 201),
  bytesPerSecond: (400 + ((i * 37) % 201)) * 1000,
});

/** Site-to-site: 32 hosts of one /24 to 8 of another, 200 of the 256 pairs (pair 37k mod 256). */
function siteToSite(): SpreadFlow[] {
  const flows: SpreadFlow[] = [];
  for (let k = 0; k < 200; k++) {
    const p = (k * 37) % 256;
    flows.push(flow(ipv4(198, 51, 100, 20 + (p >> 3)), ipv4(203, 0, 113, 20 + (p & 7)), k));
  }
  return flows;
}

describe('spread of flows over three members', () => {
  it('site-to-site between two /24s: contiguous at-once shares leave it lopsided; first-packet is within 15 %', () => {
    const flows = siteToSite();
    expect(flows).toHaveLength(200);
    expect(new Set(flows.map((f) => f.unit)).size).toBeLessThanOrEqual(64); // only the last octets differ
    const once = runSpread({ members: 3, unitAssignment: 'at-once', flows, seconds: 10 });
    const lazy = runSpread({ members: 3, unitAssignment: 'first-packet', flows, seconds: 10 });
    expect(spreadOf(once.shares.map((s) => s.flows))).toBeGreaterThan(0.15);
    expect(spreadOf(lazy.shares.map((s) => s.flows))).toBeLessThanOrEqual(0.15);
    expect(spreadOf(lazy.shares.map((s) => s.bytesPerSecond))).toBeLessThanOrEqual(0.15);
    expect(lazy.unowned).toBe(0);
    expect(lazy.shares.reduce((a, s) => a + s.flows, 0)).toBe(200);
  });

  it('8 clients to 8 servers (15 units of unequal flow counts): first-packet is within 15 %', () => {
    const flows: SpreadFlow[] = [];
    for (let c = 1; c <= 8; c++) for (let s = 1; s <= 8; s++) flows.push(flow(ipv4(198, 51, 100, c), ipv4(203, 0, 113, s), flows.length));
    const lazy = runSpread({ members: 3, unitAssignment: 'first-packet', flows, seconds: 10 });
    expect(spreadOf(lazy.shares.map((s) => s.flows))).toBeLessThanOrEqual(0.15);
    expect(spreadOf(lazy.shares.map((s) => s.bytesPerSecond))).toBeLessThanOrEqual(0.15);
  });

  it('an elephant flow: its member ends with fewer other flows than the others, whose bytes stay even', () => {
    const flows = siteToSite();
    const elephant: SpreadFlow = { unit: flows[0]!.unit ^ 1, pps: 5000, bytesPerSecond: 5_000_000 };
    const all = [...flows.slice(0, 100), elephant, ...flows.slice(100)];
    const r = runSpread({ members: 3, unitAssignment: 'first-packet', flows: all, seconds: 10 });
    const mine = r.shares.find((s) => s.flowIndexes.includes(100))!;
    const others = r.shares.filter((s) => s !== mine);
    for (const o of others) expect(mine.flows - 1).toBeLessThan(o.flows);
    expect(spreadOf(others.map((s) => s.bytesPerSecond))).toBeLessThanOrEqual(0.15);
  });
});
