#!/usr/bin/env node
// Packets per second per core of the work-unit classification: C++ classifyBatch vs the TypeScript
// reference (classifyBatchReference), on the same in-memory batch of mixed packets, best of N runs.
//
// Needs the TypeScript build (dist/) and the addon (build/Release):
//   cd /work/main && npx tsc -b native-addon && node native-addon/bench/filter-bench.mjs [packets] [runs]
import { cpus, loadavg } from 'node:os';
import {
  classifyBatch,
  classifyBatchReference,
  generateBatch,
  parseClusterIps,
  SYNTHETIC_CLUSTER_V4,
  SYNTHETIC_CLUSTER_V6,
  WorkUnitFilter,
} from '../dist/index.js';

const count = Number(process.argv[2] ?? 1_000_000);
const runs = Number(process.argv[3] ?? 5);
const cluster = parseClusterIps([...SYNTHETIC_CLUSTER_V4, ...SYNTHETIC_CLUSTER_V6]);

// Mostly well-formed traffic (2 % truncated, 2 % mutated), raw IP packets.
const { packets, offsets } = generateBatch(20260101, count, { frames: false, truncate: 0.02, mutate: 0.02 });
const frames = generateBatch(20260102, count, { frames: true, truncate: 0.02, mutate: 0.02 });

// The candidates run in turn within each round (so a busy neighbour slows all of them alike); each
// keeps its best round.
function race(candidates) {
  const bestNs = Object.fromEntries(Object.keys(candidates).map((k) => [k, Infinity]));
  const out = {};
  for (let i = 0; i < runs; i++) {
    for (const [name, fn] of Object.entries(candidates)) {
      const t0 = process.hrtime.bigint();
      out[name] = fn();
      const ns = Number(process.hrtime.bigint() - t0);
      if (ns < bestNs[name]) bestNs[name] = ns;
    }
  }
  return Object.fromEntries(Object.keys(candidates).map((k) => [k, { pps: count / (bestNs[k] / 1e9), out: out[k] }]));
}

const fmt = (pps) => `${(pps / 1e6).toFixed(2)} Mpps`;
const filter = new WorkUnitFilter({ clusterIps: cluster, localSlot: 1 });
filter.setTable(new Uint16Array(1024).map((_, u) => (u % 4) + 1));
const framesFilter = new WorkUnitFilter({ clusterIps: cluster, localSlot: 1, frames: true });

const r = race({
  js: () => classifyBatchReference(packets, offsets, cluster),
  cpp: () => classifyBatch(packets, offsets, cluster),
  verdicts: () => filter.verdictBatch(packets, offsets),
  jsFrames: () => classifyBatchReference(frames.packets, frames.offsets, cluster, { frames: true }),
  cppFrames: () => framesFilter.classifyBatch(frames.packets, frames.offsets),
});
const { js, cpp, verdicts, jsFrames, cppFrames } = r;

let same = 0;
for (let i = 0; i < count; i++) if (js.out[i] === cpp.out[i]) same++;
if (same !== count) throw new Error(`C++ and the reference disagree on ${count - same} packets`);

console.log(`${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} (other work on the machine lowers all figures)`);
console.log(`batch: ${count} packets (${(packets.length / count).toFixed(1)} bytes avg, raw IP), best of ${runs}, node ${process.version}`);
console.log(`JS reference  classifyBatchReference   ${fmt(js.pps)}`);
console.log(`C++           classifyBatch            ${fmt(cpp.pps)}   C++/JS = ${(cpp.pps / js.pps).toFixed(2)}`);
console.log(`C++           WorkUnitFilter.verdictBatch (counters, table)  ${fmt(verdicts.pps)}`);
console.log(`Ethernet frames: JS ${fmt(jsFrames.pps)}, C++ WorkUnitFilter.classifyBatch ${fmt(cppFrames.pps)}   C++/JS = ${(cppFrames.pps / jsFrames.pps).toFixed(2)}`);
