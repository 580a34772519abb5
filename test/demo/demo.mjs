#!/usr/bin/env node
// npm run demo: a three-member gwcluster gateway on the built-in network-namespace topology.
//
//   outside 198.51.100.0/24: client c1 (default route via the cluster IP 198.51.100.10)
//   members m1..m3: eth0 outside 198.51.100.11-13, eth1 inside 192.0.2.11-13 (cluster protocol)
//   inside 192.0.2.0/24 (+ 203.0.113.100): server s1 (default route via the inside cluster IP 192.0.2.10)
//
// It forms the cluster, drives TCP and UDP flows to a service on the cluster IP and through the cluster
// and shows how the work spread over the members, then runs live connections through the cluster while
// it kills a member and then the master with SIGKILL, restarts them, prints a short report, and removes
// everything it created.
import { fileURLToPath } from 'node:url';
import { ClusterFixture, balanced, healthy, shared, CLUSTER_IP } from '../e2e/cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const LOCALS = Array.from({ length: 20 }, (_, i) => `198.51.100.${30 + i * 11}`);
const SERVERS = ['192.0.2.100', '203.0.113.100'];
const SOAK = fileURLToPath(new URL('../e2e/tools/soak.mjs', import.meta.url));
const say = (s = '') => process.stdout.write(`${s}\n`);
const step = (s) => say(`\n== ${s}`);
const report = [];

const f = await ClusterFixture.create({ members: 3, layout: 'gateway', method: 'master-forward', clients: 1 });
let failed = false;
try {
  step(`topology: clients on 198.51.100.0/24, members ${M.join(', ')}, server 192.0.2.100 / 203.0.113.100; cluster IPs ${CLUSTER_IP} (outside) and 192.0.2.10 (inside); data plane method 1 (master-forward)`);
  const c1 = f.clients[0];
  for (const a of LOCALS) await c1.addAddress('eth0', `${a}/24`);
  await f.server.addAddress('eth0', '203.0.113.100/24');
  for (const m of f.members) await m.host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
  f.startMonitor(20);
  await f.waitForView((v) => Object.keys(v).length === 3, { what: 'monitor' });

  step('starting gwclusterd on the three members');
  const t0 = Date.now();
  f.startAll();
  const formed = await f.waitForView((v) => balanced(v, M), { since: t0, timeoutMs: 30_000, what: 'the cluster to form' });
  report.push(['cluster formed', `${formed.t - t0} ms after start (Node start-up included); master ${formed.views[M[0]].master}`]);
  say((await f.gwctl(['status'])).stdout.trimEnd());

  step('traffic: 90 TCP and 90 UDP flows to a service on the cluster IP, and 60 + 60 through the cluster to the server');
  const echos = f.members.map((m) => f.startEcho(m.host, m.name));
  const server = f.startEcho(f.server, 's1');
  await new Promise((r) => setTimeout(r, 700));
  const svc = await f.traffic(c1, ['--target', CLUSTER_IP, '--tcp-port', '7000', '--udp-port', '7001', '--flows', '90', '--bytes', '20000', '--concurrency', '30']);
  const thr = await f.traffic(c1, ['--target', '192.0.2.100', '--tcp-port', '7000', '--udp-port', '7001', '--flows', '60', '--bytes', '20000', '--concurrency', '30']);
  const served = [];
  for (let i = 0; i < echos.length; i++) served.push(await echos[i].stop());
  say(`service flows: TCP ${svc.tcp.ok}/90 ok, UDP ${svc.udp.ok}/90 ok; through flows: TCP ${thr.tcp.ok}/60 ok, UDP ${thr.udp.ok}/60 ok`);
  say('who served the service flows (each flow by exactly the owner of its unit):');
  for (let i = 0; i < served.length; i++) say(`  ${f.members[i].name} ${f.members[i].ip}: ${served[i].tcpConnections} TCP connections, ${Object.keys(served[i].udpPeers).length} UDP flows`);
  report.push(['flows completed intact', `service ${svc.tcp.ok + svc.udp.ok}/180, through ${thr.tcp.ok + thr.udp.ok}/120`]);
  report.push(['service flows per member', served.map((s, i) => `${f.members[i].name} ${s.tcpConnections + Object.keys(s.udpPeers).length}`).join(', ')]);
  await server.stop();
  f.startEcho(f.server, 's1');
  await new Promise((r) => setTimeout(r, 700));

  for (const kind of ['member', 'master']) {
    const views = f.latest().views;
    const master = views[M[0]].master;
    const victim = kind === 'master' ? master : M.find((ip) => ip !== master);
    step(`120 live TCP connections through the cluster, each streaming both ways; kill -9 of the ${kind} ${victim} after 4 s`);
    const running = c1.exec([process.execPath, SOAK, '--targets', SERVERS.join(','), '--connections', '120', '--seconds', '10', '--local-addresses', LOCALS.join(',')], { timeoutMs: 120_000 });
    await new Promise((r) => setTimeout(r, 4000));
    const tk = f.kill9(victim);
    const survivors = M.filter((ip) => ip !== victim);
    const rec = await f.waitForView((v) => healthy(v, survivors), { since: tk, timeoutMs: 20_000, what: 'recovery' });
    const res = JSON.parse((await running).stdout.trim().split('\n').at(-1));
    const maxStall = Math.max(...res.stalls.map((s) => s.maxStallMs));
    say(`survivors own every unit ${rec.t - tk} ms after the kill; connections: ${res.completed}/120 completed with their data intact, ${res.failed} failed, ${res.resets} reset; longest stall ${maxStall} ms`);
    report.push([`kill -9 of the ${kind}`, `table complete after ${rec.t - tk} ms; ${res.completed}/120 connections survived (${res.resets} resets), longest stall ${maxStall} ms`]);
    say((await f.gwctl(['status'], { endpoint: `http://${survivors[0]}:7401` })).stdout.trimEnd());
    const tr = Date.now();
    f.start(victim);
    await f.waitForView((v) => shared(v, M), { since: tr, timeoutMs: 30_000, what: 'rejoin' });
    say(`${victim} restarted, received every session, re-joined and got work back`);
  }
} catch (e) {
  failed = true;
  say(`\ndemo failed: ${e.message}`);
} finally {
  step('cleaning up namespaces, processes and files');
  await f.destroy();
}
step('report');
for (const [k, v] of report) say(`  ${k.padEnd(32)} ${v}`);
process.exit(failed ? 1 : 0);
