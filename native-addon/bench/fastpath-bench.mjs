#!/usr/bin/env node
// Nanoseconds per packet of the kernel fast path's program (classification + map lookups + decision),
// as the kernel measures it under BPF_PROG_TEST_RUN (JIT on when net.core.bpf_jit_enable=1): the median
// and the mean over a sample of the synthetic mix, per outcome. Every unit is PASS, so owned packets pay
// their per-unit counter. Not a throughput figure: no driver, no stack, no GRO.
//
// Needs root, the TypeScript build (dist/) and the addon built with the fast path:
//   npx tsc -b native-addon && node native-addon/bench/fastpath-bench.mjs [packets] [repeat]
import { readFileSync } from 'node:fs';
import { FastPath, generateBatch, parseClusterIps, SYNTHETIC_CLUSTER_V4, SYNTHETIC_CLUSTER_V6, classifyBatchDetailed, UnitAction } from '../dist/index.js';

const count = Number(process.argv[2] ?? 2000);
const repeat = Number(process.argv[3] ?? 2000);
const cluster = parseClusterIps([...SYNTHETIC_CLUSTER_V4, ...SYNTHETIC_CLUSTER_V6]);
const fp = new FastPath({ clusterIps: cluster, decideIpv6: true });
const all = Uint16Array.from({ length: 1024 }, (_, u) => u);
fp.setUnitActions(all, UnitAction.PASS, 1);
const { packets, offsets } = generateBatch(20260103, count, { frames: true, truncate: 0.02, mutate: 0.02 });
const spec = classifyBatchDetailed(packets, offsets, cluster, { frames: true });
const names = ['cluster', 'forwarded', 'arp', 'unsupported', 'truncated', 'malformed'];
const byKind = new Map();
for (let i = 0; i < count; i++) {
  const ns = fp.runDuration(packets.subarray(offsets[i], offsets[i + 1]), { frames: true, repeat });
  const code = spec.codes[i];
  const kind = `${names[code & 7]}${code & 0x10 ? '+l2tp' : ''}${code & 0x08 ? '+fragment' : ''}`;
  (byKind.get(kind) ?? byKind.set(kind, []).get(kind)).push(ns);
  (byKind.get('all') ?? byKind.set('all', []).get('all')).push(ns);
}
fp.close();
const jit = readFileSync('/proc/sys/net/core/bpf_jit_enable', 'utf8').trim();
console.log(`fast path program, ns per packet (BPF_PROG_TEST_RUN, repeat ${repeat}, bpf_jit_enable=${jit}, ${count} frames of the synthetic mix)`);
for (const [kind, v] of [...byKind].sort((a, b) => b[1].length - a[1].length)) {
  v.sort((a, b) => a - b);
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  console.log(`  ${kind.padEnd(24)} n=${String(v.length).padStart(5)}  median ${String(v[v.length >> 1]).padStart(4)} ns  mean ${mean.toFixed(0).padStart(4)} ns`);
}
