#!/usr/bin/env node
// npm run demo: a three-member gwcluster on the built-in network-namespace topology.
// It forms the cluster, shows `gwctl status`, kills the master with SIGKILL, shows the recovery,
// restarts the killed member, prints a short report and removes everything it created.
import { ClusterFixture, balanced, healthy, CLUSTER_IP } from '../e2e/cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const say = (s = '') => process.stdout.write(`${s}\n`);
const step = (s) => say(`\n== ${s}`);

const report = [];
const f = await ClusterFixture.create({ members: 3 });
let failed = false;
try {
  step(`topology: switch namespace ${f.net.switchNs}; members ${M.join(', ')} on 192.0.2.0/24; cluster IP ${CLUSTER_IP}; operator host 192.0.2.200`);
  f.startMonitor(10);
  await f.waitForView((v) => Object.keys(v).length === 3, { what: 'monitor' });

  step('starting gwclusterd on the three members');
  const t0 = Date.now();
  f.startAll();
  const formed = await f.waitForView((v) => balanced(v, M), { since: t0, timeoutMs: 30_000, what: 'the cluster to form' });
  const master = formed.views[M[0]].master;
  report.push(['cluster formed', `${formed.t - t0} ms after start (process start included); master ${master}`]);
  step('gwctl status (from the operator host)');
  say((await f.gwctl(['status'])).stdout.trimEnd());

  step(`kill -9 of the master ${master}`);
  const survivors = M.filter((ip) => ip !== master);
  const tk = f.kill9(master);
  const recovered = await f.waitForView((v) => healthy(v, survivors), { since: tk, timeoutMs: 20_000, what: 'recovery' });
  const detected = survivors.map((ip) => f.logLine(ip, /^master watchdog expired$/, tk)).filter(Boolean);
  const newMaster = recovered.views[survivors[0]].master;
  report.push(['master death detected', `${Math.min(...detected.map((l) => l.time)) - tk} ms after kill -9`]);
  report.push(['new master, complete table', `${recovered.t - tk} ms after kill -9; master ${newMaster}`]);
  step('gwctl status after the failover');
  say((await f.gwctl(['status'], { endpoint: `http://${newMaster}:7401` })).stdout.trimEnd());

  step(`restarting ${master}; it re-joins as a member and gets work back by rebalancing`);
  const tr = Date.now();
  f.start(master);
  const back = await f.waitForView((v) => balanced(v, M), { since: tr, timeoutMs: 30_000, what: 'rejoin' });
  report.push(['killed member re-joined and rebalanced', `${back.t - tr} ms after restart (process start included)`]);
  say((await f.gwctl(['status'], { endpoint: `http://${newMaster}:7401` })).stdout.trimEnd());
} catch (e) {
  failed = true;
  say(`\ndemo failed: ${e.message}`);
} finally {
  step('cleaning up namespaces, processes and files');
  await f.destroy();
}
step('report');
for (const [k, v] of report) say(`  ${k.padEnd(40)} ${v}`);
process.exit(failed ? 1 : 0);
