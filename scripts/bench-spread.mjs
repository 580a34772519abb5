#!/usr/bin/env node
// The spread of flows and bytes over the members (npm run bench, section "spread"): three members'
// cores in virtual time (packages/daemon/src/sim/spread.ts) with flows whose work units come from the
// filter reference (native-addon/src/filter/reference.ts), under both unitAssignment rules.
//
//   (a) 200 flows to the cluster IP from random sources in many networks (key: source IP ^ source port)
//   (b) a site-to-site gateway between two /24s: 32 hosts x 8 hosts, 200 flows (key: source ^ destination)
//   (c) 8 clients to 8 servers through the cluster: 64 flows
//   (d) as (b), plus one elephant flow of 50 times a flow's bytes
//
// Each flow sends 400..600 packets/s of 1000 bytes (seeded; about 4 Mbit/s). A figure is the largest deviation of a
// member's flows (bytes/s) from the mean over members, as a fraction of the mean.
// Usage: node scripts/bench-spread.mjs [--seconds 20] [--seed 1]
import { parseArgs } from 'node:util';
import { filterKey, workUnitOfKey } from '../native-addon/dist/filter/reference.js';
import { runSpread, spreadOf } from '../packages/daemon/dist/sim/spread.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' }, seed: { type: 'string', default: '1' } } });
const seconds = Number(values.seconds);
let state = Number(values.seed) >>> 0 || 1;
const rand = () => {
  // xorshift32: the same flows for the same seed
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 2 ** 32;
};
const ipv4 = (a, b, c, d) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const CLUSTER_IP = ipv4(198, 51, 100, 10);
const rate = () => {
  const pps = 400 + Math.floor(rand() * 201);
  return { pps, bytesPerSecond: pps * 1000 };
};

function scenarioA() {
  const flows = [];
  for (let i = 0; i < 200; i++) {
    const src = ipv4(1 + Math.floor(rand() * 223), Math.floor(rand() * 256), Math.floor(rand() * 256), 1 + Math.floor(rand() * 254));
    const sport = 1024 + Math.floor(rand() * 64000);
    flows.push({ unit: workUnitOfKey(filterKey({ src, dst: CLUSTER_IP, proto: 6, sport })), ...rate() });
  }
  return flows;
}
function siteToSite() {
  const pairs = [];
  for (let c = 0; c < 32; c++) for (let s = 0; s < 8; s++) pairs.push([ipv4(198, 51, 100, 20 + c), ipv4(203, 0, 113, 20 + s)]);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  return pairs.slice(0, 200).map(([src, dst]) => ({ unit: workUnitOfKey(filterKey({ src, dst, proto: 6, forwarding: true })), ...rate() }));
}
function scenarioC() {
  const flows = [];
  for (let c = 0; c < 8; c++) for (let s = 0; s < 8; s++) flows.push({ unit: workUnitOfKey(filterKey({ src: ipv4(198, 51, 100, 1 + c), dst: ipv4(203, 0, 113, 1 + s), proto: 6, forwarding: true })), ...rate() });
  return flows;
}

const pct = (x) => `${(x * 100).toFixed(1)} %`;
const say = (s = '') => process.stdout.write(`${s}\n`);
const scenarios = [
  ['(a) 200 flows to the cluster IP from random networks', scenarioA()],
  ['(b) site-to-site, two /24s, 32 x 8 hosts, 200 flows', siteToSite()],
  ['(c) 8 clients to 8 servers, 64 flows', scenarioC()],
];
const withElephant = [...scenarios[1][1]];
const elephantIndex = Math.floor(withElephant.length / 2);
withElephant.splice(elephantIndex, 0, { unit: withElephant[0].unit ^ 1, pps: 25000, bytesPerSecond: 25000 * 1000 });
say(`three members, ${seconds} s of traffic after the flows started (over 1 s), virtual time; units per scenario: ${scenarios.map(([n, f]) => `${n.slice(0, 3)} ${new Set(f.map((x) => x.unit)).size}`).join(', ')}`);
const w = [56, 14, 12, 12, 20, 10];
say(['scenario', 'rule', 'flows', 'bytes', 'flows per member', 'moved'].map((c, i) => c.padEnd(w[i])).join(''));
for (const [name, flows] of scenarios) {
  for (const rule of ['at-once', 'first-packet']) {
    const r = runSpread({ members: 3, unitAssignment: rule, flows, seconds });
    say([name, rule, pct(spreadOf(r.shares.map((s) => s.flows))), pct(spreadOf(r.shares.map((s) => s.bytesPerSecond))), r.shares.map((s) => s.flows).join('/'), String(r.flowsMoved)].map((c, i) => String(c).padEnd(w[i])).join(''));
  }
}
say('\n(d) the site-to-site flows plus one elephant (50 x a flow\'s bytes), on the member that first carried it:');
for (const rule of ['at-once', 'first-packet']) {
  const r = runSpread({ members: 3, unitAssignment: rule, flows: withElephant, seconds });
  const el = r.shares.find((s) => s.flowIndexes.includes(elephantIndex));
  const others = r.shares.filter((s) => s !== el);
  say(`  ${rule.padEnd(13)} flows per member ${r.shares.map((s) => `${s.member}${s === el ? '*' : ''}:${s.flows}`).join(' ')}; the elephant's member carries ${el.flows - 1} other flows against a mean of ${(others.reduce((a, s) => a + s.flows, 0) / others.length).toFixed(1)} on the others; bytes of the others ${pct(spreadOf(others.map((s) => s.bytesPerSecond)))} apart`);
}
