// Chaos on real namespaces (issue 12): paced TCP connections stream both ways through the cluster to an
// inside echo server and are checked byte-exact (length and SHA-256) while members are killed, cut off,
// flapped and restarted. Every scenario prints its figure: connections kept / broken and the longest
// stall of a connection (docs/measurements.md, "Chaos").
//   - methods 2 and 3: kill -9 of a member (and, method 2, of the master) mid-stream;
//   - method 2: a member, then the master, cut off from the others on the cluster segment for 2 s, healed;
//   - method 3: one member's link flapping (down/up every 300 ms for 5 s); kill -9 during a drain and
//     during a rebalance; every daemon restarted at once (SIGTERM + start);
//   - five members (method 1): two killed at the same moment.
// GWC_CHAOS_BASELINE=1 adds a run without any fault per method (the reference for the stalls).
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { classifyFlow } from '@gwcluster/native-addon';
import { CLUSTER_IP, ClusterFixture, INSIDE_CLUSTER_IP, balanced, healthy, shared } from './cluster-fixture.mjs';

const SOAK = new URL('./tools/soak.mjs', import.meta.url).pathname;
const CONNECTIONS = 120;
// Client addresses and two server addresses whose flows (key src ^ dst) fall in every member's share.
const LOCALS = Array.from({ length: 20 }, (_, i) => `198.51.100.${30 + i * 11}`);
const SERVERS = ['192.0.2.100', '203.0.113.100'];
const PAIRS = LOCALS.flatMap((l) => SERVERS.map((s) => `${l}>${s}`));
const unitOf = (pair: string) => {
  const [src, dst] = pair.split('>');
  return classifyFlow({ proto: 'tcp', src: src!, dst: dst!, forwarding: true }).unit;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SoakResult {
  connections: number;
  completed: number;
  failed: number;
  resets: number;
  errors: Record<string, number>;
  failedLocals: string[];
  stalls: { local: string; maxStallMs: number }[];
}

const ips = (n: number) => Array.from({ length: n }, (_, i) => `192.0.2.${11 + i}`);

async function setUp(members: number, method: string): Promise<ClusterFixture> {
  const f = await ClusterFixture.create({ members, layout: 'gateway', method, clients: 1 });
  for (const a of LOCALS) await f.clients![0]!.addAddress('eth0', `${a}/24`);
  await f.server!.addAddress('eth0', '203.0.113.100/24');
  for (const m of f.members) await m.host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
  f.startMonitor(50);
  f.startAll();
  await f.waitForView((v) => balanced(v, ips(members)), { timeoutMs: 40_000, what: 'a balanced cluster' });
  f.startEcho(f.server!, 's1');
  await sleep(700);
  return f;
}

/** Paced connections for `seconds`; one without data for idleFailMs counts as broken. */
function soak(f: ClusterFixture, seconds: number, idleFailMs = 12_000): Promise<SoakResult> {
  return f
    .clients![0]!.exec([process.execPath, SOAK, '--targets', SERVERS.join(','), '--port', '7000', '--connections', String(CONNECTIONS), '--seconds', String(seconds), '--local-addresses', LOCALS.join(','), '--idle-fail-ms', String(idleFailMs)], { timeoutMs: (seconds + idleFailMs / 1000 + 90) * 1000 })
    .then((r) => {
      if (r.code !== 0) throw new Error(`soak failed (${r.code}): ${r.stderr}${r.stdout}`);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as SoakResult;
    });
}

async function owners(f: ClusterFixture): Promise<string[]> {
  return JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners as string[];
}

/** Data-plane counters that explain a lost packet, per member (shown when an assertion fails). */
async function lossCounters(f: ClusterFixture, members: readonly string[]): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const ip of members) {
    const r = await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` });
    if (r.code !== 0) continue;
    const c = JSON.parse(r.stdout).cluster.counters as Record<string, number>;
    out[ip] = Object.fromEntries(Object.entries(c).filter(([k, v]) => v > 0 && /sessionDrop|forwardNoMac|forwardErrors|releasedDropped|holdDrops|kernelQueueDropped|handoversIncomplete|reinjectErrors|restored/.test(k)));
  }
  return out;
}

/** Prints the scenario's figure and returns it: connections kept and broken, longest stall. */
function figure(scenario: string, r: SoakResult, affected?: readonly string[]): { kept: number; broken: number; longestStallMs: number } {
  const stalls = r.stalls.filter((s) => !affected || affected.includes(s.local)).map((s) => s.maxStallMs);
  const fig = { kept: r.completed, broken: r.failed, longestStallMs: Math.max(0, ...stalls) };
  console.log(`chaos figure | ${scenario} | connections kept ${fig.kept}/${r.connections}, broken ${fig.broken}, longest stall ${fig.longestStallMs} ms${affected ? ` (${affected.length} pairs on the victims)` : ''}`);
  return fig;
}

function expectAllKept(r: SoakResult, counters: unknown): void {
  expect({ failed: r.failed, errors: r.errors, failedPairs: r.failedLocals }, JSON.stringify(counters)).toEqual({ failed: 0, errors: {}, failedPairs: [] });
  expect(r.completed).toBe(CONNECTIONS);
}

/**
 * Watches a member's kernel (after its daemon died): packets its queue rule caught (with no daemon:
 * dropped), and what it sends for the cluster: packets it routes, packets from a cluster IP (a RST or an
 * ICMP error for someone's flow), ARP replies for a cluster IP. Its own traffic (RSTs to the monitor on
 * the dead admin port) is not the cluster's.
 */
async function watchKernel(f: ClusterFixture, ip: string): Promise<() => Promise<{ queued: number; routed: number; fromClusterIps: number; arpReplies: number }>> {
  const h = f.member(ip).host;
  const cips = `{ ${CLUSTER_IP}, ${INSIDE_CLUSTER_IP} }`;
  await h.execOk(['nft', '-f', '-'], {
    // Fresh counters: a table left by an earlier scenario (the member was alive and routing since) is replaced.
    input: [
      'add table inet gwt_chaos',
      'delete table inet gwt_chaos',
      'add table arp gwt_chaos',
      'delete table arp gwt_chaos',
      'table inet gwt_chaos {',
      '  counter routed {}',
      '  counter fromcluster {}',
      '  chain routing { type filter hook forward priority 0; policy accept; counter name "routed"; }',
      `  chain sending { type filter hook output priority 0; policy accept; ip saddr ${cips} counter name "fromcluster"; }`,
      '}',
      'table arp gwt_chaos {',
      '  counter arpreplies {}',
      `  chain sending { type filter hook output priority 0; policy accept; arp operation reply arp saddr ip ${cips} counter name "arpreplies"; }`,
      '}',
      '',
    ].join('\n'),
  });
  const counter = async (family: string, name: string) => Number(/packets (\d+)/.exec((await h.execOk(['nft', 'list', 'counter', family, 'gwt_chaos', name])).stdout)?.[1] ?? NaN);
  return async () => {
    const rules = (await h.execOk(['iptables', '-w', '-t', 'raw', '-L', 'GWCLUSTER', '-v', '-x', '-n'])).stdout;
    return {
      queued: Number(/^\s*(\d+)\s+\d+\s+NFQUEUE/m.exec(rules)?.[1] ?? NaN),
      routed: await counter('inet', 'routed'),
      fromClusterIps: await counter('inet', 'fromcluster'),
      arpReplies: await counter('arp', 'arpreplies'),
    };
  };
}

/**
 * After each scenario, whatever it left: every member's daemon running, no partition, every link up, one
 * healthy cluster (so that a failed scenario does not fail the next one).
 */
async function restore(f: ClusterFixture | undefined, members: readonly string[]): Promise<void> {
  if (!f) return;
  await f.net.healAll();
  for (const m of f.members) for (const i of m.host.interfaces) spawnSync('ip', ['-n', f.net.switchNs, 'link', 'set', i.port, 'up']);
  const t = Date.now();
  for (const ip of members) {
    const p = f.procs.get(ip);
    if (!p || p.exitCode !== null || p.signalCode !== null) f.start(ip);
  }
  // Settled, not passing: a member restarted by the scenario must stay in for 3 s.
  await f.waitForView((v) => healthy(v, members), { since: t, timeoutMs: 45_000, holdMs: 3000, what: 'the cluster restored and settled after the scenario' });
}

/** The master as every member sees it, or undefined while they disagree. */
function masterOf(f: ClusterFixture, members: readonly string[]): string | undefined {
  const v = f.latest()!.views;
  const m = v[members[0]!]?.master;
  return m && members.every((ip) => v[ip]?.master === m) ? m : undefined;
}

describe.each([
  ['unicast-mac', ['master', 'member'] as const],
  // Method 3's failovers with sessions are its drain and rebalance kills below (a plain member kill is
  // method 2's, and method 1's is test/e2e/failover.e2e.test.ts).
  ['multicast-mac', [] as const],
])('chaos, method %s', (method, kinds) => {
  const M = ips(3);
  let f: ClusterFixture;
  beforeAll(async () => {
    f = await setUp(3, method);
  }, 120_000);
  afterEach(async () => {
    await restore(f, M);
  }, 60_000);
  afterAll(async () => {
    await f?.destroy();
  });

  it.skipIf(!process.env.GWC_CHAOS_BASELINE)('baseline: no chaos', async () => {
    const r = await soak(f, 8);
    figure(`${method}: no chaos`, r);
    expectAllKept(r, await lossCounters(f, M));
  }, 120_000);

  it.each(kinds)('kill -9 of the %s mid-stream: no connection lost', async (kind) => {
    const table = await owners(f);
    const master = masterOf(f, M)!;
    const victim = kind === 'master' ? master : M.find((ip) => ip !== master)!;
    const affected = PAIRS.filter((p) => table[unitOf(p)] === victim);
    expect(affected.length, 'some connections must run through the victim').toBeGreaterThan(0);
    const running = soak(f, 8);
    await sleep(3500);
    const t0 = f.kill9(victim);
    const survivors = M.filter((ip) => ip !== victim);
    await f.waitForView((v) => healthy(v, survivors), { since: t0, timeoutMs: 15_000, what: 'survivors own every unit' });
    // The dead daemon's kernel is not half-alive: it still catches the cluster's traffic in its queue
    // (every frame reaches every member in methods 2 and 3) and sends nothing for the cluster, for 1 s.
    const read = await watchKernel(f, victim);
    const k0 = await read();
    await sleep(1000);
    const k1 = await read();
    const r = await running;
    const dk = { queued: k1.queued - k0.queued, routed: k1.routed - k0.routed, fromClusterIps: k1.fromClusterIps - k0.fromClusterIps, arpReplies: k1.arpReplies - k0.arpReplies };
    console.log(`chaos figure | ${method}: the dead ${kind}'s kernel over 1 s | queued (dropped) ${dk.queued}, routed ${dk.routed}, sent from a cluster IP ${dk.fromClusterIps}, ARP replies for a cluster IP ${dk.arpReplies}`);
    expect(dk.queued).toBeGreaterThan(0);
    expect({ routed: dk.routed, fromClusterIps: dk.fromClusterIps, arpReplies: dk.arpReplies }).toEqual({ routed: 0, fromClusterIps: 0, arpReplies: 0 });
    figure(`${method}: kill -9 of the ${kind}`, r, affected);
    expectAllKept(r, await lossCounters(f, survivors));
    const tr = Date.now();
    f.start(victim);
    await f.waitForView((v) => shared(v, M), { since: tr, timeoutMs: 30_000, what: 'the victim back with work' });
  }, 150_000);

  if (method === 'unicast-mac') {
    it.each(['member', 'master'] as const)('the %s cut off on the cluster segment for 2 s, then healed: one master, no connection lost', async (kind) => {
      const master = masterOf(f, M)!;
      const victim = f.member(kind === 'master' ? master : M.find((ip) => ip !== master)!);
      const others = f.members.filter((m) => m !== victim);
      const running = soak(f, 8);
      await sleep(3000);
      const cut = Date.now();
      await f.net.partition(victim.host, others.map((m) => m.host), { segment: f.lan });
      await sleep(2000);
      await f.net.heal(victim.host, others.map((m) => m.host), { segment: f.lan });
      const healed = Date.now();
      const r = await running;
      // Both sides had a master while cut off.
      const split = f.samples.some((s) => s.t >= cut && s.t <= healed && s.views[victim.ip]?.role === 'master' && others.some((m) => s.views[m.ip]?.role === 'master'));
      const after = await f.waitForView((v) => healthy(v, M), { since: healed, timeoutMs: 20_000, what: 'one cluster after the heal' });
      const masters = M.filter((ip) => after.views[ip]!.role === 'master');
      console.log(`chaos figure | ${method}: partition of the ${kind} for 2 s | two masters while cut off: ${split}; one cluster ${after.t - healed} ms after the heal`);
      figure(`${method}: partition of the ${kind} for 2 s`, r);
      expect(masters).toHaveLength(1);
      expectAllKept(r, await lossCounters(f, M));
    }, 120_000);
  }

  if (method === 'multicast-mac') {
    it("one member's link flapping (down/up every 300 ms for 5 s): no connection lost, the cluster heals", async () => {
      const master = masterOf(f, M)!;
      const victim = f.member(M.find((ip) => ip !== master)!);
      // The member's cable: both its switch ports (the member keeps its addresses and routes, as with a pulled cable).
      const ports = victim.host.interfaces.map((i) => i.port);
      const running = soak(f, 12);
      await sleep(2500);
      const t0 = Date.now();
      let flaps = 0;
      try {
        for (let up = false; Date.now() - t0 < 5000; up = !up) {
          for (const p of ports) spawnSync('ip', ['-n', f.net.switchNs, 'link', 'set', p, up ? 'up' : 'down']);
          if (!up) flaps++;
          await sleep(300);
        }
      } finally {
        for (const p of ports) spawnSync('ip', ['-n', f.net.switchNs, 'link', 'set', p, 'up']);
      }
      const r = await running;
      figure(`${method}: link flapping (${flaps} times down over 5 s)`, r);
      expectAllKept(r, await lossCounters(f, M));
      await f.waitForView((v) => shared(v, M), { since: Date.now(), timeoutMs: 30_000, what: 'the flapped member back with work' });
    }, 120_000);

    it.each(['drain', 'rebalance'] as const)('kill -9 of the member losing units during a %s: no connection lost', async (what) => {
      const master = masterOf(f, M)!;
      const victim = M.find((ip) => ip !== master)!;
      const survivors = M.filter((ip) => ip !== victim);
      // The rebalance's set-up (drain, undrain) takes seconds of its own before the kill.
      const running = soak(f, what === 'rebalance' ? 10 : 8);
      await sleep(2500);
      let t0: number;
      if (what === 'drain') {
        // The drain's WORK DE-ASSIGNs are on their way: kill the member while it hands its units over.
        const drain = f.gwctl(['drain', victim]);
        await sleep(30);
        t0 = f.kill9(victim);
        await drain;
      } else {
        // Unbalance first (the victim drained, then undrained), then a rebalance gives it units back;
        // kill it while they are moving to it.
        // These two are set-up, not the scenario: when membership churns under them (seen in CI right
        // after the previous scenario's restart; open in the issue tracker), the step is shown and
        // tried once more on a settled cluster.
        for (const action of ['drain', 'undrain']) {
          let r = await f.gwctl([action, victim]);
          if (r.code !== 0) {
            console.log(`chaos set-up | gwctl ${action} ${victim} failed (${r.code}): ${r.stderr.trim()}\n${f.recentLogs()}`);
            await f.waitForView((v) => healthy(v, M), { timeoutMs: 40_000, holdMs: 3000, what: `a settled cluster before retrying ${action}` });
            r = await f.gwctl([action, victim]);
          }
          expect(r.code, `gwctl ${action} ${victim}: ${r.stderr}${r.stdout}\n${f.recentLogs()}`).toBe(0);
        }
        const rebalance = f.gwctl(['rebalance']);
        await f.waitForView((v) => (v[master]?.moving ?? 0) > 0 || (v[victim]?.owned ?? 0) > 0, { timeoutMs: 5000, what: 'units moving to the victim' });
        t0 = f.kill9(victim);
        await rebalance;
      }
      await f.waitForView((v) => healthy(v, survivors), { since: t0, timeoutMs: 15_000, what: 'survivors own every unit' });
      const r = await running;
      figure(`${method}: kill -9 during a ${what}`, r);
      expectAllKept(r, await lossCounters(f, survivors));
      const tr = Date.now();
      f.start(victim);
      await f.waitForView((v) => healthy(v, M), { since: tr, timeoutMs: 30_000, what: 'the victim back' });
      if (what === 'rebalance') await f.gwctl(['rebalance']);
    }, 120_000);

    // No daemon runs for a while (stop, boot, formation, the snapshots): the endpoints keep
    // retransmitting, as TCP does for minutes; a connection counts as broken after 45 s without data.
    it('every daemon restarted at once under traffic (SIGTERM + start): no connection lost', async () => {
      const running = soak(f, 14, 45_000);
      await sleep(3000);
      const t0 = Date.now();
      await Promise.all(
        M.map(
          (ip) =>
            new Promise<void>((resolve) => {
              const child = f.procs.get(ip)!;
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      );
      for (const ip of M) f.start(ip);
      await f.waitForView((v) => healthy(v, M), { since: t0, timeoutMs: 30_000, what: 'the restarted cluster' });
      const back = Date.now() - t0;
      const r = await running;
      console.log(`chaos figure | ${method}: every daemon restarted at once | cluster healthy again ${back} ms after the SIGTERMs`);
      figure(`${method}: every daemon restarted at once`, r);
      const restored = M.map((ip) => f.logLine(ip, /sessions restored/, t0)?.restored as number | undefined);
      expect(restored.every((n) => (n ?? 0) > 0), `sessions restored per member: ${restored.join(', ')}`).toBe(true);
      expectAllKept(r, await lossCounters(f, M));
    }, 180_000);
  }
});

describe('chaos, five members', () => {
  const M = ips(5);
  let f: ClusterFixture;
  beforeAll(async () => {
    f = await setUp(5, 'master-forward');
  }, 150_000);
  afterEach(async () => {
    await restore(f, M);
  }, 60_000);
  afterAll(async () => {
    await f?.destroy();
  });

  it('two members killed at the same moment: no connection lost', async () => {
    const table = await owners(f);
    const master = masterOf(f, M)!;
    const victims = M.filter((ip) => ip !== master).slice(0, 2);
    const survivors = M.filter((ip) => !victims.includes(ip));
    const affected = PAIRS.filter((p) => victims.includes(table[unitOf(p)]!));
    expect(affected.length).toBeGreaterThan(0);
    const running = soak(f, 8);
    await sleep(3500);
    const t0 = Date.now();
    for (const v of victims) f.kill9(v);
    await f.waitForView((v) => healthy(v, survivors), { since: t0, timeoutMs: 15_000, what: 'survivors own every unit' });
    const r = await running;
    figure('five members, master-forward: two members killed at once', r, affected);
    expectAllKept(r, await lossCounters(f, survivors));
  }, 120_000);
});
