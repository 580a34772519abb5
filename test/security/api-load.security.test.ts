// Issue 10, defect 6, on real namespaces: load on one member's admin API must not starve its cluster
// protocol. From a client namespace in the cluster subnet, for a few seconds: 1000 concurrent
// GET /openapi.json (public), a burst of authenticated GET /metrics, and thousands of slowloris connections,
// all against the master (the slowloris from a second client address). Throughout, no member leaves or re-joins and the master stays in office (the
// other members' views, the epoch), the table stays complete, the loaded member's protocol ticks are not
// late (its event loop, which sends them and runs the watchdog, never lags one watchdog window: the lag
// it reports in /metrics; core watchdog.deferred-late-tick of each member is printed), the API keeps serving other clients during the load and answers an authenticated request
// afterwards.
// GWC_API_LOAD_SECONDS (default 5), GWC_API_LOAD_OPENAPI (1000), GWC_API_LOAD_METRICS (50),
// GWC_API_LOAD_SLOWLORIS (3000) change the load.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFixture, TOKEN, healthy } from '../e2e/cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const SECONDS = Number(process.env.GWC_API_LOAD_SECONDS ?? 5);
const OPENAPI = Number(process.env.GWC_API_LOAD_OPENAPI ?? 1000);
const METRICS = Number(process.env.GWC_API_LOAD_METRICS ?? 50);
const SLOWLORIS = Number(process.env.GWC_API_LOAD_SLOWLORIS ?? 3000);
const LOAD = fileURLToPath(new URL('./api-load.mjs', import.meta.url));

interface LoadResult {
  openapi: { ok: number; status: Record<string, number>; errors: Record<string, number> };
  metrics: { ok: number; status: Record<string, number>; errors: Record<string, number>; maxLagMs: number };
  slowloris: { opened: number; closedByServer: number; heldAtEnd: number; errors: Record<string, number> };
}

describe('load on a member admin API', () => {
  let f: ClusterFixture;

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3 });
    f.startMonitor(100);
    f.startAll();
    await f.waitForView((v) => healthy(v, M), { what: 'a healthy three-member cluster', timeoutMs: 20_000, holdMs: 1000 }).catch((e: Error) => {
      throw new Error(`${e.message}; last sample ${JSON.stringify(f.latest())}; logs:\n${f.recentLogs(10)}`);
    });
  }, 60_000);

  afterAll(async () => {
    await f?.destroy();
  });

  it(`openapi x${OPENAPI}, metrics x${METRICS}, slowloris x${SLOWLORIS} for ${SECONDS} s on the master: the cluster does not notice`, async () => {
    const before = f.latest()!.views;
    const master = before[M[0]!]!.master!;
    const epoch = before[master]!.epoch;
    const others = M.filter((ip) => ip !== master);
    // Two clients in the cluster subnet: one scrapes and reads the API description, one holds slowloris connections.
    const load = await f.net.addHost('load', [{ segment: f.lan, address: '192.0.2.201/24', ifname: 'eth0' }]);
    const loris = await f.net.addHost('loris', [{ segment: f.lan, address: '192.0.2.202/24', ifname: 'eth0' }]);
    const counters = async (ip: string) => {
      const r = await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout).cluster.counters as Record<string, number>;
    };
    const late = 'core.watchdog.deferred-late-tick';
    const l0 = await Promise.all(M.map(async (ip) => (await counters(ip))[late] ?? 0));
    const t0 = Date.now();
    // The load comes from other machines in a real network: here it shares the members' two cores, so it runs
    // at the lowest priority (nice 19) and what is measured is the members' own work for it, not a CPU
    // taken away by the clients.
    const node = ['nice', '-n', '19', process.execPath];
    const args = [LOAD, '--url', `http://${master}:7401`, '--token', TOKEN, '--seconds', String(SECONDS)];
    const [run, slow] = await Promise.all([
      load.exec([...node, ...args, '--openapi', String(OPENAPI), '--metrics', String(METRICS), '--slowloris', '0'], { timeoutMs: (SECONDS + 40) * 1000 }),
      loris.exec([...node, ...args, '--openapi', '0', '--metrics', '0', '--slowloris', String(SLOWLORIS)], { timeoutMs: (SECONDS + 40) * 1000 }),
    ]);
    const t1 = Date.now();
    expect(run.code, run.stderr).toBe(0);
    expect(slow.code, slow.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as LoadResult;
    result.slowloris = (JSON.parse(slow.stdout) as LoadResult).slowloris;
    // Afterwards: the API answers an authenticated request, and the cluster is whole under the same master.
    await f.waitForView((v) => healthy(v, M), { since: t1, what: 'the cluster healthy after the load', timeoutMs: 20_000 });
    const l1 = await Promise.all(M.map(async (ip) => (await counters(ip))[late] ?? 0));
    const lateTicks = M.map((ip, i) => `${ip}${ip === master ? ' (loaded)' : ''} +${l1[i]! - l0[i]!}`).join(', ');
    const window = f.samples.filter((s) => s.t >= t0 && s.t <= t1);
    // The members not under load answer the monitor throughout: their views must never lose the master.
    const othersSaw = window.flatMap((s) => others.map((ip) => s.views[ip]!)).filter((v) => !v.error);
    const lost = othersSaw.filter((v) => v.master !== master || v.members.length !== M.length || v.assigned !== 1024);
    const masterAnswered = window.map((s) => s.views[master]!).filter((v) => !v.error);
    const after = f.latest()!.views;
    console.log(
      `api load on the master ${master} for ${((t1 - t0) / 1000).toFixed(1)} s: ${JSON.stringify(result)}; ` +
        `the loaded member's event loop lagged ${result.metrics.maxLagMs.toFixed(1)} ms at most; deferred-late-tick ${lateTicks}; ` +
        `monitor: ${othersSaw.length} views of the other members (${lost.length} without the master or a member), ` +
        `the master answered ${masterAnswered.length} of ${window.length}; epoch ${epoch} -> ${after[master]!.epoch}`,
    );
    // The API kept serving clients other than the slowloris one, from its description to the scrapes.
    expect(result.openapi.ok).toBeGreaterThan(0);
    expect(result.metrics.ok).toBeGreaterThan(0);
    expect(lost).toHaveLength(0);
    expect(M.every((ip) => after[ip]!.epoch === epoch && after[ip]!.master === master)).toBe(true);
    // Keepalives were not late enough to count: the loaded member's event loop (which sends them and runs
    // the watchdog) never lagged as long as the watchdog's shortest window (n = 6 periods of T = 40 ms),
    // so no peer can take it for dead on account of the load. (The single thread lagged 288 ms here.)
    expect(result.metrics.maxLagMs).toBeLessThan(240);
  }, 90_000);
});
