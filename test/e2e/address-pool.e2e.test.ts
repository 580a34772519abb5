// The address pool and the takeover of a dead member's own address, on real namespaces
// (docs/operator-guide.md, "Address pool"): three members, a pool of six addresses set with
// `gwctl config set`; a client (the ops namespace) checks who answers ARP for each address and pings it.
// A member dies (kill -9 and its link down, as a host that loses power): its pool addresses and its own
// address answer again from survivors; it comes back and answers for its own address again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { ClusterFixture, healthy } from './cluster-fixture.mjs';
import { waitFor } from '../harness/netns.mjs';

const HELD = fileURLToPath(new URL('./tools/held-connections.mjs', import.meta.url));

/** The held-connections tool in a namespace: one JSON command in, one JSON answer out. */
function connectionDriver(child: ChildProcess): (cmd: Record<string, unknown>) => Promise<any> {
  const waiting: ((v: unknown) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => waiting.shift()?.(JSON.parse(l)));
  return (cmd) =>
    new Promise((resolve) => {
      waiting.push(resolve);
      child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
}

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const POOL = [101, 102, 103, 104, 105, 106].map((i) => `192.0.2.${i}`);
/** The ops namespace, the client of the pool addresses. */
const CLIENT = '192.0.2.200';

describe('address pool over three members', () => {
  let f: ClusterFixture;
  const macs = new Map<string, string>();

  /** The pool addresses configured on each member's eth0 (the ones it answers for). */
  async function holdings(ips: readonly string[] = M): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const ip of ips) {
      const r = await f.member(ip).host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      out.set(ip, [...r.stdout.matchAll(/inet (192\.0\.2\.\d+)\/32/g)].map((m) => m[1]!));
    }
    return out;
  }

  /** The MACs that answer an ARP request for `address` from the client (distinct, sorted). */
  async function arpAnswers(address: string): Promise<string[]> {
    const r = await f.ops.exec(['arping', '-c', '2', '-w', '2', '-I', 'eth0', address]);
    return [...new Set([...r.stdout.matchAll(/reply from [\d.]+ \[([0-9A-Fa-f:]+)\]/g)].map((m) => m[1]!.toLowerCase()))].sort();
  }

  async function neighbourMac(address: string): Promise<string | null> {
    const r = await f.ops.exec(['ip', 'neigh', 'show', address, 'dev', 'eth0']);
    return /lladdr ([0-9a-f:]+)/.exec(r.stdout)?.[1] ?? null;
  }

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3 });
    for (const ip of M) {
      const r = await f.member(ip).host.exec(['cat', '/sys/class/net/eth0/address']);
      macs.set(ip, r.stdout.trim().toLowerCase());
    }
    f.startMonitor(50);
    f.startAll();
    await f.waitForView((v) => healthy(v, M), { timeoutMs: 30_000, what: 'a healthy three-member cluster' }).catch((e: Error) => {
      const events = M.flatMap((ip) => f.logs.get(ip)!.filter((l) => /survivor answers|member removed|role |took office|is back|is alive|watchdog|exited/.test(String(l.msg))).map((l) => `${ip} ${new Date(l.time).toISOString()} ${l.msg} ${JSON.stringify({ member: l.member, holder: l.holder, why: l.why, stderr: l.stderr })}`));
      throw new Error(`${e.message}; views: ${JSON.stringify(f.latest()?.views)}\n${events.join('\n')}`);
    });
  }, 60_000);

  afterAll(async () => {
    await f?.destroy();
  });

  it('a pool set with gwctl: each address answered by exactly one member, 2/2/2', async () => {
    const pool = JSON.stringify(POOL.map((address) => ({ address, interface: 'eth0' })));
    const set = await f.gwctl(['config', 'set', `addressPool=${pool}`]);
    const events = () => M.flatMap((ip) => f.logs.get(ip)!.filter((l) => /survivor answers|member removed|role |took office|is back|is alive/.test(String(l.msg))).map((l) => `${ip} ${new Date(l.time).toISOString()} ${l.msg} ${JSON.stringify({ member: l.member, holder: l.holder, why: l.why })}`));
    expect(set.code, `${set.stderr}\n${events().join('\n')}`).toBe(0);
    await waitFor(
      async () => {
        const h = await holdings();
        const all = [...h.values()].flat();
        return all.length === POOL.length && new Set(all).size === POOL.length && [...h.values()].every((a) => a.length === 2);
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'the pool spread 2/2/2' },
    );
    const h = await holdings();
    for (const address of POOL) {
      const owner = M.find((ip) => h.get(ip)!.includes(address))!;
      // Exactly one MAC answers, the owner's; the address answers pings.
      expect(await arpAnswers(address), address).toEqual([macs.get(owner)]);
      expect(await f.ops.ping(address), address).toBe(true);
    }
    // Every member knows every owner (GET /v1/cluster).
    const view = JSON.parse((await f.gwctl(['status', '--json'])).stdout);
    expect(view.cluster.addresses.pool.map((p: { owner: string }) => p.owner).sort()).toEqual([...M, ...M].sort());
    // A bad pool is refused naming the field; nothing changes.
    const bad = await f.gwctl(['config', 'set', `addressPool=${JSON.stringify([{ address: M[1], interface: 'eth0' }, { address: M[1], interface: 'eth0' }])}`]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/cluster\.addressPool\[1\]\.address: 192\.0\.2\.12 is listed twice/);
  }, 30_000);

  it("a member dies: its pool addresses and its own address answer from survivors; on return it answers for its own again", async () => {
    // Own-address takeover is switched on at run time (a live field).
    const on = await f.gwctl(['config', 'set', 'memberAddressTakeover=true']);
    expect(on.code, on.stderr).toBe(0);
    await f.waitForView((v) => healthy(v, M), { timeoutMs: 20_000, what: 'the cluster healthy on the new configuration' });
    const views = f.latest()!.views;
    const master = views[M[0]!]!.master!;
    const victim = M.filter((ip) => ip !== master)[1]!;
    const survivors = M.filter((ip) => ip !== victim);
    const theirs = (await holdings()).get(victim)!;
    expect(theirs).toHaveLength(2);
    // The client knows the victim's own address (its neighbour entry is the victim's MAC).
    expect(await f.ops.ping(victim)).toBe(true);
    expect(await neighbourMac(victim)).toBe(macs.get(victim));

    const t0 = f.kill9(victim);
    await f.member(victim).host.ip('link', 'set', 'eth0', 'down');
    const answered = new Map<string, number>();
    let last = '';
    await waitFor(
      async () => {
        const seen: string[] = [];
        for (const address of [...theirs, victim]) {
          if (answered.has(address)) continue;
          const mac = await neighbourMac(address);
          const ok = mac !== null && mac !== macs.get(victim) && (await f.ops.ping(address, { count: 1, timeoutS: 1 }));
          seen.push(`${address} neigh ${mac} ping ${ok}`);
          if (ok) answered.set(address, Date.now() - t0);
        }
        last = `${seen.join('; ')}; held ${JSON.stringify(Object.fromEntries(await holdings(survivors)))}`;
        return answered.size === theirs.length + 1;
      },
      { timeoutMs: 15_000, intervalMs: 20, what: "the dead member's addresses answered by survivors" },
    ).catch((e: Error) => {
      throw new Error(`${e.message}; last: ${last}`);
    });
    console.log(`address pool: after kill -9 + link down of ${victim}, answered again from a survivor after (ms): ${JSON.stringify(Object.fromEntries(answered))}`);
    // Who answers: its own address the member after it in address order (wrapping), pool 3/3.
    const expectedHolder = survivors.find((ip) => ip > victim) ?? survivors[0]!;
    expect(await neighbourMac(victim)).toBe(macs.get(expectedHolder));
    const h = await holdings(survivors);
    expect(h.get(expectedHolder)).toContain(victim);
    expect([...h.values()].flat().filter((a) => POOL.includes(a)).sort()).toEqual([...POOL].sort());
    for (const ip of survivors) expect(h.get(ip)!.filter((a) => POOL.includes(a))).toHaveLength(3);
    // The killed daemon's address leases removed its pool addresses from its own interface.
    expect((await holdings([victim])).get(victim)!.filter((a) => POOL.includes(a))).toEqual([]);

    // It comes back: it answers for its own address again (gratuitous ARP), the survivor lets go.
    await f.member(victim).host.ip('link', 'set', 'eth0', 'up');
    const t1 = Date.now();
    f.start(victim);
    await f.waitForView((v) => healthy(v, M), { since: t1, timeoutMs: 20_000, what: 'the member back' }).catch(async (e: Error) => {
      const lines = (ip: string) => f.logs.get(ip)!.filter((l) => l.time >= t1).slice(-25).map((l) => `${ip} ${l.msg} ${JSON.stringify({ ...l, msg: undefined, time: undefined, pid: undefined, hostname: undefined })}`);
      const neigh = await Promise.all(M.map(async (ip) => `${ip}: ${(await f.member(ip).host.exec(['ip', 'neigh'])).stdout.replace(/\n/g, ' | ')}`));
      throw new Error(`${e.message}\nviews ${JSON.stringify(f.latest()?.views)}\n${[...lines(victim), ...lines(master)].join('\n')}\n${neigh.join('\n')}\nholdings ${JSON.stringify(Object.fromEntries(await holdings()))}`);
    });
    await waitFor(
      async () => {
        const now = await holdings();
        return !now.get(expectedHolder)!.includes(victim) && [...now.values()].every((a) => a.filter((x) => POOL.includes(x)).length === 2) && (await neighbourMac(victim)) === macs.get(victim);
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'failback of the own address and the pool 2/2/2 again' },
    );
    console.log(`address pool: ${victim} restarted; own address answered by itself again, pool 2/2/2, after ${Date.now() - t1} ms`);
    expect(await arpAnswers(victim)).toEqual([macs.get(victim)]);
    expect(await f.ops.ping(victim)).toBe(true);
  }, 90_000);

  it('failback on command (gwctl failback) with affinity: connections opened while a member was dead stay on their member until they end, new ones go to the returning member', async () => {
    // An echo service on every member (TCP 7000 on 0.0.0.0): a connection to a pool address is served by
    // the member whose kernel accepted it.
    const echo = new Map(M.map((ip) => [ip, f.startEcho(f.member(ip).host, ip)]));
    await Promise.all([...echo.values()].map((e) => e.ready));
    const client = f.ops.spawn(process.execPath, [HELD], { stdio: ['pipe', 'pipe', 'inherit'] });
    const drive = connectionDriver(client);
    try {
      await f.waitForView((v) => healthy(v, M), { timeoutMs: 20_000, what: 'a healthy cluster' });
      await waitFor(async () => [...(await holdings()).values()].every((a) => a.filter((x) => POOL.includes(x)).length === 2), { timeoutMs: 15_000, intervalMs: 100, what: 'the pool 2/2/2' });
      const master = f.latest()!.views[M[0]!]!.master!;
      const victim = M.filter((ip) => ip !== master)[0]!;
      const survivors = M.filter((ip) => ip !== victim);
      // Failback on command: the returning member gets its addresses when the operator says so.
      const onCommand = await f.gwctl(['config', 'set', 'addressPoolFailback=on-command']);
      expect(onCommand.code, onCommand.stderr).toBe(0);
      await f.waitForView((v) => M.every((ip) => v[ip]!.configVersion === f.latest()!.views[master]!.configVersion), { timeoutMs: 10_000, what: 'addressPoolFailback on-command everywhere' });
      const heldBefore = (await holdings([victim])).get(victim)!.filter((a) => POOL.includes(a)).sort();
      expect(heldBefore).toHaveLength(2);
      f.kill9(victim);
      await f.member(victim).host.ip('link', 'set', 'eth0', 'down');
      await waitFor(async () => {
        const h = await holdings(survivors);
        return survivors.every((ip) => h.get(ip)!.filter((a) => POOL.includes(a)).length === 3);
      }, { timeoutMs: 15_000, intervalMs: 50, what: 'the pool 3/3 on the survivors' });
      const during = await holdings(survivors);
      const ownerDuring = new Map(POOL.map((a) => [a, survivors.find((ip) => during.get(ip)!.includes(a))!]));
      // Two connections to every pool address while the member is dead, each checked once.
      for (const a of POOL) await waitFor(async () => (await neighbourMac(a)) === macs.get(ownerDuring.get(a)!), { timeoutMs: 10_000, intervalMs: 50, what: `${a} answered by its survivor` });
      const old: { id: number; target: string; sport: number }[] = [];
      for (const a of POOL) old.push(...(await drive({ open: { target: a, port: 7000, count: 2, tag: 'old' } })).opened);
      expect(old.every((c) => !('error' in c)), JSON.stringify(old)).toBe(true);
      const first = (await drive({ exchange: { tag: 'old', bytes: 4000 } })).exchanged;
      expect(first.every((r: { ok: boolean }) => r.ok), JSON.stringify(first)).toBe(true);

      // It comes back: the pool goes 2/2/2 again; the addresses it takes back keep their old connections on
      // the survivors (forwarded by the returning member), which hold the addresses without answering ARP.
      await f.member(victim).host.ip('link', 'set', 'eth0', 'up');
      const t1 = Date.now();
      f.start(victim);
      await f.waitForView((v) => healthy(v, M), { since: t1, timeoutMs: 20_000, what: 'the member back' });
      // Back, and holding no pool address until the operator's failback (polled a while: nothing comes).
      for (let i = 0; i < 10; i++) {
        expect((await holdings([victim])).get(victim)!.filter((a) => POOL.includes(a)), 'a pool address before gwctl failback').toEqual([]);
        await new Promise((r) => setTimeout(r, 100));
      }
      const failback = await f.gwctl(['failback', victim]);
      expect(failback.code, failback.stderr).toBe(0);
      expect(failback.stdout).toBe(`failback ${victim}: done\n`);
      expect(failback.stderr).toContain(`${victim} answers for ${heldBefore.join(', ')} again`);
      let moved: string[] = [];
      await waitFor(async () => {
        const h = await holdings([victim]);
        moved = h.get(victim)!.filter((a) => POOL.includes(a));
        return moved.length === 2;
      }, { timeoutMs: 15_000, intervalMs: 50, what: 'the returning member answering for two pool addresses' });
      // The very addresses it held before it died.
      expect([...moved].sort()).toEqual(heldBefore);
      const tBack = Date.now();
      console.log(`affinity: ${victim} back after ${tBack - t1} ms with ${moved.join(', ')}`);
      for (const a of moved) await waitFor(async () => (await neighbourMac(a)) === macs.get(victim), { timeoutMs: 10_000, intervalMs: 50, what: `the client's cache for ${a} moved to ${victim}` });
      console.log(`affinity: the client's neighbour entries for ${moved.join(', ')} show ${victim}'s MAC ${Date.now() - tBack} ms after it held them`);
      // Only the new owner answers ARP; the old owner still holds the address for its connections.
      const why = async () =>
        `holdings ${JSON.stringify(Object.fromEntries(await holdings()))}\n${M.flatMap((ip) => f.logs.get(ip)!.filter((l) => l.time >= t1 && /address|role |member removed|is back/.test(String(l.msg))).map((l) => `${ip} ${new Date(l.time).toISOString()} ${l.msg} ${JSON.stringify({ gained: l.gained, lost: l.lost, address: l.address, connections: l.connections, member: l.member })}`)).join('\n')}`;
      for (const a of moved) {
        // Polled: a member that boots on a loaded machine may be declared dead once and move addresses again.
        let seen: string[] = [];
        await waitFor(async () => JSON.stringify((seen = await arpAnswers(a))) === JSON.stringify([macs.get(victim)]), { timeoutMs: 10_000, intervalMs: 200, what: `only ${victim} answering ARP for ${a}` }).catch(async (e: Error) => {
          throw new Error(`${e.message}: ${JSON.stringify(seen)} (macs ${JSON.stringify(Object.fromEntries(macs))})\n${await why()}`);
        });
        expect((await holdings([ownerDuring.get(a)!])).get(ownerDuring.get(a)!), `${a} still held by its old owner\n${await why()}`).toContain(a);
      }
      const forwarded = await f.member(victim).host.exec(['nft', 'list', 'map', 'netdev', 'gwcluster_affinity', 'flows']);
      const movedOld = old.filter((c) => moved.includes(c.target));
      expect(movedOld).toHaveLength(4);
      for (const c of movedOld) expect(forwarded.stdout, `connection ${c.target} from port ${c.sport} forwarded`).toContain(`${c.target} . ${CLIENT} . ${c.sport} . 7000`);
      // Every old connection carries on, byte-exact; new ones go to the returning member.
      const after = (await drive({ exchange: { tag: 'old', bytes: 20_000 } })).exchanged;
      expect(after.every((r: { ok: boolean }) => r.ok), JSON.stringify(after)).toBe(true);
      const fresh: { target: string; sport: number }[] = [];
      for (const a of moved) fresh.push(...(await drive({ open: { target: a, port: 7000, count: 2, tag: 'new' } })).opened);
      const freshRun = (await drive({ exchange: { tag: 'new', bytes: 20_000 } })).exchanged;
      expect(freshRun.every((r: { ok: boolean }) => r.ok), JSON.stringify(freshRun)).toBe(true);

      // The old connections end: forwarding stops and the old owners let the addresses go.
      const tClose = Date.now();
      const closed = (await drive({ close: { tag: 'old' } })).closed;
      expect(closed.every((r: { ok: boolean }) => r.ok), JSON.stringify(closed)).toBe(true);
      await waitFor(async () => {
        const h = await holdings(survivors);
        const map = await f.member(victim).host.exec(['nft', 'list', 'map', 'netdev', 'gwcluster_affinity', 'flows']);
        return moved.every((a) => !h.get(ownerDuring.get(a)!)!.includes(a)) && !/elements/.test(map.stdout);
      }, { timeoutMs: 15_000, intervalMs: 100, what: 'the old owners released the moved addresses and forwarding stopped' });
      console.log(`affinity: old connections closed; the old owners released the moved addresses and forwarding stopped within ${Date.now() - tClose} ms`);
      const last = (await drive({ exchange: { tag: 'new', bytes: 4000 } })).exchanged;
      expect(last.every((r: { ok: boolean }) => r.ok), JSON.stringify(last)).toBe(true);
      const closedNew = (await drive({ close: { tag: 'new' } })).closed;
      expect(closedNew.every((r: { ok: boolean }) => r.ok), JSON.stringify(closedNew)).toBe(true);
      const report = (await drive({ report: {} })).connections as { resets: number; errors: string[] }[];
      expect(report.reduce((n, c) => n + c.resets, 0)).toBe(0);
      expect(report.flatMap((c) => c.errors)).toEqual([]);

      // Per connection, who served it: the old ones the survivor that held the address when they opened,
      // the new ones the returning member.
      const stats = new Map<string, Awaited<ReturnType<ReturnType<ClusterFixture['startEcho']>['stop']>>>();
      for (const [ip, e] of echo) stats.set(ip, await e.stop());
      const servedBy = (sport: number) => M.filter((ip) => Object.keys(stats.get(ip)?.peers ?? {}).includes(`${CLIENT}:${sport}`));
      for (const c of old) expect(servedBy(c.sport), `old connection to ${c.target}`).toEqual([ownerDuring.get(c.target)]);
      for (const c of fresh) expect(servedBy(c.sport), `new connection to ${c.target}`).toEqual([victim]);
      console.log(`affinity: ${old.length} old connections (${movedOld.length} on the moved addresses) kept on their members, ${fresh.length} new ones on ${victim}; 0 resets`);
    } finally {
      client.stdin?.end();
      for (const e of echo.values()) await e.stop().catch(() => null);
    }
  }, 120_000);
});
