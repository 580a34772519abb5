#!/usr/bin/env node
// Churn after a restarted member re-joins: a three-member gateway cluster carries paced TCP connections
// (test/e2e/tools/soak.mjs, so state sync is busy); each round kills a member that is not the master with
// SIGKILL, restarts its gwclusterd and waits until the cluster is whole again. Reported per round, from
// the members' logs and status counters: how long the re-join took, how many role changes and distinct
// epochs every member logged from the restart until the cluster had been whole for 3 s, how many EXIT
// CLUSTER not-a-member log lines, and the datagrams the envelope dropped as replays.
//
// Usage: node scripts/measure-rejoin.mjs [--rounds 4] [--connections 100] [--victim member|master] [--log-out FILE]
// (--log-out: every member's log lines of each round, from the restart until the cluster settled).
// Run under the shared lock: flock /tmp/gwc-e2e.lock node scripts/measure-rejoin.mjs
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LOCALS, M, SERVERS, SOAK } from './failover-common.mjs';
import { ClusterFixture, healthy } from '../test/e2e/cluster-fixture.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, connections: { type: 'string', default: '100' }, victim: { type: 'string', default: 'member' }, 'log-out': { type: 'string' } } });
const ROUNDS = Number(values.rounds);
const N = Number(values.connections);

async function replayDrops(f, ip) {
  const r = await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` });
  if (r.code !== 0) return null;
  const c = JSON.parse(r.stdout).cluster.counters;
  return Object.entries(c).filter(([k]) => /replay/.test(k)).reduce((a, [, v]) => a + v, 0);
}

const f = await ClusterFixture.create({ members: 3, layout: 'gateway', method: 'master-forward', clients: 1 });
const rows = [];
try {
  for (const a of LOCALS) await f.clients[0].addAddress('eth0', `${a}/24`);
  await f.server.addAddress('eth0', '203.0.113.100/24');
  for (const m of f.members) await m.host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
  f.startMonitor(50);
  f.startAll();
  await f.waitForView((v) => healthy(v, M), { timeoutMs: 30_000, holdMs: 2000, what: 'one cluster' });
  f.startEcho(f.server, 's1');
  await new Promise((r) => setTimeout(r, 700));
  const seconds = ROUNDS * 12 + 10;
  const soak = f.clients[0].exec([process.execPath, SOAK, '--targets', SERVERS.join(','), '--port', '7000', '--connections', String(N), '--seconds', String(seconds), '--local-addresses', LOCALS.join(','), '--idle-fail-ms', '45000'], { timeoutMs: (seconds + 90) * 1000 });
  await new Promise((r) => setTimeout(r, 3000));
  for (let round = 1; round <= ROUNDS; round++) {
    await f.waitForView((v) => healthy(v, M), { timeoutMs: 60_000, holdMs: 2000, what: 'one settled cluster' });
    const master = f.latest().views[M[0]].master;
    const victim = values.victim === 'master' ? master : M.filter((ip) => ip !== master).at(round % 2);
    const before = {};
    for (const ip of M) before[ip] = (await replayDrops(f, ip)) ?? 0;
    const t0 = f.kill9(victim);
    await f.waitForView((v) => healthy(v, M.filter((ip) => ip !== victim)), { since: t0, timeoutMs: 30_000, what: 'survivors' });
    const tr = Date.now();
    f.start(victim);
    let back = null;
    try {
      const s = await f.waitForView((v) => healthy(v, M), { since: tr, timeoutMs: 60_000, what: 'the victim back' });
      back = s.t - tr;
      await f.waitForView((v) => healthy(v, M), { since: s.t, timeoutMs: 60_000, holdMs: 3000, what: 'settled' });
    } catch (e) {
      console.error(String(e));
      console.error(f.recentLogs(30));
    }
    const tEnd = Date.now();
    const row = { round, victim, master, rejoinMs: back, perMember: {} };
    for (const ip of M) {
      const lines = f.logs.get(ip).filter((l) => l.time >= tr && l.time <= tEnd);
      const roles = lines.filter((l) => /^role is now/.test(l.msg ?? '')).map((l) => l.msg.slice(12));
      const epochs = [...new Set(lines.map((l) => l.epoch).filter((e) => typeof e === 'number' && e > 0))];
      const notMember = lines.filter((l) => /not a member/.test(JSON.stringify(l))).length;
      const drops = await replayDrops(f, ip);
      if (values['log-out']) {
        for (const l of lines) {
          const { time, msg, epoch, role, level, pid, hostname, member, ...rest } = l;
          appendFileSync(values['log-out'], `r${round} ${new Date(time).toISOString().slice(11, 23)} ${ip} ${role ?? ''}/${epoch ?? ''} ${msg} ${JSON.stringify(rest)}\n`);
        }
      }
      row.perMember[ip] = { roles: roles.join('>'), epochs: epochs.join(','), notMemberLines: notMember, replayDrops: drops === null ? null : ip === victim ? drops : drops - before[ip] };
    }
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  const r = await soak;
  console.log(`soak: ${r.stdout.trim().split('\n').at(-1)}`);
} finally {
  await f.destroy();
}
