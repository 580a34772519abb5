// Work follows traffic on a real network (cluster.unitAssignment first-packet): a site-to-site gateway
// between two /24s (16 hosts outside, 8 inside), UDP flows between every pair through three members.
// No unit is owned before traffic; each unit goes to the least loaded member when its first packet
// reaches the master, so the flows spread over all three members. (The 128 flows fall into the 32 units
// 736..767, 4 flows each: with unitAssignment at-once, all inside one member's contiguous third.) Which member forwarded each flow is
// read from the members' own per-unit packet counters (/metrics), not from timing.
//
// In method 1 the master forwards a unit's packets to its owner's MAC: every member's MAC is learnt once
// it is a member (DataPlanePolicy), so the packets held for a unit's first owner can go out at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyFlow } from '@gwcluster/native-addon';
import { ClusterFixture, TOKEN } from './cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const OUTSIDE = Array.from({ length: 16 }, (_, i) => `198.51.100.${40 + i}`);
const INSIDE = Array.from({ length: 8 }, (_, i) => `192.0.2.${100 + i}`);

/** Per flow: sends `count` datagrams bound to its source, counts the echoes. */
const SENDER = `
const dgram = require('node:dgram');
const [pairs, count] = [JSON.parse(process.argv[1]), Number(process.argv[2])];
Promise.all(pairs.map(([src, dst]) => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  let got = 0;
  s.on('message', () => { got++; if (got === count) { s.close(); resolve(got); } });
  s.bind(0, src, () => { for (let i = 0; i < count; i++) setTimeout(() => s.send(Buffer.from('x' + i), 7001, dst), i * 20); });
  setTimeout(() => { try { s.close(); } catch {} resolve(got); }, 8000);
}))).then((r) => process.stdout.write(JSON.stringify(r)));
`;

/** A UDP echo on port 7001 of each given address (one socket each, so a reply leaves from the address asked). */
const ECHO = `
const dgram = require('node:dgram');
for (const a of JSON.parse(process.argv[1])) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(7001, a);
}
setTimeout(() => process.exit(0), 60000);
`;

async function unitPackets(f: ClusterFixture, ip: string): Promise<Map<number, number>> {
  const r = await f.ops.exec([process.execPath, '-e', `fetch('http://${ip}:7401/metrics',{headers:{authorization:'Bearer ${TOKEN}'}}).then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  const m = new Map<number, number>();
  for (const line of r.stdout.split('\n')) {
    const x = /^gwcluster_unit_packets_total\{[^}]*unit="(\d+)"[^}]*\} (\d+)/.exec(line);
    if (x) m.set(Number(x[1]), (m.get(Number(x[1])) ?? 0) + Number(x[2]));
  }
  return m;
}

describe('first-packet assignment, site-to-site gateway between two /24s', () => {
  let f: ClusterFixture;
  beforeAll(async () => {
    // No rebalance round during the test (every 10 min): it checks where each unit went when its first
    // packet came, against the members' own counters. No session replication: with it, a member is given
    // units only once it holds the others' sessions (sync-ready), which the admin API does not show, so
    // the test could not tell when all three may take work.
    f = await ClusterFixture.create({
      members: 3,
      layout: 'gateway',
      clients: 1,
      extraConfig: { cluster: { unitAssignment: 'first-packet', rebalanceThreshold: 0.5, rebalanceIntervalMs: 600000 }, dataplane: { sessions: { sync: false } } },
    });
    for (const a of OUTSIDE) await f.clients![0]!.ip('addr', 'add', `${a}/24`, 'dev', 'eth0');
    for (const a of INSIDE.slice(1)) await f.server!.ip('addr', 'add', `${a}/24`, 'dev', 'eth0'); // .100 is s1's own
    f.startMonitor(100);
    f.startAll();
    await f.waitForView(
      (v) => M.every((ip) => v[ip] && !v[ip].error && M.includes(v[ip].master) && v[ip].master === v[M[0]!].master && v[ip].members.length === 3 && v[ip].moving === 0),
      { timeoutMs: 30_000, what: 'three members under one master' },
    );
  }, 90_000);
  afterAll(async () => {
    await f?.destroy();
  });

  it('owns nothing before traffic, then every flow is forwarded by one member and all three carry flows', async () => {
    await new Promise((r) => setTimeout(r, 1500)); // past the master's grace period
    const before = JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners as (string | null)[];
    expect(before.filter((o) => o !== null)).toHaveLength(0);
    const echo = f.server!.spawn(process.execPath, ['-e', ECHO, JSON.stringify(INSIDE)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    const pairs = OUTSIDE.flatMap((src) => INSIDE.map((dst) => [src, dst] as const));
    const r = await f.clients![0]!.exec([process.execPath, '-e', SENDER, JSON.stringify(pairs), '10'], { timeoutMs: 30_000 });
    echo.kill('SIGTERM');
    const echoed = JSON.parse(r.stdout) as number[];
    expect(echoed.filter((n) => n === 10), 'flows whose 10 datagrams all came back').toHaveLength(pairs.length);

    const table = JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners as (string | null)[];
    const counts = new Map(await Promise.all(M.map(async (ip) => [ip, await unitPackets(f, ip)] as const)));
    const perMember = new Map(M.map((ip) => [ip, 0]));
    const units = new Set<number>();
    for (const [src, dst] of pairs) {
      const { unit } = classifyFlow({ proto: 'udp', src, dst, forwarding: true });
      units.add(unit);
      const forwarders = M.filter((ip) => (counts.get(ip)!.get(unit) ?? 0) > 0);
      expect(forwarders, `flow ${src} -> ${dst} (unit ${unit})`).toEqual([table[unit]]);
      perMember.set(forwarders[0]!, perMember.get(forwarders[0]!)! + 1);
    }
    // Only the units of this traffic were handed out (both directions of a flow share its unit).
    expect(table.filter((o) => o !== null)).toHaveLength(units.size);
    const shares = M.map((ip) => perMember.get(ip)!);
    for (const n of shares) expect(n, `flows per member ${shares.join('/')} over ${units.size} units`).toBeGreaterThanOrEqual(pairs.length / 5);
  }, 120_000);
});
