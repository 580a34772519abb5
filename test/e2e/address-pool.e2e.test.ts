// The address pool and the takeover of a dead member's own address, on real namespaces
// (docs/operator-guide.md, "Address pool"): three members, a pool of six addresses set with
// `gwctl config set`; a client (the ops namespace) checks who answers ARP for each address and pings it.
// A member dies (kill -9 and its link down, as a host that loses power): its pool addresses and its own
// address answer again from survivors; it comes back and answers for its own address again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFixture, healthy } from './cluster-fixture.mjs';
import { waitFor } from '../harness/netns.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const POOL = [101, 102, 103, 104, 105, 106].map((i) => `192.0.2.${i}`);

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
});
