// Real end-to-end: three gwclusterd processes in their own network namespaces on a bridge.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFixture, healthy } from './cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];

describe('three gwclusterd members on a real network', () => {
  let f: ClusterFixture;

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3 });
    f.startMonitor(25);
    f.startAll();
  }, 60_000);

  afterAll(async () => {
    await f?.destroy();
  });

  it('form one cluster: one master, three members, every unit owned once', async () => {
    const s = await f.waitForView((v) => healthy(v, M), { what: 'a healthy three-member cluster' });
    expect(M).toContain(s.views[M[0]!]!.master);
    // gwctl status (human output) from the operator's namespace shows the same.
    const r = await f.gwctl(['status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/master 192\.0\.2\.\d+ +epoch \d+/);
    for (const ip of M) expect(r.stdout).toContain(ip);
    expect(r.stdout).toMatch(/1024 assigned, 0 unassigned/);
    const j = await f.gwctl(['status', '--json']);
    const parsed = JSON.parse(j.stdout);
    expect(parsed.units.owners).toHaveLength(1024);
    expect(new Set(parsed.units.owners)).toEqual(new Set(M));
    // The master holds the cluster IP.
    const master = s.views[M[0]!]!.master!;
    const addr = await f.member(master).host.exec(['ip', '-4', 'addr', 'show', 'dev', 'eth0']);
    expect(addr.stdout).toContain('198.51.100.10/32');
    // Members MAC their unicasts to the master (client keepalives) and the master signs its broadcasts;
    // no MAC fails anywhere.
    const countersOf = async (ip: string) => JSON.parse((await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` })).stdout).cluster.counters as Record<string, number>;
    const other = M.find((ip) => ip !== master)!;
    const deadline = Date.now() + 20_000;
    let c = await countersOf(other);
    while (!((c['auth.sealed.mac'] ?? 0) > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      c = await countersOf(other);
    }
    expect(c['auth.sealed.mac']).toBeGreaterThan(0);
    expect((await countersOf(master))['auth.sealed.signature']).toBeGreaterThan(0);
    for (const ip of M) expect((await countersOf(ip))['auth.bad-signature'] ?? 0, ip).toBe(0);
  });

  it('kill -9 of the master: a new master and a complete work table', async () => {
    const before = f.latest()!.views;
    const master = before[M[0]!]!.master!;
    const survivors = M.filter((ip) => ip !== master);
    const ownedBefore = Object.fromEntries(survivors.map((ip) => [ip, before[ip]!.owned]));
    const t0 = f.kill9(master);
    const s = await f.waitForView((v) => healthy(v, survivors), { since: t0, what: 'two survivors with a new master and a full table' });
    const newMaster = s.views[survivors[0]!]!.master!;
    expect(survivors).toContain(newMaster);
    expect(s.views[newMaster]!.epoch).toBeGreaterThan(before[master]!.epoch);
    // Survivors kept their units: the new master rebuilt the table from their claims.
    for (const ip of survivors) expect(s.views[ip]!.owned).toBeGreaterThanOrEqual(ownedBefore[ip]!);
    // The new master announced the cluster IP.
    const addr = await f.member(newMaster).host.exec(['ip', '-4', 'addr', 'show', 'dev', 'eth0']);
    expect(addr.stdout).toContain('198.51.100.10/32');
    // The killed member restarts and re-joins; work is rebalanced onto it.
    const t1 = Date.now();
    f.start(master);
    const back = await f.waitForView((v) => healthy(v, M) && v[master]!.owned >= 300, { since: t1, timeoutMs: 20_000, what: 'the restarted member back with work' });
    expect(back.views[master]!.role).toBe('member');
  });

  it('kill -9 of a member: its units move to the survivors; it re-joins after a restart', async () => {
    const views = f.latest()!.views;
    const master = views[M[0]!]!.master!;
    const victim = M.find((ip) => ip !== master)!;
    const survivors = M.filter((ip) => ip !== victim);
    const t0 = f.kill9(victim);
    const s = await f.waitForView((v) => healthy(v, survivors), { since: t0, what: 'the member removed and its units reassigned' });
    expect(s.views[master]!.master).toBe(master); // the master did not change
    const removed = f.logLine(master, /^member removed$/, t0);
    expect(removed).toBeDefined();
    const t1 = Date.now();
    f.start(victim);
    await f.waitForView((v) => healthy(v, M) && v[victim]!.owned >= 300, { since: t1, timeoutMs: 20_000, what: 'the restarted member back with work' });
  });

  it('bad input never crashes a member: garbage datagrams to the cluster port are counted and dropped', async () => {
    const target = M[1]!;
    const counters = async () => JSON.parse((await f.gwctl(['status', '--json'], { endpoint: `http://${target}:7401` })).stdout).cluster.counters as Record<string, number>;
    const sum = (c: Record<string, number>, re: RegExp) => Object.entries(c).filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
    const before = await counters();
    // 500 datagrams of garbage, one every 2 ms, of every length from 0 to 1400 bytes.
    const script = `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>{if(n>=500){s.close();return;}const b=Buffer.alloc((n*53)%1400);for(let i=0;i<b.length;i++)b[i]=(i*31+n)&255;n++;s.send(b,7400,'${target}',()=>setTimeout(go,2))};go();`;
    const r = await f.ops.exec([process.execPath, '-e', script], { timeoutMs: 15_000 });
    expect(r.code).toBe(0);
    const t = Date.now();
    await f.waitForView((v) => healthy(v, M), { since: t + 500, what: 'cluster still healthy after garbage' });
    const after = await counters();
    const received = after['udp.received']! - before['udp.received']!;
    const accepted = after['auth.ok']! - before['auth.ok']!;
    const dropped = sum(after, /^node\.drop\./) - sum(before, /^node\.drop\./);
    const own = (after['node.rx.own-broadcast'] ?? 0) - (before['node.rx.own-broadcast'] ?? 0);
    // Every datagram that reached the member was authenticated, counted as dropped, or its own broadcast
    // looped back; and the
    // garbage (all of it, barring the network's own loss) was dropped.
    expect(accepted + dropped + own).toBe(received);
    expect(dropped).toBeGreaterThanOrEqual(450);
  });
});
