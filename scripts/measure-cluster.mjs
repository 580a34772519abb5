#!/usr/bin/env node
// Measures a real three-member cluster in network namespaces (test/e2e/cluster-fixture.mjs):
//   form      start of the three gwclusterd processes -> every member reports one master, three
//             members, 1024 units assigned, none moving, spread evenly (monitor polling every 10 ms);
//             also counted from the last process's first log line ("after boot")
//   detect    kill -9 -> the survivors' first log line that declares the death
//             (master killed: "master watchdog expired"; member killed: the master's "member removed")
//   complete  kill -9 -> every survivor reports the new complete table again
// Usage: node scripts/measure-cluster.mjs [--rounds N] [--json]
import { parseArgs } from 'node:util';
import { ClusterFixture, balanced, healthy } from '../test/e2e/cluster-fixture.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
const rounds = Math.max(1, Math.min(50, Number(values.rounds)));
const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], p50: q(0.5), max: s[s.length - 1] };
};

const f = await ClusterFixture.create({ members: 3 });
const result = { form: [], master: { detect: [], complete: [] }, member: { detect: [], complete: [] } };
try {
  f.startMonitor(10);
  await f.waitForView((v) => Object.values(v).length === 3, { what: 'monitor running' });
  const t0 = Date.now();
  f.startAll();
  const formed = await f.waitForView((v) => balanced(v, M), { since: t0, timeoutMs: 30_000, what: 'formation' });
  result.form.push(formed.t - t0);
  // The same, counted from the moment the last of the three processes was up (its first log line).
  const booted = Math.max(...M.map((ip) => f.logLine(ip, /^member starting$/, t0).time));
  result.formAfterBoot = [formed.t - booted];
  for (let r = 0; r < rounds; r++) {
    for (const kind of ['master', 'member']) {
      const views = f.latest().views;
      const master = views[M[0]].master;
      const victim = kind === 'master' ? master : M.find((ip) => ip !== master);
      const survivors = M.filter((ip) => ip !== victim);
      const tk = f.kill9(victim);
      const done = await f.waitForView((v) => healthy(v, survivors), { since: tk, timeoutMs: 20_000, what: `recovery from ${kind} death` });
      const detectLines = kind === 'master' ? survivors.map((ip) => f.logLine(ip, /^master watchdog expired$/, tk)).filter(Boolean) : [f.logLine(master, /^member removed$/, tk)].filter(Boolean);
      result[kind].detect.push(Math.min(...detectLines.map((l) => l.time)) - tk);
      result[kind].complete.push(done.t - tk);
      const tr = Date.now();
      f.start(victim);
      await f.waitForView((v) => balanced(v, M), { since: tr, timeoutMs: 30_000, what: 'rejoin' });
    }
  }
} finally {
  await f.destroy();
}
const report = {
  formMs: stats(result.form),
  formAfterBootMs: stats(result.formAfterBoot),
  masterDeath: { detectMs: stats(result.master.detect), completeTableMs: stats(result.master.complete) },
  memberDeath: { detectMs: stats(result.member.detect), completeTableMs: stats(result.member.complete) },
  raw: result,
};
if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  const row = (name, s) => `${name.padEnd(28)} n=${s.n}  min ${s.min} ms  p50 ${s.p50} ms  max ${s.max} ms`;
  console.log(row('time to form', report.formMs));
  console.log(row('  of which after boot', report.formAfterBootMs));
  console.log(row('master death: detect', report.masterDeath.detectMs));
  console.log(row('master death: complete table', report.masterDeath.completeTableMs));
  console.log(row('member death: detect', report.memberDeath.detectMs));
  console.log(row('member death: complete table', report.memberDeath.completeTableMs));
}
