#!/usr/bin/env node
// Failover side by side: the same scenario on the same namespace topology against gwcluster (each of
// its distribution methods) and against the classic Linux answer, keepalived + conntrackd
// (bench/keepalived/: VRRPv3 at advert_int 0.01 s, real-time VRRP process, conntrackd FTFW with the
// primary-backup commit script, an nftables stateful firewall dropping `ct state invalid`, TCP loose
// pick-up off), in the same run.
//
// Scenario: a client namespace with 20 addresses opens N TCP connections (default 300) through the
// gateway to 2 server addresses; each writes 1 KB every 50 ms and reads the echo back (test/e2e/tools/
// soak.mjs). `--kill-at` seconds into a `--seconds` long run one gateway box fails:
//   victim   active: gwcluster's master / keepalived's active box (holding the VIPs)
//            other:  a gwcluster member that is not the master / a keepalived backup
//   failure  kill9:  every process of the box killed with SIGKILL (gwclusterd; keepalived, its VRRP
//                    child and conntrackd); the box's kernel and links stay up
//            power:  the same and, at once, the box's links down (its switch ports), as on a power loss
// Then the box is brought back (links up, processes restarted) and the next scenario runs.
//
// Reported per scenario: connections broken (reset, stalled for 10 s or corrupt), the connections the
// failure affected (gwcluster: those on units the victim owned, and all of them when the master dies in
// method master-forward, where every packet crosses the master; keepalived: all when the active box
// dies, none when a backup dies) and their longest stall (longest gap between two received chunks)
// p50 / p99 / max, with the ratio gwcluster / keepalived for the same victim and failure.
//
// Usage: node scripts/measure-failover-compare.mjs [--rounds 1] [--connections 300]
//          [--methods master-forward,unicast-mac,multicast-mac] [--systems gwcluster,keepalived]
//          [--failures kill9,power] [--victims active,other] [--seconds 9] [--kill-at 3] [--json]
//          [--path auto|nfqueue|kernel]   (gwcluster's dataplane.path; default: the configuration default)
//          [--trace FILE]   (appends every member's log lines from the start of the traffic to 1.5 s after each gwcluster
//                            failure, times relative to the kill, to FILE: where the stall went)
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { appendFileSync } from 'node:fs';
import { LOCALS, M, SERVERS, SOAK, pct, unitOf } from './failover-common.mjs';
import { ClusterFixture, balanced, healthy, shared } from '../test/e2e/cluster-fixture.mjs';
import { KeepalivedBaseline } from '../bench/keepalived/baseline.mjs';
import { runOk } from '../test/harness/commands.mjs';

const list = (s, allowed, what) => {
  const xs = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const x of xs) if (!allowed.includes(x)) throw new Error(`--${what}: unknown ${JSON.stringify(x)} (allowed: ${allowed.join(', ')})`);
  if (!xs.length) throw new Error(`--${what}: empty`);
  return xs;
};
const num = (s, lo, hi, what) => {
  const n = Number(s);
  if (!Number.isFinite(n) || n < lo || n > hi) throw new Error(`--${what} must be a number from ${lo} to ${hi}, got ${JSON.stringify(s)}`);
  return n;
};
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '1' },
    connections: { type: 'string', default: '300' },
    methods: { type: 'string', default: 'master-forward,unicast-mac,multicast-mac' },
    systems: { type: 'string', default: 'gwcluster,keepalived' },
    failures: { type: 'string', default: 'kill9,power' },
    victims: { type: 'string', default: 'active,other' },
    seconds: { type: 'string', default: '9' },
    'kill-at': { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
    path: { type: 'string' },
    trace: { type: 'string' },
  },
});
const ROUNDS = num(values.rounds, 1, 20, 'rounds');
const N = num(values.connections, 10, 1000, 'connections');
const METHODS = list(values.methods, ['master-forward', 'unicast-mac', 'multicast-mac'], 'methods');
const SYSTEMS = list(values.systems, ['gwcluster', 'keepalived'], 'systems');
const FAILURES = list(values.failures, ['kill9', 'power'], 'failures');
const VICTIMS = list(values.victims, ['active', 'other'], 'victims');
const SECONDS = num(values.seconds, 4, 60, 'seconds');
const KILL_AT = num(values['kill-at'], 1, SECONDS - 2, 'kill-at');
const PATH = values.path === undefined ? undefined : list(values.path, ['auto', 'nfqueue', 'kernel'], 'path')[0];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`${s}\n`);

/** The scenarios of one system, in order: each failure kind, each victim, `rounds` times. */
const scenarios = () => Array.from({ length: ROUNDS }, () => FAILURES.flatMap((failure) => VICTIMS.map((victim) => ({ failure, victim })))).flat();

async function soak(client) {
  const r = await client.exec(
    [process.execPath, SOAK, '--targets', SERVERS.join(','), '--port', '7000', '--connections', String(N), '--seconds', String(SECONDS), '--local-addresses', LOCALS.join(','), '--idle-fail-ms', '10000'],
    { timeoutMs: (SECONDS + 90) * 1000 },
  );
  if (r.code !== 0) throw new Error(`soak failed (${r.timedOut ? 'no result within its time limit' : `exit ${r.code ?? r.signal}`}): ${r.stderr}${r.stdout.slice(-400)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

/** Sets the switch ports of a host's links down or up (a power loss's links). */
function links(net, host, state) {
  const batch = host.interfaces.map((i) => `link set ${i.port} ${state}`).join('\n') + '\n';
  return runOk(['ip', '-n', net.switchNs, '-batch', '-'], { input: batch });
}

function summary(base, result, affectedStalls) {
  return {
    ...base,
    connections: result.connections,
    broken: result.failed,
    errors: result.errors,
    affected: affectedStalls.length,
    p50Ms: pct(affectedStalls, 0.5),
    p99Ms: pct(affectedStalls, 0.99),
    maxMs: affectedStalls.length ? Math.max(...affectedStalls) : null,
    allMaxMs: Math.max(...result.stalls.map((s) => s.maxStallMs)),
    affectedStallsMs: affectedStalls,
  };
}

/** Before a failure, the trace starts this long before it: from the start of the traffic. */
const TRACE_BEFORE_MS = (KILL_AT + 0.5) * 1000;

/** Appends the members' log lines around a failure at t0 to `file`, each with its time relative to t0. */
function traceLogs(f, file, title, t0) {
  const lines = [];
  for (const m of f.members) {
    for (const l of f.logs.get(m.ip)) {
      if (l.time < t0 - TRACE_BEFORE_MS || l.time > t0 + 1500) continue;
      const { time, msg, level, pid, hostname, ...rest } = l;
      lines.push({ t: time - t0, text: `${String(time - t0).padStart(6)} ms ${m.ip} ${msg ?? ''} ${JSON.stringify(rest)}` });
    }
  }
  lines.sort((a, b) => a.t - b.t);
  appendFileSync(file, `## ${title}\n${lines.map((l) => l.text).join('\n')}\n\n`);
}

async function runGwcluster(method, out) {
  const f = await ClusterFixture.create({ members: 3, layout: 'gateway', method, clients: 1, ...(PATH ? { extraConfig: { dataplane: { path: PATH } } } : {}) });
  try {
    for (const a of LOCALS) await f.clients[0].addAddress('eth0', `${a}/24`);
    await f.server.addAddress('eth0', '203.0.113.100/24');
    for (const m of f.members) await m.host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
    f.startMonitor(50);
    f.startAll();
    await f.waitForView((v) => balanced(v, M), { timeoutMs: 30_000, what: 'a balanced cluster' });
    f.startEcho(f.server, 's1');
    await sleep(700);
    for (const { failure, victim: role } of scenarios()) {
      const owners = JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners;
      const master = f.latest().views[M[0]].master;
      const victim = role === 'active' ? master : M.find((ip) => ip !== master);
      const host = f.member(victim).host;
      const running = soak(f.clients[0]);
      await sleep(KILL_AT * 1000);
      let t0;
      if (failure === 'power') {
        const down = links(f.net, host, 'down');
        t0 = f.kill9(victim);
        await down;
      } else t0 = f.kill9(victim);
      const survivors = M.filter((ip) => ip !== victim);
      const done = await f.waitForView((v) => healthy(v, survivors), { since: t0, timeoutMs: 15_000, what: 'recovery' }).catch(() => null);
      const base = { system: 'gwcluster', method, failure, victim: role, box: victim, recoveredMs: done ? done.t - t0 : null };
      const result = await running.catch((e) => ({ error: e }));
      if (result.error) {
        out.push({ ...base, error: String(result.error.message).slice(0, 300) });
        log(`  gwcluster ${method} ${failure} ${role} (${victim}): NOT MEASURED: ${out.at(-1).error}`);
      } else {
        const all = method === 'master-forward' && victim === master;
        const affected = result.stalls.filter((s) => all || owners[unitOf(s.local)] === victim).map((s) => s.maxStallMs);
        const row = summary(base, result, affected);
        out.push(row);
        log(`  gwcluster ${method} ${failure} ${role} (${victim}): recovered ${row.recoveredMs ?? 'not within 15 s'} ms, ${row.affected} affected, ${row.broken} broken ${JSON.stringify(row.errors)}, stall p50 ${row.p50Ms} p99 ${row.p99Ms} ms, longest of all ${row.allMaxMs} ms`);
      }
      if (values.trace) traceLogs(f, values.trace, `${method} ${failure} ${role} (${victim}, master ${master})`, t0);
      if (failure === 'power') await links(f.net, host, 'up');
      const tr = Date.now();
      f.start(victim);
      await f.waitForView((v) => shared(v, M), { since: tr, timeoutMs: 60_000, what: 'rejoin' }).catch((e) => {
        throw new Error(`${e.message}\n${f.recentLogs(25)}`);
      });
    }
  } finally {
    await f.destroy();
  }
}

async function runKeepalived(out) {
  const b = await KeepalivedBaseline.create({ clients: 1 });
  try {
    for (const a of LOCALS) await b.clients[0].addAddress('eth0', `${a}/24`);
    await b.server.addAddress('eth0', '203.0.113.100/24');
    await b.startAll();
    await b.waitForActive();
    b.startEcho();
    await sleep(700);
    for (const { failure, victim: role } of scenarios()) {
      const active = await b.waitForActive();
      const victim = role === 'active' ? active : b.boxes.find((x) => x.name !== active).name;
      const running = soak(b.clients[0]);
      await sleep(KILL_AT * 1000);
      const t0 = failure === 'power' ? await b.powerLoss(victim) : await b.kill9(victim);
      // The VIPs on one live box other than the victim (after kill -9 the victim's kernel keeps them).
      const now = await b.waitForActive({ not: [victim], timeoutMs: 15_000 });
      // From the kill to the new active box's notify_master (it holds the VIPs and commits the state).
      const recoveredMs = role === 'active' ? (b.tookOverAt(now, t0) ?? Date.now()) - t0 : 0;
      const result = await running.catch((e) => ({ error: e }));
      const base = { system: 'keepalived', method: 'vrrp', failure, victim: role, box: victim, recoveredMs, newActive: now };
      if (result.error) {
        out.push({ ...base, error: String(result.error.message).slice(0, 300) });
        log(`  keepalived ${failure} ${role} (${victim}): NOT MEASURED: ${out.at(-1).error}`);
      } else {
        const affected = role === 'active' ? result.stalls.map((s) => s.maxStallMs) : [];
        const row = summary(base, result, affected);
        out.push(row);
        log(`  keepalived ${failure} ${role} (${victim}, active now ${now}): took over after ${recoveredMs} ms, ${row.affected} affected, ${row.broken} broken ${JSON.stringify(row.errors)}, stall p50 ${row.p50Ms} p99 ${row.p99Ms} ms, longest of all ${row.allMaxMs} ms`);
      }
      await b.restore(victim);
      await sleep(500);
      await b.waitForActive();
    }
  } finally {
    await b.destroy();
  }
}

const rows = [];
const started = Date.now();
log(`failover comparison: gwcluster path ${PATH ?? 'default'}, ${N} connections, ${SECONDS} s runs, failure at ${KILL_AT} s, ${ROUNDS} round(s) per scenario, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
if (SYSTEMS.includes('keepalived')) await runKeepalived(rows);
if (SYSTEMS.includes('gwcluster')) for (const method of METHODS) await runGwcluster(method, rows);

/** Rows of one system / method / failure / victim merged over the rounds. */
function merge(sel) {
  const all = rows.filter(sel);
  const rs = all.filter((r) => !r.error);
  if (!rs.length) return all.length ? { rounds: 0, notMeasured: all.length, connections: 0, broken: 0, affected: 0, p50Ms: null, p99Ms: null, recoveredMs: null } : null;
  const stalls = rs.flatMap((r) => r.affectedStallsMs);
  return {
    rounds: rs.length,
    notMeasured: all.length - rs.length,
    connections: rs.reduce((a, r) => a + r.connections, 0),
    broken: rs.reduce((a, r) => a + r.broken, 0),
    affected: stalls.length,
    p50Ms: pct(stalls, 0.5),
    p99Ms: pct(stalls, 0.99),
    recoveredMs: rs.some((r) => r.recoveredMs === null) ? null : pct(rs.map((r) => r.recoveredMs), 0.5),
  };
}

const table = [];
for (const failure of FAILURES) {
  for (const victim of VICTIMS) {
    const k = merge((r) => r.system === 'keepalived' && r.failure === failure && r.victim === victim);
    if (k) table.push({ failure, victim, system: 'keepalived + conntrackd', ...k, ratioP50: null, ratioP99: null });
    for (const method of SYSTEMS.includes('gwcluster') ? METHODS : []) {
      const g = merge((r) => r.system === 'gwcluster' && r.method === method && r.failure === failure && r.victim === victim);
      if (!g) continue;
      const ratio = (a, b) => (k && k.affected && g.affected && b > 0 ? Number((a / b).toFixed(2)) : null);
      table.push({ failure, victim, system: `gwcluster ${method}`, ...g, ratioP50: ratio(g.p50Ms, k?.p50Ms), ratioP99: ratio(g.p99Ms, k?.p99Ms) });
    }
  }
}

if (values.json) {
  process.stdout.write(`${JSON.stringify({ connections: N, seconds: SECONDS, killAt: KILL_AT, rounds: ROUNDS, table, scenarios: rows }, null, 2)}\n`);
} else {
  const say = (s) => process.stdout.write(`${s}\n`);
  const what = { kill9: 'kill -9', power: 'power loss' };
  const who = { active: 'master / active box', other: 'other member / backup' };
  say(`failover: ${N} connections, 1 KB every 50 ms each way, failure ${KILL_AT} s into ${SECONDS} s, ${ROUNDS} round(s) each; ${((Date.now() - started) / 1000).toFixed(0)} s; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  say('recovered: gwcluster, from the kill to the survivors owning every unit (monitor, 50 ms polls); keepalived, to the new active box\'s notify_master');
  say('| failure | victim | system | broken | affected | longest stall p50 | p99 | ratio p50 / p99 (gwcluster / keepalived) | recovered (p50) |');
  say('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const t of table) {
    const stall = (x) => (t.affected ? `${x} ms` : 'no flow affected');
    const ratio = t.system.startsWith('keepalived') ? '' : t.ratioP50 === null ? 'n/a' : `${t.ratioP50} / ${t.ratioP99}`;
    const recovered = t.system.startsWith('keepalived') && t.victim === 'other' ? 'no takeover' : t.recoveredMs === null ? '> 15 s' : `${t.recoveredMs} ms`;
    const system = t.notMeasured ? `${t.system} (${t.notMeasured} run(s) not measured, see above)` : t.system;
    say(`| ${what[t.failure]} | ${who[t.victim]} | ${system} | ${t.broken} of ${t.connections} | ${t.affected} | ${stall(t.p50Ms)} | ${t.affected ? `${t.p99Ms} ms` : ''} | ${ratio} | ${recovered} |`);
  }
}
