#!/usr/bin/env node
// Packets per second through the PacketEngine (NFQUEUE verdicts) against the same traffic with no
// NFQUEUE rule, in the same run. Needs root, iproute2, iptables, the build (dist/) and the addon.
//   cd /work/main && npx tsc -b native-addon && node native-addon/bench/engine-bench.mjs [seconds=3] [rounds=2]
//
// Two namespaces made here and always deleted: member (192.0.2.1/32 on lo, vm0 192.0.2.2/24) and
// peer (vp0, the other end of a veth pair). The peer injects UDP frames to 192.0.2.1:9000 from 256
// source ports (so 256 distinct work units) as fast as one thread can; the member counts what reaches
// its INPUT chain (an iptables rule that counts and drops: no socket receiver to be the bottleneck).
// Phases per round: "direct" (no NFQUEUE rule), "engine" (NFQUEUE rule, the engine owns every
// unit: all ACCEPT), "engine-half" (owns half: ACCEPT or DROP). 2-core machines share the cores
// between sender, softirq and the engine thread: the figures are relative, not line rate.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 2);
const TAG = `${process.pid}${randomBytes(2).toString('hex')}`;
const NS_M = `gwtbench${TAG}m`;
const NS_P = `gwtbench${TAG}p`;
const CHILD = fileURLToPath(new URL('./engine-bench-child.mjs', import.meta.url));
const QUEUE = 9;

const run = (cmd, ...args) => execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8' });
const inNs = (ns, ...args) => run('ip', 'netns', 'exec', ns, ...args);
const created = [];
function cleanup() {
  for (const ns of created.splice(0)) spawnSync('ip', ['netns', 'del', ns]);
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function setup() {
  for (const ns of [NS_M, NS_P]) {
    run('ip', 'netns', 'add', ns);
    created.push(ns);
    run('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    inNs(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
  }
  run('ip', '-n', NS_M, 'link', 'add', 'vm0', 'type', 'veth', 'peer', 'name', 'vp0', 'netns', NS_P);
  inNs(NS_M, 'sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.vm0.rp_filter=0');
  run('ip', '-n', NS_M, 'addr', 'add', '192.0.2.1/32', 'dev', 'lo');
  run('ip', '-n', NS_M, 'addr', 'add', '192.0.2.2/24', 'dev', 'vm0');
  run('ip', '-n', NS_P, 'addr', 'add', '192.0.2.10/24', 'dev', 'vp0');
  run('ip', '-n', NS_M, 'link', 'set', 'vm0', 'up');
  run('ip', '-n', NS_P, 'link', 'set', 'vp0', 'up');
  inNs(NS_M, 'iptables', '-A', 'INPUT', '-i', 'vm0', '-p', 'udp', '--dport', '9000', '-j', 'DROP');
  return JSON.parse(run('ip', '-j', '-n', NS_M, 'link', 'show', 'vm0'))[0].address;
}

const nfqRule = (op) => inNs(NS_M, 'iptables', '-t', 'raw', op, 'PREROUTING', '-i', 'vm0', '!', '-d', '192.0.2.2', '-m', 'pkttype', '--pkt-type', 'unicast', '-j', 'NFQUEUE', '--queue-num', String(QUEUE));

function delivered() {
  const out = inNs(NS_M, 'iptables', '-L', 'INPUT', '-v', '-x', '-n');
  const line = out.split('\n').find((l) => l.includes('dpt:9000'));
  return Number(line.trim().split(/\s+/)[0]);
}

function lines(proc) {
  const rl = createInterface({ input: proc.stdout });
  const queue = [];
  const waiters = [];
  rl.on('line', (l) => (waiters.length ? waiters.shift()(JSON.parse(l)) : queue.push(JSON.parse(l))));
  return () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)));
}

async function flood(mac) {
  inNs(NS_M, 'iptables', '-Z', 'INPUT');
  const r = JSON.parse(run('ip', 'netns', 'exec', NS_P, process.execPath, CHILD, 'flood', 'vp0', mac, String(seconds)));
  await new Promise((res) => setTimeout(res, 300)); // the queue drains
  return { ...r, delivered: delivered() };
}

async function phase(name, mac, fraction) {
  if (fraction === undefined) return { name, ...(await flood(mac)) };
  nfqRule('-A');
  const eng = spawn('ip', ['netns', 'exec', NS_M, process.execPath, CHILD, 'engine', String(QUEUE), String(fraction)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const next = lines(eng);
  await next(); // ready
  try {
    const r = await flood(mac);
    eng.stdin.end();
    const { stats } = await next();
    return { name, ...r, engine: { received: stats.received, verdicts: stats.verdicts, kernelQueueDropped: stats.kernelQueueDropped, recvOverruns: stats.recvOverruns, verdictErrors: stats.verdictErrors } };
  } finally {
    eng.kill();
    nfqRule('-D');
  }
}

try {
  const mac = setup();
  const results = [];
  for (let i = 0; i < rounds; i++) {
    results.push(await phase('direct', mac));
    results.push(await phase('engine', mac, 1));
    results.push(await phase('engine-half', mac, 0.5));
  }
  const best = {};
  for (const r of results) {
    r.sentPps = Math.round(r.sent / r.seconds);
    r.deliveredPps = Math.round(r.delivered / r.seconds);
    if (!best[r.name] || r.deliveredPps > best[r.name].deliveredPps) best[r.name] = r;
  }
  for (const r of results) console.log(JSON.stringify(r));
  const d = best.direct.deliveredPps;
  console.log(
    `best of ${rounds} x ${seconds}s: direct ${d} pps delivered (sent ${best.direct.sentPps}); ` +
      `engine (all ACCEPT) ${best.engine.deliveredPps} pps = ${(best.engine.deliveredPps / d).toFixed(3)} of direct, ` +
      `delivered/sent ${(best.engine.delivered / best.engine.sent).toFixed(3)}; ` +
      `engine-half: ${best['engine-half'].engine.received} verdicts in ${best['engine-half'].seconds.toFixed(2)}s ` +
      `(${Math.round(best['engine-half'].engine.received / best['engine-half'].seconds)} verdicts/s, ${best['engine-half'].deliveredPps} pps delivered)`,
  );
} finally {
  cleanup();
}
