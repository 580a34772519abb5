#!/usr/bin/env node
// Measures what the protocol's keepalives cost on an idle three-member cluster in network namespaces:
// datagrams and bytes per second each member sends on the cluster protocol's UDP port (nftables counters
// in its namespace: every datagram is a signed envelope, the master's carrying its certificate chain),
// and the CPU each gwclusterd process uses (utime + stime from /proc/PID/stat), over --seconds. Runs the
// default timings and, for comparison, T = 100 ms with the digest's floor n >= 2 and K = 3600.
//
// Usage: node scripts/measure-keepalive.mjs [--seconds 10] [--json]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ClusterFixture, healthy } from '../test/e2e/cluster-fixture.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, json: { type: 'boolean', default: false } } });
const SECONDS = Math.max(2, Math.min(120, Number(values.seconds)));
const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const TABLE = 'gwtkacost';

function cpuMs(pid) {
  const parts = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(parts[11]) + Number(parts[12])) * 1000) / 100;
}

async function sent(f, ip) {
  const r = await f.member(ip).host.exec(['nft', 'list', 'table', 'inet', TABLE]);
  const m = /counter packets (\d+) bytes (\d+)/.exec(r.stdout);
  return { packets: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) };
}

async function run(label, cluster) {
  const f = await ClusterFixture.create({ members: 3, extraConfig: { cluster } });
  try {
    f.startMonitor(500);
    f.startAll();
    await f.waitForView((v) => healthy(v, M), { timeoutMs: 30_000, what: 'a healthy cluster' });
    await new Promise((r) => setTimeout(r, 3000)); // past the first rebalance
    for (const ip of M) {
      const script = `table inet ${TABLE} {\n  chain out {\n    type filter hook output priority 0; policy accept;\n    udp dport 7400 counter\n  }\n}\n`;
      const r = await f.member(ip).host.exec(['sh', '-c', `printf '%s' '${script}' | nft -f -`]);
      if (r.code !== 0) throw new Error(`nft: ${r.stderr}`);
    }
    const master = f.latest().views[M[0]].master;
    const cpu0 = M.map((ip) => cpuMs(f.procs.get(ip).pid));
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const secs = (Date.now() - t0) / 1000;
    const cpu1 = M.map((ip) => cpuMs(f.procs.get(ip).pid));
    const out = [];
    for (const [i, ip] of M.entries()) {
      const c = await sent(f, ip);
      out.push({
        member: ip,
        role: ip === master ? 'master' : 'member',
        packetsPerSecond: Math.round(c.packets / secs),
        bytesPerSecond: Math.round(c.bytes / secs),
        bytesPerPacket: Math.round(c.bytes / Math.max(1, c.packets)),
        cpuPercentOfOneCore: Number(((cpu1[i] - cpu0[i]) / (secs * 10)).toFixed(1)),
      });
    }
    return { label, cluster, seconds: Number(secs.toFixed(1)), members: out };
  } finally {
    await f.destroy();
  }
}

const report = [await run('defaults', {}), await run('T=100 ms, n>=2, K=3600', { keepalivePeriodMs: 100, minWatchdogPeriods: 2, lossToleranceK: 3600 })];
if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  for (const r of report) {
    console.log(`${r.label} (${r.seconds} s, idle):`);
    for (const m of r.members) console.log(`  ${m.member} ${m.role.padEnd(6)} ${m.packetsPerSecond} datagrams/s, ${m.bytesPerSecond} bytes/s (${m.bytesPerPacket} per datagram), CPU ${m.cpuPercentOfOneCore} % of one core`);
  }
}
