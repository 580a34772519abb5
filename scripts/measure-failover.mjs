#!/usr/bin/env node
// Measures state sync and failover on a real three-member cluster in network namespaces
// (method master-forward, strict session tracking, state sync on):
//
//   stall      200 TCP connections stream both ways through the cluster (1 KB every 50 ms each way);
//              a member (odd rounds) or the master (even rounds) is killed with SIGKILL mid-stream; for
//              every connection whose unit the victim owned, the longest gap between two received
//              chunks. Reported as p50 / p99 / max over all rounds, with the count of failed connections.
//   cost       with the same 200 streams and no failure: replication records, messages and bytes per
//              second sent by all members, bytes per connection per second, and the CPU the gwclusterd
//              processes used (from /proc/PID/stat) against the same streams with sync switched off.
//
// Usage: node scripts/measure-failover.mjs [--rounds 4] [--connections 200] [--method master-forward]
//        [--no-cost] [--json]
//   --method   the distribution method (master-forward, unicast-mac, multicast-mac; docs/dataplane.md)
//   --no-cost  only the failover stalls
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LOCALS, M, SERVERS, SOAK, pct, unitOf } from './failover-common.mjs';
import { ClusterFixture, balanced, healthy, shared } from '../test/e2e/cluster-fixture.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    connections: { type: 'string', default: '200' },
    method: { type: 'string', default: 'master-forward' },
    'no-cost': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const METHOD = values.method;
if (!['master-forward', 'unicast-mac', 'multicast-mac'].includes(METHOD)) throw new Error(`--method ${METHOD}: one of master-forward, unicast-mac, multicast-mac`);
const ROUNDS = Math.max(1, Math.min(20, Number(values.rounds)));
const N = Math.max(10, Math.min(1000, Number(values.connections)));

async function cluster(sync) {
  const f = await ClusterFixture.create({ members: 3, layout: 'gateway', method: METHOD, clients: 1, extraConfig: sync ? {} : { dataplane: { sessions: { sync: false } } } });
  for (const a of LOCALS) await f.clients[0].addAddress('eth0', `${a}/24`);
  await f.server.addAddress('eth0', '203.0.113.100/24');
  for (const m of f.members) await m.host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
  f.startMonitor(50);
  f.startAll();
  await f.waitForView((v) => balanced(v, M), { timeoutMs: 30_000, what: 'a balanced cluster' });
  f.startEcho(f.server, 's1');
  await new Promise((r) => setTimeout(r, 700));
  return f;
}

function soak(f, seconds) {
  return f.clients[0]
    .exec([process.execPath, SOAK, '--targets', SERVERS.join(','), '--connections', String(N), '--seconds', String(seconds), '--local-addresses', LOCALS.join(','), '--idle-fail-ms', '10000'], { timeoutMs: (seconds + 90) * 1000 })
    .then((r) => JSON.parse(r.stdout.trim().split('\n').at(-1)));
}

async function counters(f, ip) {
  const r = await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` });
  return JSON.parse(r.stdout);
}

function cpuMs(pid) {
  const parts = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(parts[11]) + Number(parts[12])) * 1000) / 100; // utime + stime, clock ticks of 10 ms
}

const report = { method: METHOD, connections: N, stall: { rounds: [], affected: 0, failed: 0 }, cost: {} };

// Failover stalls.
{
  const f = await cluster(true);
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const owners = JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners;
      const master = f.latest().views[M[0]].master;
      const kind = r % 2 === 0 ? 'member' : 'master';
      const victim = kind === 'master' ? master : M.find((ip) => ip !== master);
      const running = soak(f, 12);
      await new Promise((res) => setTimeout(res, 5000));
      const t0 = f.kill9(victim);
      const survivors = M.filter((ip) => ip !== victim);
      const done = await f.waitForView((v) => healthy(v, survivors), { since: t0, timeoutMs: 15_000, what: 'recovery' });
      const result = await running;
      const affected = result.stalls.filter((s) => owners[unitOf(s.local)] === victim).map((s) => s.maxStallMs);
      const all = result.stalls.map((s) => s.maxStallMs);
      report.stall.rounds.push({ kind, victim, recoveredMs: done.t - t0, affected: affected.length, failed: result.failed, affectedStallsMs: affected, allMaxStallMs: Math.max(...all) });
      report.stall.affected += affected.length;
      report.stall.failed += result.failed;
      const tr = Date.now();
      f.start(victim);
      await f.waitForView((v) => shared(v, M), { since: tr, timeoutMs: 30_000, what: 'rejoin' });
    }
  } finally {
    await f.destroy();
  }
  const stalls = report.stall.rounds.flatMap((r) => r.affectedStallsMs);
  report.stall.p50Ms = pct(stalls, 0.5);
  report.stall.p99Ms = pct(stalls, 0.99);
  report.stall.maxMs = Math.max(...stalls);
  const byKind = (k) => report.stall.rounds.filter((r) => r.kind === k).flatMap((r) => r.affectedStallsMs);
  report.stall.member = { p50Ms: pct(byKind('member'), 0.5), p99Ms: pct(byKind('member'), 0.99) };
  report.stall.master = { p50Ms: pct(byKind('master'), 0.5), p99Ms: pct(byKind('master'), 0.99) };
}

// Replication cost: the same streams with sync on and off.
for (const sync of values['no-cost'] ? [] : [true, false]) {
  const f = await cluster(sync);
  try {
    const before = await Promise.all(M.map((ip) => counters(f, ip)));
    const cpu0 = M.map((ip) => cpuMs(f.procs.get(ip).pid));
    const t0 = Date.now();
    const result = await soak(f, 10);
    const secs = (Date.now() - t0) / 1000;
    const cpu1 = M.map((ip) => cpuMs(f.procs.get(ip).pid));
    const after = await Promise.all(M.map((ip) => counters(f, ip)));
    const sum = (k) => after.reduce((a, s, i) => a + (s.cluster.counters[k] ?? 0) - (before[i].cluster.counters[k] ?? 0), 0);
    report.cost[sync ? 'syncOn' : 'syncOff'] = {
      seconds: Number(secs.toFixed(1)),
      completed: result.completed,
      recordsPerSecond: Math.round(sum('node.dataplane.sessions.sync.recordsSent') / secs),
      messagesPerSecond: Math.round(sum('node.dataplane.sessions.sync.messagesSent') / secs),
      recordBytesPerSecond: Math.round(sum('node.dataplane.sessions.sync.bytesSent') / secs),
      bytesPerConnectionPerSecond: Number((sum('node.dataplane.sessions.sync.bytesSent') / secs / N).toFixed(1)),
      cpuPercentOfOneCore: Number(((cpu1.reduce((a, b) => a + b, 0) - cpu0.reduce((a, b) => a + b, 0)) / (secs * 10)).toFixed(1)),
    };
  } finally {
    await f.destroy();
  }
}

if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  const s = report.stall;
  console.log(`failover, method ${METHOD}, ${N} connections, ${ROUNDS} kills (member, master alternately):`);
  for (const r of s.rounds) console.log(`  ${r.kind.padEnd(6)} ${r.victim}: recovered in ${r.recoveredMs} ms; ${r.affected} affected connections, ${r.failed} failed; their longest stall p50 ${pct(r.affectedStallsMs, 0.5)} ms, max ${Math.max(...r.affectedStallsMs)} ms`);
  console.log(`  all kills: affected ${s.affected}, failed ${s.failed}; stall p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, max ${s.maxMs} ms (member kills p50 ${s.member.p50Ms} / p99 ${s.member.p99Ms}; master kills p50 ${s.master.p50Ms} / p99 ${s.master.p99Ms})`);
  for (const [k, c] of Object.entries(report.cost)) console.log(`replication ${k}: ${JSON.stringify(c)}`);
}
