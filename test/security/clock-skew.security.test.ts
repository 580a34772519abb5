// Issue 10, defect 4, on real namespaces: a member whose wall clock is 60 s off (gwclusterd under the
// test-only GWCLUSTERD_TEST_CLOCK_OFFSET_MS) stays a member; the cluster keeps one master and flows
// through the gateway work. Before, it dropped every message as stale and made itself master.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_IP, ClusterFixture, healthy } from '../e2e/cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const SKEWED = M[2]!;
const OFFSET_MS = 60_000;

describe('a member whose clock is 60 s off', () => {
  let f: ClusterFixture;

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3, layout: 'gateway', method: 'master-forward' });
    f.startMonitor(50);
    // The skewed member boots into a running cluster: the property is that it JOINS it (before, it
    // dropped everything as stale and made itself master). Booting all three at once would let it win
    // the first election legitimately, whichever process happens to start first.
    f.start(M[0]!);
    f.start(M[1]!);
    await f.waitForView((v) => healthy(v, [M[0]!, M[1]!]), { what: 'a healthy two-member cluster before the skewed member boots', timeoutMs: 30_000 });
    f.start(SKEWED, { env: { GWCLUSTERD_TEST_CLOCK_OFFSET_MS: String(OFFSET_MS) } });
  }, 60_000);

  afterAll(async () => {
    await f?.destroy();
  });

  it('joins, stays a member for 8 s, never a second master, and 20/20 flows through the gateway work', async () => {
    await f.waitForView((v) => healthy(v, M), { what: 'a healthy three-member cluster with the skewed member', timeoutMs: 30_000 });
    expect(f.logLine(SKEWED, /GWCLUSTERD_TEST_CLOCK_OFFSET_MS is set/)).toBeDefined();
    const t0 = Date.now();
    const echos = M.map((ip) => f.startEcho(f.member(ip).host, ip));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const svc = await f.traffic(f.clients![0]!, ['--target', CLUSTER_IP, '--tcp-port', '7000', '--udp-port', '7001', '--flows', '20', '--bytes', '2000', '--timeout-ms', '8000']);
      expect(svc.tcp).toMatchObject({ ok: 20, failed: 0 });
      expect(svc.udp).toMatchObject({ ok: 20, failed: 0 });
    } finally {
      for (const e of echos) await e.stop();
    }
    const rest = 8000 - (Date.now() - t0);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    const window = f.samples.filter((s) => s.t >= t0);
    if (process.env.GWC_DEBUG) for (const ip of M) for (const l of f.logs.get(ip)!.filter((l) => l.time >= t0 - 2000 && ((l as { level?: number }).level ?? 0) >= 40)) console.log(ip, l.time - t0, l.msg, JSON.stringify(l).slice(0, 300));
    expect(window.length).toBeGreaterThan(50);
    // The property: never a second master, and never the skewed member. (A watchdog expiry under the
    // test machine's load may make any member re-join for a moment; that is not what is tested here.)
    for (const s of window) {
      const masters = M.filter((ip) => s.views[ip]?.role === 'master');
      expect(masters.length, `at ${s.t - t0} ms`).toBeLessThanOrEqual(1);
      expect(s.views[SKEWED]!.role, `at ${s.t - t0} ms`).not.toBe('master');
    }
    const memberShare = window.filter((s) => s.views[SKEWED]!.role === 'member').length / window.length;
    console.log(`clock skew ${OFFSET_MS} ms: the skewed member was 'member' in ${(memberShare * 100).toFixed(1)}% of ${window.length} samples over 8 s`);
    expect(memberShare).toBeGreaterThan(0.9);
    expect(window.at(-1)!.views[SKEWED]!.role).toBe('member');
    // The skew is seen and reported, never acted on.
    const status = JSON.parse((await f.gwctl(['status', '--json'], { endpoint: `http://${SKEWED}:7401` })).stdout);
    expect(status.cluster.counters['auth.clock-skew']).toBeGreaterThan(0);
    expect(status.cluster.counters['node.drop.stale'] ?? 0).toBe(0);
    expect(f.logLine(SKEWED, /differs from this member's by/)).toBeDefined();
  }, 60_000);
});
