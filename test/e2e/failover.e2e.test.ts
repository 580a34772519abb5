// State sync and failover on a real network: 200 TCP connections from clients through a three-member
// cluster to an inside server, each streaming data both ways and checking it. A member, then the master,
// is killed with SIGKILL mid-stream: no connection is reset, every one completes intact. With state sync
// switched off, the dead member's connections break (the survivors drop their mid-stream packets).
// A drain and a rebalance under load break nothing and drop no packet of a moved unit for lack of state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyFlow } from '@gwcluster/native-addon';
import { ClusterFixture, balanced, healthy, shared } from './cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const CONNECTIONS = 200;
// Client addresses and two server addresses chosen so that the flows' units (key src ^ dst) fall in
// every member's share of the table: the third octets XORed decide the units' top bits.
const LOCALS = Array.from({ length: 20 }, (_, i) => `198.51.100.${30 + i * 11}`);
const SERVERS = ['192.0.2.100', '203.0.113.100'];
const SOAK = new URL('./tools/soak.mjs', import.meta.url).pathname;

interface SoakResult {
  connections: number;
  completed: number;
  failed: number;
  resets: number;
  errors: Record<string, number>;
  failedLocals: string[];
  stalls: { local: string; maxStallMs: number }[];
}

async function setUp(sync: boolean): Promise<ClusterFixture> {
  const f = await ClusterFixture.create({ members: 3, layout: 'gateway', method: 'master-forward', clients: 1, extraConfig: sync ? {} : { dataplane: { sessions: { sync: false } } } });
  for (const a of LOCALS) await f.clients![0]!.addAddress('eth0', `${a}/24`);
  await f.server!.addAddress('eth0', '203.0.113.100/24');
  for (const m of f.members) await m.host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
  f.startMonitor(50);
  f.startAll();
  await f.waitForView((v) => balanced(v, M), { timeoutMs: 30_000, what: 'a balanced cluster' });
  f.startEcho(f.server!, 's1');
  await new Promise((r) => setTimeout(r, 700)); // the echo service is listening
  return f;
}

function soak(f: ClusterFixture, seconds: number): Promise<SoakResult> {
  return f.clients![0]!
    .exec([process.execPath, SOAK, '--targets', SERVERS.join(','), '--port', '7000', '--connections', String(CONNECTIONS), '--seconds', String(seconds), '--local-addresses', LOCALS.join(','), '--idle-fail-ms', '10000'], { timeoutMs: (seconds + 90) * 1000 })
    .then((r) => {
      if (r.code !== 0) throw new Error(`soak failed (${r.code}): ${r.stderr}${r.stdout}`);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as SoakResult;
    });
}

async function owners(f: ClusterFixture): Promise<string[]> {
  return JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners as string[];
}

/** Every (client address, server) pair of the soak, as "local>server". */
const PAIRS = LOCALS.flatMap((l) => SERVERS.map((s) => `${l}>${s}`));
const unitOf = (pair: string) => {
  const [src, dst] = pair.split('>');
  return classifyFlow({ proto: 'tcp', src: src!, dst: dst!, forwarding: true }).unit;
};

/** Data-plane counters that explain a lost packet, per member (shown when an assertion fails). */
async function lossCounters(f: ClusterFixture, ips: readonly string[]): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const ip of ips) {
    const r = await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` });
    if (r.code !== 0) continue;
    const c = JSON.parse(r.stdout).cluster.counters as Record<string, number>;
    out[ip] = Object.fromEntries(Object.entries(c).filter(([k, v]) => v > 0 && /sessionDrop|forwardNoMac|forwardErrors|releasedDropped|holdDrops|kernelQueueDropped|handoversIncomplete|reinjectErrors/.test(k)));
  }
  return out;
}

async function sessionDrops(f: ClusterFixture, ips: readonly string[]): Promise<number> {
  let n = 0;
  for (const ip of ips) {
    const st = JSON.parse((await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` })).stdout);
    n += (st.cluster.counters['node.dataplane.engine.sessionDrops'] as number | undefined) ?? 0;
  }
  return n;
}

describe('failover with state sync', () => {
  let f: ClusterFixture;
  beforeAll(async () => {
    f = await setUp(true);
  }, 120_000);
  afterAll(async () => {
    await f?.destroy();
  });

  // The master first: at formation every member owns a contiguous third of the units, and the soak's pairs
  // fall into 40 units spread over 260..759, so each member (the master too) carries some of them.
  it.each(['master', 'member'] as const)('kill -9 of the %s mid-stream: no connection resets, all complete intact', async (kind) => {
    const table = await owners(f);
    const views = f.latest()!.views;
    const master = views[M[0]!]!.master!;
    const victim = kind === 'master' ? master : M.find((ip) => ip !== master)!;
    const affected = PAIRS.filter((p) => table[unitOf(p)] === victim);
    expect(affected.length, 'some connections must run through the victim').toBeGreaterThan(0);
    const running = soak(f, 10);
    await new Promise((r) => setTimeout(r, 4000));
    const t0 = f.kill9(victim);
    const survivors = M.filter((ip) => ip !== victim);
    await f.waitForView((v) => healthy(v, survivors), { since: t0, timeoutMs: 15_000, what: 'survivors own every unit' });
    const result = await running;
    expect({ failed: result.failed, resets: result.resets, errors: result.errors }, JSON.stringify(await lossCounters(f, survivors))).toEqual({ failed: 0, resets: 0, errors: {} });
    expect(result.completed).toBe(CONNECTIONS);
    const stalls = result.stalls.filter((s) => affected.includes(s.local)).map((s) => s.maxStallMs);
    expect(stalls.length).toBeGreaterThan(0);
    // The victim comes back for the next round.
    const tr = Date.now();
    f.start(victim);
    await f.waitForView((v) => shared(v, M), { since: tr, timeoutMs: 30_000, what: 'the victim back with work' });
  }, 180_000);

  it('a drain and a rebalance under load break nothing and drop no packet for lack of state', async () => {
    // One cluster first, as an operator checks before a drain (the previous scenario restarted a member).
    await f.waitForView((v) => healthy(v, M), { timeoutMs: 40_000, holdMs: 3000, what: 'one settled cluster of three before the drain' });
    const before = await sessionDrops(f, M);
    const running = soak(f, 14);
    await new Promise((r) => setTimeout(r, 3000));
    const victim = M[1]!;
    const drain = await f.gwctl(['drain', victim]);
    expect(drain.code, `${drain.stderr}\n${f.recentLogs()}`).toBe(0);
    expect((await owners(f)).includes(victim)).toBe(false);
    await new Promise((r) => setTimeout(r, 2000));
    const undrain = await f.gwctl(['undrain', victim]);
    expect(undrain.code, `${undrain.stderr}\n${f.recentLogs()}`).toBe(0);
    const rebalance = await f.gwctl(['rebalance']);
    expect(rebalance.code, `${rebalance.stderr}\n${f.recentLogs()}`).toBe(0);
    const result = await running;
    expect({ failed: result.failed, errors: result.errors, failedPairs: result.failedLocals }, JSON.stringify(await lossCounters(f, M))).toEqual({ failed: 0, errors: {}, failedPairs: [] });
    // Work came back to the undrained member (by load: unit counts need not be equal after traffic).
    await f.waitForView((v) => healthy(v, M) && v[victim]!.owned > 0, { timeoutMs: 15_000, what: 'work back on the undrained member' });
    expect(await sessionDrops(f, M)).toBe(before);
  }, 180_000);
});

describe('failover without state sync (control)', () => {
  let f: ClusterFixture;
  beforeAll(async () => {
    f = await setUp(false);
  }, 120_000);
  afterAll(async () => {
    await f?.destroy();
  });

  it('kill -9 of a member breaks its connections: the survivors drop their mid-stream packets', async () => {
    const table = await owners(f);
    const master = f.latest()!.views[M[0]!]!.master!;
    const victim = M.find((ip) => ip !== master)!;
    const affected = new Set(PAIRS.filter((p) => table[unitOf(p)] === victim));
    expect(affected.size).toBeGreaterThan(0);
    const running = soak(f, 12);
    await new Promise((r) => setTimeout(r, 4000));
    f.kill9(victim);
    const result = await running;
    expect(result.failed).toBeGreaterThan(0);
    // Exactly the dead member's connections broke; the others completed.
    for (const p of result.failedLocals) expect(affected.has(p), `${p} failed but was not on the victim`).toBe(true);
    // Every connection of the victim's units broke.
    const onVictim = result.stalls.filter((s) => affected.has(s.local)).length;
    expect(result.failed).toBe(onVictim);
  }, 180_000);
});
