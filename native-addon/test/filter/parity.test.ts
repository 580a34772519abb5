// The C++ filter and the TypeScript reference agree on every outcome field, over more than a million
// random packets (IPv4/IPv6, TCP/UDP/ICMP/L2TP/other, fragments, extension headers, VLAN tags, ARP,
// random truncations and byte mutations), compared a batch at a time through classifyBatchDetailed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyBatch,
  classifyBatchDetailed,
  classifyBatchReference,
  classifyFrameInto,
  classifyIpInto,
  codeOf,
  newRawClassification,
  packBatch,
  parseClusterIps,
  STATUS,
  WorkUnitFilter,
  type NativeDetailedBatch,
} from '../../src/index.js';
import { CLUSTER_V4, CLUSTER_V6, generateBatch } from '../../src/testing/synthetic-traffic.js';

const CLUSTER = parseClusterIps([...CLUSTER_V4, ...CLUSTER_V6]);
const BATCH = 50_000;
const RUNS = 22; // 22 x 50,000 = 1,100,000 packets
let compared = 0;
const seen = { cluster: 0, forwarded: 0, arp: 0, unsupported: 0, truncated: 0, malformed: 0, fragment: 0, l2tp: 0, l2tpFallback: 0 };

function hex(p: Uint8Array): string {
  return Buffer.from(p).toString('hex');
}

/** Compares native and reference outcomes; returns a description of the first difference, or null. */
function firstDifference(packets: Uint8Array, offsets: Uint32Array, frames: boolean, nat: NativeDetailedBatch): string | null {
  const o = newRawClassification();
  const classify = frames ? classifyFrameInto : classifyIpInto;
  for (let i = 0; i < offsets.length - 1; i++) {
    const s = offsets[i]!, len = offsets[i + 1]! - s;
    classify(o, packets, s, len, CLUSTER);
    const ref = { unit: o.unit, key: o.key, code: codeOf(o), proto: o.proto, detail: o.detail, l2tpId: ((o.tunnelId << 16) | o.sessionId) >>> 0 };
    const got = { unit: nat.units[i]!, key: nat.keys[i]!, code: nat.codes[i]!, proto: nat.protos[i]!, detail: nat.details[i]!, l2tpId: nat.l2tpIds[i]! };
    if (JSON.stringify(ref) !== JSON.stringify(got)) {
      return `packet ${i} (${frames ? 'frame' : 'ip'}) ${hex(packets.subarray(s, s + len))}: reference ${JSON.stringify(ref)} native ${JSON.stringify(got)}`;
    }
    const status = o.status;
    if (status === STATUS.cluster) seen.cluster++;
    else if (status === STATUS.forwarded) seen.forwarded++;
    else if (status === STATUS.arp) seen.arp++;
    else if (status === STATUS.unsupported) seen.unsupported++;
    else if (status === STATUS.truncated) seen.truncated++;
    else seen.malformed++;
    if (o.flags & 0x08) seen.fragment++;
    if (o.flags & 0x10) seen.l2tp++;
    if (o.flags & 0x20) seen.l2tpFallback++;
  }
  compared += offsets.length - 1;
  return null;
}

describe('C++ filter vs TypeScript reference', () => {
  it(`agree on ${RUNS} x ${BATCH} random packets`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x7fffffff }),
        fc.boolean(),
        fc.constantFrom(0, 0.1, 0.3),
        fc.constantFrom(0, 0.1, 0.3),
        (seed, frames, truncate, mutate) => {
          const { packets, offsets } = generateBatch(seed, BATCH, { frames, truncate, mutate });
          const nat = classifyBatchDetailed(packets, offsets, CLUSTER, { frames });
          const diff = firstDifference(packets, offsets, frames, nat);
          if (diff) throw new Error(`seed ${seed}: ${diff}`);
          // the fast path returns the same units as the detailed one
          expect(classifyBatch(packets, offsets, CLUSTER, { frames })).toEqual(nat.units);
        },
      ),
      { numRuns: RUNS },
    );
    expect(compared).toBeGreaterThanOrEqual(1_000_000);
    // the generator reaches every outcome, in quantity
    for (const [k, v] of Object.entries(seen)) expect(v, k).toBeGreaterThan(1000);
  });

  it('agree on arbitrary byte strings (fast-check, shrinking)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 120 }),
            // a plausible IPv4/IPv6 start, then anything
            fc.tuple(fc.constantFrom(0x45, 0x46, 0x4f, 0x60, 0x61), fc.uint8Array({ minLength: 19, maxLength: 100 })).map(([v, rest]) => Uint8Array.of(v, ...rest)),
          ),
          { maxLength: 50 },
        ),
        fc.boolean(),
        (list, frames) => {
          const { packets, offsets } = packBatch(list);
          const nat = classifyBatchDetailed(packets, offsets, CLUSTER, { frames });
          const diff = firstDifference(packets, offsets, frames, nat);
          if (diff) throw new Error(diff);
          expect(classifyBatchReference(packets, offsets, CLUSTER, { frames })).toEqual(nat.units);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a filter counts every malformed and truncated packet without crashing', () => {
    const { packets, offsets, count } = generateBatch(12345, 100_000, { frames: true, truncate: 0.3, mutate: 0.3 });
    const filter = new WorkUnitFilter({ clusterIps: CLUSTER, frames: true });
    filter.classifyBatch(packets, offsets);
    const s = filter.stats();
    const o = newRawClassification();
    const expected = { truncated: 0, malformed: 0, unsupported: 0, arp: 0 };
    for (let i = 0; i < count; i++) {
      classifyFrameInto(o, packets, offsets[i]!, offsets[i + 1]! - offsets[i]!, CLUSTER);
      if (o.status === STATUS.truncated) expected.truncated++;
      if (o.status === STATUS.malformed) expected.malformed++;
      if (o.status === STATUS.unsupported) expected.unsupported++;
      if (o.status === STATUS.arp) expected.arp++;
    }
    expect(expected.truncated).toBeGreaterThan(1000);
    expect(expected.malformed).toBeGreaterThan(1000);
    expect(s).toMatchObject(expected);
    expect(s.cluster + s.forwarded + s.truncated + s.malformed + s.unsupported + s.arp).toBe(count);
  });
});
