// The kernel fast path computes the same work unit as the filter: the BPF program, run through
// BPF_PROG_TEST_RUN, is compared with the C++ filter (the specification) and the TypeScript reference on
// the same random packets as test/filter/parity.test.ts (testing/synthetic-traffic.ts: IPv4/IPv6,
// TCP/UDP/ICMP/L2TP/other, fragments, extension headers, VLAN tags, ARP, truncations, mutations), every
// outcome field of every packet. Needs root (loading a BPF program); no network namespace.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  classifyBatchDetailed,
  classifyFrameInto,
  classifyIpInto,
  codeOf,
  FastPath,
  fastPathAvailable,
  FASTPATH_STAT_NAMES,
  loadBinding,
  newRawClassification,
  NativeCallError,
  packBatch,
  parseClusterIps,
  STATUS,
  UnitAction,
  type NativeDetailedBatch,
} from '../../src/index.js';
import { CLUSTER_V4, CLUSTER_V6, generateBatch } from '../../src/testing/synthetic-traffic.js';

function canRun(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (BPF_PROG_LOAD, BPF_PROG_TEST_RUN)';
  if (!fastPathAvailable()) return 'addon built without the fast path (clang, libbpf-dev)';
  return null;
}
const skipReason = canRun();
const CLUSTER = parseClusterIps([...CLUSTER_V4, ...CLUSTER_V6]);
const BATCH = 50_000;
const RUNS = 22; // 22 x 50,000 = 1,100,000 packets, as the filter's parity test
const FIELDS = ['units', 'keys', 'codes', 'protos', 'details', 'l2tpIds'] as const;

/** The first packet whose outcome differs between two batches, described, or null. */
function firstDifference(a: NativeDetailedBatch, b: NativeDetailedBatch, packets: Uint8Array, offsets: Uint32Array, what: string): string | null {
  for (let i = 0; i < offsets.length - 1; i++) {
    for (const f of FIELDS) {
      if (a[f][i] !== b[f][i]) {
        const hex = Buffer.from(packets.subarray(offsets[i]!, offsets[i + 1]!)).toString('hex');
        const row = (x: NativeDetailedBatch) => JSON.stringify(Object.fromEntries(FIELDS.map((g) => [g, x[g][i]])));
        return `${what}: packet ${i} ${hex}: ${f} differs; spec ${row(a)} kernel ${row(b)}`;
      }
    }
  }
  return null;
}

/** The TypeScript reference's outcome in the batch form. */
function referenceBatch(packets: Uint8Array, offsets: Uint32Array, frames: boolean): NativeDetailedBatch {
  const n = offsets.length - 1;
  const r: NativeDetailedBatch = {
    units: new Uint16Array(n), keys: new Uint32Array(n), codes: new Uint8Array(n),
    protos: new Uint8Array(n), details: new Uint8Array(n), l2tpIds: new Uint32Array(n),
  };
  const o = newRawClassification();
  const classify = frames ? classifyFrameInto : classifyIpInto;
  for (let i = 0; i < n; i++) {
    classify(o, packets, offsets[i]!, offsets[i + 1]! - offsets[i]!, CLUSTER);
    r.units[i] = o.unit;
    r.keys[i] = o.key;
    r.codes[i] = codeOf(o);
    r.protos[i] = o.proto;
    r.details[i] = o.detail;
    r.l2tpIds[i] = ((o.tunnelId << 16) | o.sessionId) >>> 0;
  }
  return r;
}

describe.skipIf(skipReason !== null)(`BPF program vs C++ filter and TypeScript reference${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let fp: FastPath;
  beforeAll(() => {
    fp = new FastPath({ clusterIps: CLUSTER, decideIpv6: true });
  });
  afterAll(() => fp?.close());

  it(`agree on ${RUNS} x ${BATCH} random packets`, () => {
    let compared = 0;
    const seen = { cluster: 0, forwarded: 0, arp: 0, unsupported: 0, truncated: 0, malformed: 0, fragment: 0, l2tp: 0, l2tpFallback: 0, frames: 0, ip: 0 };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x7fffffff }),
        fc.boolean(),
        fc.constantFrom(0, 0.1, 0.3),
        fc.constantFrom(0, 0.1, 0.3),
        (seed, frames, truncate, mutate) => {
          const { packets, offsets, count } = generateBatch(seed, BATCH, { frames, truncate, mutate });
          const spec = classifyBatchDetailed(packets, offsets, CLUSTER, { frames });
          const kernel = fp.classifyInKernel(packets, offsets, { frames });
          const diff =
            firstDifference(spec, kernel, packets, offsets, `seed ${seed} frames ${frames}`) ??
            firstDifference(referenceBatch(packets, offsets, frames), kernel, packets, offsets, `reference, seed ${seed}`);
          if (diff) throw new Error(diff);
          compared += count;
          seen[frames ? 'frames' : 'ip'] += count;
          for (let i = 0; i < count; i++) {
            const code = kernel.codes[i]!;
            const status = code & 7;
            if (status === STATUS.cluster) seen.cluster++;
            else if (status === STATUS.forwarded) seen.forwarded++;
            else if (status === STATUS.arp) seen.arp++;
            else if (status === STATUS.unsupported) seen.unsupported++;
            else if (status === STATUS.truncated) seen.truncated++;
            else seen.malformed++;
            if (code & 0x08) seen.fragment++;
            if (code & 0x10) seen.l2tp++;
            if (code & 0x20) seen.l2tpFallback++;
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(compared).toBeGreaterThanOrEqual(1_000_000);
    for (const [k, v] of Object.entries(seen)) if (k !== 'frames' && k !== 'ip') expect(v, k).toBeGreaterThan(1000);
    console.log(`fast path parity: ${compared} packets compared (${seen.frames} frames, ${seen.ip} raw IP): ${JSON.stringify(seen)}`);
  }, 600_000);

  it('agree on arbitrary byte strings (fast-check, shrinking)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 120 }),
            fc.tuple(fc.constantFrom(0x45, 0x46, 0x4f, 0x60, 0x61), fc.uint8Array({ minLength: 19, maxLength: 100 })).map(([v, rest]) => Uint8Array.of(v, ...rest)),
          ),
          { maxLength: 50 },
        ),
        fc.boolean(),
        (list, frames) => {
          const { packets, offsets } = packBatch(list);
          const spec = classifyBatchDetailed(packets, offsets, CLUSTER, { frames });
          const diff = firstDifference(spec, fp.classifyInKernel(packets, offsets, { frames }), packets, offsets, 'arbitrary');
          if (diff) throw new Error(diff);
        },
      ),
      { numRuns: 2000 },
    );
  }, 120_000);
});

describe.skipIf(skipReason !== null)('kernel decision per unit action (BPF_PROG_TEST_RUN)', () => {
  it('passes owned units (counted per unit), drops other members\' units and invalid IP, marks the rest for user space', () => {
    const fp = new FastPath({ clusterIps: CLUSTER });
    try {
      const { packets, offsets, count } = generateBatch(777, 20_000, { frames: true, truncate: 0.1, mutate: 0.1 });
      if (!(packets instanceof Buffer)) throw new Error('generateBatch returns a Buffer');
      const spec = classifyBatchDetailed(packets, offsets, CLUSTER, { frames: true });
      const pass = new Set<number>(), drop = new Set<number>();
      for (let u = 0; u < 1024; u++) (u % 3 === 1 ? pass : u % 3 === 2 ? drop : null)?.add(u);
      fp.setUnitActions(pass, UnitAction.PASS, 1);
      fp.setUnitActions(drop, UnitAction.DROP, 2);
      const before = fp.stats();
      const kernel = fp.classifyInKernel(packets, offsets, { frames: true });
      const expected = { passed: 0n, dropped: 0n, toUser: 0n, invalid: 0n, notIp: 0n, ipv6Undecided: 0n, bypass: 0n };
      const perUnit = new Map<number, number>();
      for (let i = 0; i < count; i++) {
        const status = spec.codes[i]! & 7;
        // the EtherType after up to two VLAN tags, and where the IP header starts
        let at = offsets[i]! + 12;
        const end = offsets[i + 1]!;
        const be16 = (x: number) => (packets[x]! << 8) | packets[x + 1]!;
        for (let t = 0; t < 2 && at + 2 <= end && (be16(at) === 0x8100 || be16(at) === 0x88a8); t++) at += 4;
        const v6 = at + 2 <= end && be16(at) === 0x86dd;
        const l3 = at + 2;
        const dstFirst = packets[l3 + 16]!;
        const bypass =
          !v6 && status !== STATUS.cluster && end - l3 >= 20 && (packets[l3]! >> 4) === 4 &&
          (dstFirst >> 4 === 0xe || packets.readUInt32BE(l3 + 16) === 0xffffffff);
        let want: number;
        if (status === STATUS.arp || status === STATUS.unsupported || ((status === STATUS.truncated || status === STATUS.malformed) && spec.details[i]! <= 3) || spec.details[i] === 14) {
          want = 0; expected.notIp++; // not IP: the ethernet, vlan, arp-header and vlan-limit reasons, ARP, other EtherTypes
        } else if (v6) {
          want = 0; expected.ipv6Undecided++;
        } else if (bypass) {
          want = 0; expected.bypass++;
        } else if (status === STATUS.truncated || status === STATUS.malformed) {
          want = 2; expected.invalid++;
        } else if (pass.has(spec.units[i]!)) {
          want = 0; expected.passed++; perUnit.set(spec.units[i]!, (perUnit.get(spec.units[i]!) ?? 0) + 1);
        } else if (drop.has(spec.units[i]!)) {
          want = 2; expected.dropped++;
        } else {
          want = 0; expected.toUser++;
        }
        if (kernel.verdicts[i] !== want) throw new Error(`packet ${i}: verdict ${kernel.verdicts[i]}, expected ${want} (code ${spec.codes[i]}, unit ${spec.units[i]})`);
      }
      const after = fp.stats();
      for (const [k, v] of Object.entries(expected)) expect(after[k as keyof typeof after] - before[k as keyof typeof before], k).toBe(v);
      const { packets: unitPackets } = fp.unitCounters({ reset: true });
      for (const [u, n] of perUnit) expect(unitPackets[u], `unit ${u}`).toBe(BigInt(n));
      expect(fp.unitCounters({ reset: false }).packets.every((v) => v === 0n)).toBe(true);
      expect(expected.passed > 1000n && expected.dropped > 1000n && expected.toUser > 1000n && expected.invalid > 100n).toBe(true);
    } finally {
      fp.close();
    }
  });

  it('its constants are the native ones; failures name the call, the syscall and the OS error', () => {
    const k = loadBinding().fastPathConstants!;
    expect([k.actionToUser, k.actionPass, k.actionDrop]).toEqual([UnitAction.TO_USER, UnitAction.PASS, UnitAction.DROP]);
    expect(k.statCount).toBe(FASTPATH_STAT_NAMES.length);
    const missing = (() => {
      try {
        new FastPath({ clusterIps: [], objectPath: '/nonexistent/fastpath.bpf.o' });
      } catch (e) {
        return e;
      }
    })() as NativeCallError;
    expect(missing).toBeInstanceOf(NativeCallError);
    expect(missing).toMatchObject({ call: 'FastPath', syscall: 'bpf_object__open_file', code: 'ENOENT' });
    expect(missing.message).toMatch(/No such file or directory/);
    const fp = new FastPath({ clusterIps: CLUSTER });
    try {
      expect(() => fp.attach('gwcnosuchif0')).toThrow(expect.objectContaining({ syscall: 'if_nametoindex', code: 'ENODEV' }));
      expect(fp.attached).toBe(false);
      expect(() => fp.setUnitAction(1024, UnitAction.PASS)).toThrow(TypeError);
    } finally {
      fp.close();
    }
    expect(() => fp.stats()).toThrow(/closed/);
  });
});
