#!/usr/bin/env node
// npm run bench: every benchmark of the project, each as a ratio against a baseline measured in the
// same run. Figures depend on what else the machine is doing; the load average is printed with them.
//
//   1. work-unit filter: C++ against the JavaScript reference on one in-memory batch
//   2. message authentication: seal / open cost per keepalive
//   3. session table: track() cost per packet, record size against the kernel's TCP control block
//   4. end to end, in network namespaces: TCP throughput (1 and 8 streams) and UDP packets per second
//      from a client to a server THROUGH THE CLUSTER (three members, data plane on) against the same
//      traffic forwarded by a plain Linux router namespace between the same segments, in the same run.
//      --path picks the packet path (dataplane.path), --sessions the session tracking of the members.
//   5. failover, in network namespaces: the same paced TCP connections through gwcluster (each of its
//      distribution methods) and through keepalived + conntrackd (bench/keepalived/), the master /
//      active box or another member / a backup killed (kill -9, power loss); connections broken and the
//      affected connections' longest stall, with the ratio gwcluster / keepalived
//      (scripts/measure-failover-compare.mjs; --failover-* options are passed on to it).
//   6. spread: flows and bytes per member under cluster.unitAssignment at-once and first-packet, for
//      random sources, a site-to-site gateway between two /24s, 8 clients to 8 servers and an elephant
//      (scripts/bench-spread.mjs; three members' cores in virtual time)
//
// Usage: node scripts/bench.mjs [--only filter,auth,sessions,spread,e2e,failover] [--method master-forward] [--seconds 5]
//                               [--path auto|nfqueue|kernel] [--sessions strict|loose|off]
//                               [--failover-rounds 1] [--failover-connections 300]
//                               [--failover-methods master-forward,unicast-mac,multicast-mac]
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    method: { type: 'string', default: 'master-forward' },
    seconds: { type: 'string', default: '5' },
    path: { type: 'string', default: 'auto' },
    sessions: { type: 'string', default: 'strict' },
    'failover-rounds': { type: 'string', default: '1' },
    'failover-connections': { type: 'string', default: '300' },
    'failover-methods': { type: 'string', default: 'master-forward,unicast-mac,multicast-mac' },
  },
});
if (!['auto', 'nfqueue', 'kernel'].includes(values.path)) throw new Error(`--path must be auto, nfqueue or kernel, got ${values.path}`);
if (!['strict', 'loose', 'off'].includes(values.sessions)) throw new Error(`--sessions must be strict, loose or off, got ${values.sessions}`);
const only = values.only ? new Set(values.only.split(',')) : null;
const want = (k) => !only || only.has(k);
const say = (s = '') => process.stdout.write(`${s}\n`);

function child(title, args, timeout = 600_000) {
  say(`\n== ${title}`);
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit', timeout });
  if (r.status !== 0) say(`(${title} exited ${r.status ?? r.signal})`);
}

say(`gwcluster benchmarks, node ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
if (want('filter')) child('work-unit filter (native-addon/bench/filter-bench.mjs)', ['native-addon/bench/filter-bench.mjs']);
if (want('auth')) child('message authentication (packages/security/bench/seal-open.mjs)', ['packages/security/bench/seal-open.mjs', '3000']);
if (want('sessions')) child('session table (native-addon/bench/session-bench.mjs)', ['native-addon/bench/session-bench.mjs']);
if (want('spread')) child('spread of flows over the members (scripts/bench-spread.mjs)', ['scripts/bench-spread.mjs']);

if (want('e2e')) {
  say('\n== end to end through the cluster vs plain Linux forwarding');
  const { ClusterFixture, balanced } = await import('../test/e2e/cluster-fixture.mjs');
  const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
  const seconds = Math.max(2, Math.min(30, Number(values.seconds)));
  const sessions = values.sessions === 'off' ? { tracking: false } : { mode: values.sessions };
  // A high rebalance threshold: the measured flow's own load must not move its unit during the run.
  const extraConfig = { cluster: { rebalanceThreshold: 0.5 }, dataplane: { path: values.path, sessions } };
  const f = await ClusterFixture.create({ members: 3, layout: 'gateway', method: values.method, extraConfig });
  try {
    // The plain router: its own namespace on both segments; client c2 and the server route via it.
    const router = await f.net.addHost('r1', [
      { segment: f.outside, address: '198.51.100.250/24', ifname: 'eth0' },
      { segment: f.lan, address: '192.0.2.250/24', ifname: 'eth1' },
    ], { forwarding: true });
    void router;
    const [c1, c2] = f.clients;
    await c2.ip('route', 'add', '192.0.2.100/32', 'via', '198.51.100.250');
    await f.server.ip('route', 'add', `${c2.address()}/32`, 'via', '192.0.2.250');
    f.startMonitor(200);
    f.startAll();
    await f.waitForView((v) => balanced(v, M), { timeoutMs: 30_000, what: 'a balanced cluster' });
    f.server.spawn('iperf3', ['-s', '-p', '5201'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    // Busy CPU time of the whole machine (every namespace shares it: members, router, endpoints), s.
    const busySeconds = () => {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      const idle = f[3] + (f[4] ?? 0);
      return (f.reduce((a, b) => a + b, 0) - idle) / 100; // USER_HZ
    };
    const iperf = async (host, extra) => {
      const b0 = busySeconds();
      const r = await host.exec(['iperf3', '-c', '192.0.2.100', '-p', '5201', '-t', String(seconds), '-J', ...extra], { timeoutMs: (seconds + 20) * 1000 });
      const busy = busySeconds() - b0;
      const j = r.code === 0 ? JSON.parse(r.stdout) : null;
      if (!j || j.error || (!j.end?.sum_received && !j.end?.sum)) throw new Error(`iperf3 ${extra.join(' ')} failed (exit ${r.code}): ${j?.error ?? r.stdout.slice(-400)} ${r.stderr}`);
      j.busySeconds = busy;
      return j;
    };
    // UDP round trips one at a time through each path (test/e2e/tools/udp-rtt.mjs), to the server's echo.
    const echo = f.startEcho(f.server, 's1');
    await echo.ready;
    const rtt = async (host) => {
      const r = await host.exec([process.execPath, new URL('../test/e2e/tools/udp-rtt.mjs', import.meta.url).pathname, '--target', '192.0.2.100', '--count', '2000'], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`udp-rtt failed (${r.code}): ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').at(-1));
    };
    // Which member forwards the measured flow (traffic through the cluster is keyed by addresses only).
    const { classifyFlow } = await import('@gwcluster/native-addon');
    const { unit } = classifyFlow({ proto: 'tcp', src: c1.address(), dst: '192.0.2.100', forwarding: true });
    const flowOwner = async () => JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners[unit];
    const owner = await flowOwner();
    const rows = [];
    // TCP: one stream (all packets of a flow take one unit, so one member forwards it).
    const tcpCluster = await iperf(c1, []);
    const tcpPlain = await iperf(c2, []);
    const bps = (j) => j.end.sum_received.bits_per_second;
    rows.push(['TCP throughput, 1 stream', `${(bps(tcpCluster) / 1e6).toFixed(0)} Mbit/s`, `${(bps(tcpPlain) / 1e6).toFixed(0)} Mbit/s`, (bps(tcpCluster) / bps(tcpPlain)).toFixed(2)]);
    // CPU seconds the whole machine was busy per Gbit received, over the 1-stream run (endpoints included on both sides).
    const cpuPerGbit = (j) => j.busySeconds / ((bps(j) * j.end.sum_received.seconds) / 1e9);
    rows.push(['CPU s per Gbit, TCP 1 stream (whole host)', cpuPerGbit(tcpCluster).toFixed(3), cpuPerGbit(tcpPlain).toFixed(3), (cpuPerGbit(tcpCluster) / cpuPerGbit(tcpPlain)).toFixed(2)]);
    // TCP, 8 streams from one client: 8 source ports, so (for traffic through the cluster, keyed by
    // addresses only) still one unit; for a service on the cluster IP they would spread.
    const tcp8Cluster = await iperf(c1, ['-P', '8']);
    const tcp8Plain = await iperf(c2, ['-P', '8']);
    rows.push(['TCP throughput, 8 streams', `${(bps(tcp8Cluster) / 1e6).toFixed(0)} Mbit/s`, `${(bps(tcp8Plain) / 1e6).toFixed(0)} Mbit/s`, (bps(tcp8Cluster) / bps(tcp8Plain)).toFixed(2)]);
    // UDP packets per second: 64-byte payloads, as fast as iperf3 sends, counted at the receiver.
    const udpCluster = await iperf(c1, ['-u', '-b', '0', '-l', '64']);
    const udpPlain = await iperf(c2, ['-u', '-b', '0', '-l', '64']);
    const pps = (j) => (j.end.sum.packets - j.end.sum.lost_packets) / j.end.sum.seconds;
    const loss = (j) => `${j.end.sum.lost_percent.toFixed(1)} % lost`;
    rows.push(['UDP 64-byte packets received per second', `${(pps(udpCluster) / 1e3).toFixed(1)} kpps (${loss(udpCluster)})`, `${(pps(udpPlain) / 1e3).toFixed(1)} kpps (${loss(udpPlain)})`, (pps(udpCluster) / pps(udpPlain)).toFixed(2)]);
    // Added latency: one UDP flow, 2000 round trips one at a time.
    const rttCluster = await rtt(c1);
    const rttPlain = await rtt(c2);
    await echo.stop();
    const rttCell = (x) => `${x.p50Us} / ${x.p99Us} us (${x.sent - x.received} lost)`;
    rows.push(['UDP round trip p50 / p99 (2000, one flow)', rttCell(rttCluster), rttCell(rttPlain), rttCluster.p99Us && rttPlain.p99Us ? (rttCluster.p99Us / rttPlain.p99Us).toFixed(2) : 'n/a']);
    const ownerAfter = await flowOwner();
    const w = [44, 26, 26, 8];
    say(`method ${values.method}, path ${values.path}, sessions ${values.sessions}, ${seconds} s per measurement, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const master = f.latest()?.views[M[0]]?.master;
    const moved = ownerAfter === owner ? '' : ` before, by ${ownerAfter} after (it moved)`;
    say(`the flow's unit ${unit} is owned by ${owner}${moved}; the master is ${master}`);
    say(['measure', 'through the cluster', 'plain Linux router', 'ratio'].map((c, i) => c.padEnd(w[i])).join(''));
    for (const r of rows) say(r.map((c, i) => String(c).padEnd(w[i])).join(''));
  } finally {
    await f.destroy();
  }
}

if (want('failover')) {
  child('failover: gwcluster against keepalived + conntrackd (scripts/measure-failover-compare.mjs)', [
    'scripts/measure-failover-compare.mjs',
    '--rounds', values['failover-rounds'],
    '--connections', values['failover-connections'],
    '--methods', values['failover-methods'],
  ], 1_200_000);
}
