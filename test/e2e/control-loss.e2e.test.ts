// Loss tolerance at the default timings (keepalives T = 40 ms, n >= 6; heartbeats 10 ms, n >= 4; K = 9000):
// nftables in every member's namespace drops N % of the cluster protocol's datagrams (UDP port 7400) and
// of the fast-liveness heartbeats (UDP 7401) as they arrive, for 10 s. No member may be declared dead:
// the master stays, the epoch stays, every member stays listed, and no death counter moves. 5 % and 20 %:
// the adaptive multiples rise with the loss estimates; a sudden loss before they have risen is covered by
// the floors and by needing both signals (a heartbeat report and two keepalives missing) for a death.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFixture, healthy } from './cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const TABLE = 'gwtctlloss';
const SECONDS = 10;

async function counters(f: ClusterFixture, ip: string): Promise<Record<string, number>> {
  const r = await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).cluster.counters as Record<string, number>;
}

/** N % of the cluster protocol's datagrams and heartbeats arriving at `ip` are dropped (0: the rule is removed). */
async function dropControl(f: ClusterFixture, ip: string, percent: number): Promise<void> {
  const h = f.member(ip).host;
  await h.exec(['nft', 'delete', 'table', 'inet', TABLE]); // absent the first time: ignored
  if (percent === 0) return;
  const script = `table inet ${TABLE} {\n  chain in {\n    type filter hook input priority -10; policy accept;\n    udp dport { 7400, 7401 } numgen random mod 100 < ${percent} counter drop\n  }\n}\n`;
  const r = await h.exec(['sh', '-c', `printf '%s' '${script}' | nft -f -`]);
  expect(r.code, r.stderr).toBe(0);
}

async function droppedAt(f: ClusterFixture, ip: string): Promise<number> {
  const r = await f.member(ip).host.exec(['nft', 'list', 'table', 'inet', TABLE]);
  return Number(/counter packets (\d+)/.exec(r.stdout)?.[1] ?? 0);
}

describe('control-traffic loss at the default timings', () => {
  let f: ClusterFixture;

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3 });
    f.startMonitor(100);
    f.startAll();
    await f.waitForView((v) => healthy(v, M), { timeoutMs: 30_000, what: 'a healthy three-member cluster' });
  }, 60_000);

  afterAll(async () => {
    await f?.destroy();
  });

  it.each([5, 20])('%i percent of the protocol datagrams and heartbeats dropped for 10 s: no member declared dead, no epoch change', async (percent) => {
    const before = f.latest()!.views;
    const master = before[M[0]!]!.master!;
    const epoch = before[master]!.epoch;
    const dead0 = await Promise.all(M.map(async (ip) => counters(f, ip)));
    for (const ip of M) await dropControl(f, ip, percent);
    const t0 = Date.now();
    try {
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
    } finally {
      const dropped = await Promise.all(M.map((ip) => droppedAt(f, ip)));
      for (const ip of M) await dropControl(f, ip, 0);
      // The rule did drop datagrams at every member (the loss was real).
      for (const d of dropped) expect(d).toBeGreaterThan(0);
    }
    // Every sample taken during the loss shows the same master, epoch and three members everywhere.
    const during = f.samples.filter((s) => s.t >= t0);
    expect(during.length).toBeGreaterThan(SECONDS * 5);
    for (const s of during) {
      for (const ip of M) {
        const v = s.views[ip]!;
        if (v.error) continue; // the admin API (TCP) is not affected, but a sample may time out under load
        expect({ ip, master: v.master, epoch: v.epoch, members: [...v.members].sort() }).toEqual({ ip, master, epoch, members: [...M].sort() });
      }
    }
    const dead1 = await Promise.all(M.map(async (ip) => counters(f, ip)));
    M.forEach((ip, i) => {
      // Fast liveness ran through the loss: heartbeats accepted, both peers watched.
      expect({ ip, heard: (dead1[i]!['node.liveness.accepted'] ?? 0) > (dead0[i]!['node.liveness.accepted'] ?? 0) }).toEqual({ ip, heard: true });
      expect({ ip, peers: dead1[i]!['node.liveness.peers'] }).toEqual({ ip, peers: 2 });
      for (const k of ['core.watchdog.member-dead', 'core.watchdog.master-dead', 'core.watchdog.member-dead-vouched', 'core.watchdog.master-dead-vouched', 'core.liveness.member-dead', 'core.liveness.master-dead', 'core.succession.took-office']) {
        expect({ ip, [k]: dead1[i]![k] ?? 0 }).toEqual({ ip, [k]: dead0[i]![k] ?? 0 });
      }
    });
  }, 90_000);
});
