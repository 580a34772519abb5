// The data plane on a real network: clients on an outside bridge, three members, a server on an inside
// bridge; for each distribution method and packet path, many TCP and UDP flows to a service on the
// cluster IP and through the cluster to the server. Every flow completes with its data intact, is handled
// by exactly the member that owns its unit, and no member sends a RST or an ICMP error.
//
// Packet paths, both with strict session tracking (the default): kernel (the default, dataplane.path
// auto: this member's units pass in the kernel, except what session tracking must see: a flow's packets
// until its session is established, SYN, FIN and RST) and, in method 1, nfqueue (every packet decided in
// user space: the fallback where the kernel path cannot load).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { classifyFlow } from '@gwcluster/native-addon';
import { ClusterFixture, balanced, healthy, shared, CLUSTER_IP, type EchoStats, type FixtureMember } from './cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const FLOWS = 60;

const COUNTERS = `table inet gwtest {
  counter rst_out {
  }
  counter icmp_err_out {
  }
  counter fwd_in {
  }
  counter rst_fwd {
  }
  chain count_output {
    type filter hook output priority 0;
    tcp flags rst counter name rst_out
    icmp type { destination-unreachable, time-exceeded, parameter-problem } counter name icmp_err_out
  }
  chain count_forward {
    type filter hook forward priority 0;
    ip saddr 198.51.100.0/24 ip daddr 192.0.2.100 counter name fwd_in
    tcp flags rst counter name rst_fwd
  }
}
`;

async function counters(m: FixtureMember): Promise<Record<string, number>> {
  const r = await m.host.exec(['nft', '-j', 'list', 'counters', 'table', 'inet', 'gwtest']);
  const parsed = JSON.parse(r.stdout) as { nftables: { counter?: { name: string; packets: number } }[] };
  return Object.fromEntries(parsed.nftables.filter((x) => x.counter).map((x) => [x.counter!.name, x.counter!.packets]));
}

/** Packets the kernel path passed (the pass-mark RETURN rule) and packets queued to the engine, on one member. */
async function ruleCounts(m: FixtureMember): Promise<{ passed: number; queued: number }> {
  const r = await m.host.exec(['iptables', '-w', '-t', 'raw', '-L', 'GWCLUSTER', '-v', '-x', '-n']);
  const count = (re: RegExp) => r.stdout.split('\n').filter((l) => re.test(l)).reduce((a, l) => a + Number(l.trim().split(/\s+/)[0]), 0);
  return { passed: count(/RETURN .*mark match/), queued: count(/NFQUEUE/) };
}

const METHODS = ['master-forward', 'unicast-mac', 'multicast-mac'] as const;
// The kernel path (the default) in every method; the NFQUEUE path (the fallback) in method 1, where it
// also forwards other members' units in user space.
const CASES = [...METHODS.map((method) => [method, 'kernel'] as const), ['master-forward', 'nfqueue'] as const];

describe.each(CASES)('data plane, method %s, path %s', (method, path) => {
  let f: ClusterFixture;
  beforeAll(async () => {
    // A high rebalance threshold: this file checks which member served each flow against the table, so
    // the traffic's own load must not move units meanwhile (the failover tests run the default).
    const dataplane = { path };
    f = await ClusterFixture.create({ members: 3, layout: 'gateway', method, extraConfig: { cluster: { rebalanceThreshold: 0.5 }, dataplane } });
    for (const m of f.members) await m.host.exec(['nft', '-f', '-'], { input: COUNTERS }).then((r) => expect(r.code, r.stderr).toBe(0));
    f.startMonitor(50);
    f.startAll();
    await f.waitForView((v) => balanced(v, M), { timeoutMs: 30_000, what: 'a balanced cluster' });
  }, 90_000);
  afterAll(async () => {
    await f?.destroy();
  });
  /** Echo services a test started: stopped after it, passed or failed, so the next test can bind. */
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  it('every flow to the cluster IP and through the cluster completes, handled by its unit\'s owner only', async () => {
    const echos = f.members.map((m) => f.startEcho(m.host, m.name));
    const server = f.startEcho(f.server!, 's1');
    cleanups.push(() => Promise.all([...echos, server].map((e) => e.stop())));
    await Promise.all([...echos, server].map((e) => e.ready));
    const tableBefore = JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners as string[];
    // Every TCP reset a member's own stack sends, captured on its outside interface.
    const captures = f.members.map((m) => {
      const p = m.host.spawn('tcpdump', ['-i', 'eth0', '-nn', '-l', '-Q', 'out', 'tcp[tcpflags] & tcp-rst != 0'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      p.stdout!.on('data', (d) => (out += d));
      return { member: m.ip, stop: () => new Promise<string>((r) => { p.once('exit', () => r(out)); p.kill('SIGTERM'); }) };
    });
    await new Promise((r) => setTimeout(r, 500));
    const args = (target: string) => ['--target', target, '--tcp-port', '7000', '--udp-port', '7001', '--flows', String(FLOWS), '--bytes', '20000', '--concurrency', '30', '--timeout-ms', '8000'];
    const rulesBefore = await Promise.all(f.members.map(ruleCounts));
    // Through flows pause halfway, so their second half comes after the owner's offload however loaded
    // the machine (the offload follows the verdict on the first established packet, on the engine thread).
    const [svc, thr] = await Promise.all([f.traffic(f.clients![0]!, args(CLUSTER_IP)), f.traffic(f.clients![1]!, [...args('192.0.2.100'), '--pause-ms', '300'])]);
    const rulesAfter = await Promise.all(f.members.map(ruleCounts));
    expect(svc.tcp).toMatchObject({ ok: FLOWS, failed: 0 });
    expect(svc.udp).toMatchObject({ ok: FLOWS, failed: 0 });
    expect(thr.tcp).toMatchObject({ ok: FLOWS, failed: 0 });
    expect(thr.udp).toMatchObject({ ok: FLOWS, failed: 0 });
    const stats = new Map<string, EchoStats>();
    for (let i = 0; i < echos.length; i++) stats.set(f.members[i]!.ip, (await echos[i]!.stop())!);
    const s1 = (await server.stop())!;

    // Which member served each service flow, against the owner the table gives its unit.
    const table = JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners as string[];
    expect(table, 'no unit moved during the traffic (rebalance hysteresis)').toEqual(tableBefore);
    const client = f.clients![0]!.address();
    for (const flow of svc.flows) {
      const { unit } = classifyFlow({ proto: flow.proto, src: client, sport: flow.sport, dst: CLUSTER_IP, dport: flow.proto === 'tcp' ? 7000 : 7001 });
      const peer = `${client}:${flow.sport}`;
      const servedBy = M.filter((ip) => (flow.proto === 'tcp' ? stats.get(ip)!.peers : stats.get(ip)!.udpPeers)[peer] !== undefined);
      expect(servedBy, `${flow.proto} flow from port ${flow.sport} (unit ${unit})`).toEqual([table[unit]]);
    }
    // Through traffic reached the server once per flow, never a member's service.
    expect(s1.tcpConnections).toBe(FLOWS);
    expect(Object.values(s1.udpPeers).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(FLOWS);
    // Forwarded flows (key src ^ dst: all the same unit here) were routed by exactly one member: the owner.
    const { unit: throughUnit } = classifyFlow({ proto: 'tcp', src: f.clients![1]!.address(), dst: '192.0.2.100', forwarding: true });
    const fwd = await Promise.all(f.members.map(counters));
    const forwarders = M.filter((_, i) => fwd[i]!.fwd_in! > 0);
    expect(forwarders).toEqual([table[throughUnit]]);
    // Nobody answered for a flow it does not own: every RST a member sent was for a flow of its own
    // units (a normal close may end in one), and no member sent an ICMP error.
    for (const c of fwd) expect(c.icmp_err_out).toBe(0);
    // The kernel path decided the owners' packets in the kernel: the pass-mark rule let them through and
    // the engine saw only the through flows' handshakes and closes (and, in method 1, what the master
    // forwards): the owner offloaded each through flow once its session was established.
    const sum = (rs: { passed: number; queued: number }[], k: 'passed' | 'queued') => rs.reduce((a, r) => a + r[k], 0);
    const passed = sum(rulesAfter, 'passed') - sum(rulesBefore, 'passed');
    const queued = sum(rulesAfter, 'queued') - sum(rulesBefore, 'queued');
    if (path === 'kernel') {
      expect(passed, 'packets passed in the kernel').toBeGreaterThan(4 * FLOWS);
      // A through TCP flow's 20000 bytes each way are at least 28 segments: had their data gone up, the
      // queue would have seen more than 28 * FLOWS packets. What goes up is each TCP flow's handshake and
      // close (with a retransmission now and then) and each UDP flow's first datagrams: under 15 a pair.
      if (method !== 'master-forward') expect(queued, 'packets queued to user space').toBeLessThan(15 * FLOWS);
      const offloaded = await Promise.all(M.map(async (ip) => {
        const c = JSON.parse((await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` })).stdout).cluster.counters as Record<string, number>;
        return { flows: c['node.dataplane.engine.kernel.flowsOffloaded'] ?? 0, hits: c['node.dataplane.engine.kernel.flowHit'] ?? 0 };
      }));
      const through = offloaded[M.indexOf(table[throughUnit]!)]!;
      expect(through.flows, 'through flows the owner offloaded to its kernel').toBeGreaterThanOrEqual(FLOWS);
      expect(through.hits, 'packets of offloaded flows passed in the kernel').toBeGreaterThan(2 * FLOWS);
      if (method === 'master-forward' && table[throughUnit] !== f.latest()!.views[M[0]!]!.master) {
        // The master sent the through flows' frames to their owner from its kernel.
        const master = f.latest()!.views[M[0]!]!.master!;
        const c = JSON.parse((await f.gwctl(['status', '--json'], { endpoint: `http://${master}:7401` })).stdout).cluster.counters as Record<string, number>;
        expect(c['node.dataplane.engine.kernel.redirected'] ?? 0, 'frames the master redirected in the kernel').toBeGreaterThan(4 * FLOWS);
      }
    } else {
      expect(passed).toBe(0);
    }
    for (const cap of captures) {
      const lines = (await cap.stop()).split('\n').filter((l) => l.includes('Flags [R'));
      for (const line of lines) {
        const m = /IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+):/.exec(line);
        expect(m, line).not.toBeNull();
        const [, src, sport, dst, dport] = m!;
        // A reset from the cluster IP was made by this member's stack for a service flow; any other was
        // routed through it (an endpoint's own reset). Either way the flow's unit must be this member's.
        const { unit } =
          src === CLUSTER_IP
            ? classifyFlow({ proto: 'tcp', src: dst!, sport: Number(dport), dst: src, dport: Number(sport) })
            : classifyFlow({ proto: 'tcp', src: src!, dst: dst!, forwarding: true });
        expect(table[unit], `RST through ${cap.member} for a flow of unit ${unit}: ${line}`).toBe(cap.member);
      }
    }
  }, 120_000);

  it.runIf(method === 'master-forward')('a unit that moves during traffic loses no packet', async () => {
    const server = f.startEcho(f.server!, 's1');
    cleanups.push(() => server.stop());
    await server.ready;
    const { unit } = classifyFlow({ proto: 'udp', src: f.clients![0]!.address(), dst: '192.0.2.100', forwarding: true });
    const owners = JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners as string[];
    const owner = owners[unit]!;
    // 6 s of 400 numbered datagrams per second through the cluster and back; the owner is drained after 2 s.
    const stream = f.traffic(f.clients![0]!, ['--target', '192.0.2.100', '--udp-port', '7001', '--stream', '2400', '--rate', '400']);
    await new Promise((r) => setTimeout(r, 2000));
    const drain = await f.gwctl(['drain', owner, '--endpoint', `http://${owner}:7401`]);
    expect(drain.code, drain.stderr).toBe(0);
    const result = (await stream).stream!;
    const after = JSON.parse((await f.gwctl(['status', '--json'])).stdout).units.owners as string[];
    expect(after[unit]).not.toBe(owner); // the unit did move
    expect(result).toMatchObject({ sent: 2400, received: 2400, missing: [] });
    await server.stop();
    const undrain = await f.gwctl(['undrain', owner]);
    expect(undrain.code, undrain.stderr).toBe(0);
    await f.waitForView((v) => shared(v, M), { timeoutMs: 15_000, what: 'balanced again after undrain' });
  }, 60_000);

  it('a member that dies: its units move to the survivors and new flows on them work', async () => {
    const views = f.latest()!.views;
    const master = views[M[0]!]!.master!;
    const victim = M.find((ip) => ip !== master)!;
    const survivors = M.filter((ip) => ip !== victim);
    const t0 = f.kill9(victim);
    await f.waitForView((v) => healthy(v, survivors), { since: t0, timeoutMs: 15_000, what: 'survivors own every unit' });
    const echos = survivors.map((ip) => f.startEcho(f.member(ip).host, ip));
    cleanups.push(() => Promise.all(echos.map((e) => e.stop())));
    await Promise.all(echos.map((e) => e.ready)); // every survivor listens before the first SYN
    const svc = await f.traffic(f.clients![0]!, ['--target', CLUSTER_IP, '--tcp-port', '7000', '--udp-port', '7001', '--flows', '40', '--bytes', '5000', '--timeout-ms', '8000']);
    expect(svc.tcp).toMatchObject({ ok: 40, failed: 0 });
    expect(svc.udp).toMatchObject({ ok: 40, failed: 0 });
    for (const e of echos) await e.stop();
    const tr = Date.now();
    f.start(victim);
    await f.waitForView((v) => shared(v, M), { since: tr, timeoutMs: 30_000, what: 'the member back' });
  }, 120_000);
});
