// PacketEngine end to end, in two network namespaces made for this test and deleted in afterAll:
//   member (NS_M): cluster IP 192.0.2.1/32 on lo, vm0 192.0.2.2/24, arp_ignore=1, arp_announce=2,
//                  iptables raw PREROUTING -i vm0 ! -d 192.0.2.2 (unicast) -j NFQUEUE --queue-num 7;
//                  runs the engine and a UDP echo (7777) / TCP (7778) server in a child process.
//   peer   (NS_P): vp0 192.0.2.10/24 (the other end of the veth pair); sends traffic and captures.
// TEST-NET-1 only; host interfaces are never touched. Each child is `ip netns exec NS node
// fixtures/engine-child.mjs ROLE` on the build (dist/), driven by JSON-line requests.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyFlow, loadBinding, PacketEngine, parseMac } from '../../src/index.js';

const TAG = `${process.pid}${randomBytes(2).toString('hex')}`;
const NS_M = `gwteng${TAG}m`;
const NS_P = `gwteng${TAG}p`;
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../fixtures/engine-child.mjs', import.meta.url));
const CLUSTER = '192.0.2.1';
const PEER = '192.0.2.10';
const QUEUE = 7;
const FWD_MAC = '02:00:00:00:00:02';

function canRun(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs iproute2 (ip)';
  if (spawnSync('iptables', ['-V']).status !== 0) return 'needs iptables';
  const b = loadBinding();
  if (!b.hasEngine) return 'addon built without libnetfilter_queue';
  if (!b.hasPcap) return 'addon built without libpcap (the peer captures)';
  return null;
}
const skipReason = canRun();

const run = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8' });
const inNs = (ns: string, ...args: string[]): string => run('ip', 'netns', 'exec', ns, ...args);

interface Child {
  rpc<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  events: Record<string, unknown>[];
  proc: ChildProcess;
}

function startChild(ns: string, role: string): Child {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, CHILD, role], { stdio: ['pipe', 'pipe', 'pipe'] });
  const pending = new Map<number, { res: (v: unknown) => void; rej: (e: Error) => void }>();
  const events: Record<string, unknown>[] = [];
  let stderr = '';
  let next = 0;
  proc.stderr!.on('data', (d) => (stderr += d));
  proc.on('exit', (code) => {
    for (const p of pending.values()) p.rej(new Error(`${role} child exited (${code}): ${stderr}`));
    pending.clear();
  });
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const m = JSON.parse(line) as { id?: number; result?: unknown; error?: Record<string, unknown>; event?: Record<string, unknown> };
    if (m.event) return void events.push(m.event);
    const p = pending.get(m.id!);
    pending.delete(m.id!);
    if (m.error) p?.rej(Object.assign(new Error(String(m.error.message)), m.error));
    else p?.res(m.result);
  });
  return {
    events,
    proc,
    rpc: <T,>(cmd: string, args: Record<string, unknown> = {}) =>
      new Promise<T>((res, rej) => {
        const id = ++next;
        const timer = setTimeout(() => rej(new Error(`${role}: ${cmd} timed out; stderr: ${stderr}`)), 15_000);
        pending.set(id, { res: (v) => (clearTimeout(timer), res(v as T)), rej: (e) => (clearTimeout(timer), rej(e)) });
        proc.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
      }),
  };
}

let created: string[] = [];
let member: Child;
let peer: Child;
let memberMac = '';
let peerMac = '';

beforeAll(async () => {
  if (skipReason) return;
  execFileSync('npx', ['tsc', '-b', 'native-addon'], { cwd: ROOT, stdio: 'pipe' });
  for (const ns of [NS_M, NS_P]) {
    run('ip', 'netns', 'add', ns);
    created.push(ns);
    run('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    inNs(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
  }
  run('ip', '-n', NS_M, 'link', 'add', 'vm0', 'type', 'veth', 'peer', 'name', 'vp0', 'netns', NS_P);
  inNs(NS_M, 'sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2');
  run('ip', '-n', NS_M, 'addr', 'add', `${CLUSTER}/32`, 'dev', 'lo');
  run('ip', '-n', NS_M, 'addr', 'add', '192.0.2.2/24', 'dev', 'vm0');
  run('ip', '-n', NS_P, 'addr', 'add', `${PEER}/24`, 'dev', 'vp0');
  run('ip', '-n', NS_M, 'link', 'set', 'vm0', 'up');
  run('ip', '-n', NS_P, 'link', 'set', 'vp0', 'up');
  memberMac = (JSON.parse(run('ip', '-j', '-n', NS_M, 'link', 'show', 'vm0')) as { address: string }[])[0]!.address;
  peerMac = (JSON.parse(run('ip', '-j', '-n', NS_P, 'link', 'show', 'vp0')) as { address: string }[])[0]!.address;
  // The peer reaches the cluster IP without ARP (ARP answering is tested on its own).
  run('ip', '-n', NS_P, 'neigh', 'replace', CLUSTER, 'lladdr', memberMac, 'dev', 'vp0', 'nud', 'permanent');
  inNs(NS_M, 'iptables', '-t', 'raw', '-A', 'PREROUTING', '-i', 'vm0', '!', '-d', '192.0.2.2', '-m', 'pkttype', '--pkt-type', 'unicast', '-j', 'NFQUEUE', '--queue-num', String(QUEUE));
  member = startChild(NS_M, 'member');
  peer = startChild(NS_P, 'peer');
  await member.rpc('servers', { udpPort: 7777, tcpPort: 7778 });
}, 60_000);

afterAll(() => {
  member?.proc.stdin?.end();
  peer?.proc.stdin?.end();
  member?.proc.kill();
  peer?.proc.kill();
  for (const ns of created) spawnSync('ip', ['netns', 'del', ns]);
  created = [];
});

const udpUnit = (sport: number): number => classifyFlow({ proto: 'udp', src: PEER, sport }).unit;
const tcpUnit = (sport: number): number => classifyFlow({ proto: 'tcp', src: PEER, sport }).unit;
const call = <T = unknown,>(method: string, ...args: unknown[]): Promise<T> => member.rpc<T>('call', { method, args });

async function udpExchange(sports: number[], count: number, waitMs = 300): Promise<Record<string, string[]>> {
  await peer.rpc('udpOpen', { name: 'x', src: PEER, sports });
  await peer.rpc('udpSend', { name: 'x', dst: CLUSTER, dport: 7777, count });
  await peer.rpc('sleep', { ms: waitMs });
  return peer.rpc('udpTake', { name: 'x' });
}

/** ARP request frame (Ethernet broadcast) from the peer for `target`. */
function arpRequest(target: string): string {
  const ip = (s: string): number[] => s.split('.').map(Number);
  const sha = [...parseMac(peerMac, 't', 'mac')];
  return Buffer.from([...Array(6).fill(0xff), ...sha, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, ...sha, ...ip(PEER), 0, 0, 0, 0, 0, 0, ...ip(target)]).toString('hex');
}

interface ArpFrame {
  ethDst: string;
  ethSrc: string;
  op: number;
  sha: string;
  spa: string;
  tha: string;
  tpa: string;
}
function parseArp(hex: string): ArpFrame {
  const b = Buffer.from(hex, 'hex');
  const mac = (o: number): string => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
  const ip = (o: number): string => [...b.subarray(o, o + 4)].join('.');
  return { ethDst: mac(0), ethSrc: mac(6), op: b.readUInt16BE(20), sha: mac(22), spa: ip(28), tha: mac(32), tpa: ip(38) };
}

describe.skipIf(skipReason !== null)(`PacketEngine in network namespaces ${NS_M}/${NS_P}${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('accepts the units it owns and drops the others silently (UDP and TCP, no ICMP or RST)', async () => {
    await member.rpc('open', {
      opts: { queueNum: QUEUE, clusterIps: [CLUSTER], forwardInterface: 'vm0', arpInterfaces: [{ name: 'vm0', clusterIps: [CLUSTER] }], method: 1, localSlot: 1, master: false },
    });
    const udpSports = Array.from({ length: 12 }, (_, i) => 41000 + i);
    const tcpSports = Array.from({ length: 8 }, (_, i) => 42000 + i);
    const table = new Array<number>(1024).fill(2);
    udpSports.filter((_, i) => i % 2 === 0).forEach((s) => (table[udpUnit(s)] = 1));
    tcpSports.filter((_, i) => i % 2 === 0).forEach((s) => (table[tcpUnit(s)] = 1));
    await call('setTable', table);
    expect((await call<number[]>('owners'))[udpUnit(41000)]).toBe(1);
    await peer.rpc('capStart', { name: 'noise', device: 'vp0', bpf: 'icmp or (tcp[tcpflags] & tcp-rst != 0)' });

    const replies = await udpExchange(udpSports, 2);
    for (const s of udpSports) expect(replies[s], `sport ${s} unit ${udpUnit(s)}`).toEqual(table[udpUnit(s)] === 1 ? [`${s}:0`, `${s}:1`] : []);
    const tcp = await peer.rpc<Record<string, string>>('tcp', { src: PEER, sports: tcpSports, dst: CLUSTER, dport: 7778, waitMs: 700 });
    for (const s of tcpSports) expect(tcp[s], `tcp sport ${s}`).toBe(table[tcpUnit(s)] === 1 ? 'connected' : 'timeout');

    await peer.rpc('sleep', { ms: 100 });
    expect(await peer.rpc('capTake', { name: 'noise' })).toEqual([]);
    const c = await call<{ packets: Record<string, number>; bytes: Record<string, number>; verdicts: Record<string, number> }>('counters', { reset: true });
    const ownedUdp = udpSports.filter((s) => table[udpUnit(s)] === 1);
    for (const s of ownedUdp) {
      expect(c.packets[udpUnit(s)]).toBeGreaterThanOrEqual(2);
      expect(c.bytes[udpUnit(s)]).toBeGreaterThanOrEqual(2 * (20 + 8 + `${s}:0`.length));
    }
    for (const u of Object.keys(c.packets)) expect(table[Number(u)]).toBe(1); // only owned units counted
    expect(c.verdicts.dropped).toBeGreaterThanOrEqual(2 * (udpSports.length - ownedUdp.length));
    expect(c.verdicts.accepted).toBeGreaterThanOrEqual(2 * ownedUdp.length);
    expect(c.verdicts).toMatchObject({ held: 0, forwarded: 0, invalid: 0 });
    const after = await call<{ verdicts: Record<string, number> }>('counters');
    expect(after.verdicts.accepted + after.verdicts.dropped).toBeLessThan(10); // reset (a late retransmission at most)
    const stats = await call<Record<string, number | boolean>>('stats');
    expect(stats).toMatchObject({ verdictErrors: 0, recvOverruns: 0, kernelStatsKnown: true, kernelQueueDropped: 0 });
  });

  it('answers ARP for the cluster IP only while answering is on, with the interface MAC (method 1)', async () => {
    await peer.rpc('capStart', { name: 'arp', device: 'vp0', bpf: 'arp and arp[6:2] = 2' });
    await peer.rpc('inject', { name: 'arp', hex: arpRequest(CLUSTER) });
    await peer.rpc('sleep', { ms: 300 });
    expect(await peer.rpc('capTake', { name: 'arp', close: false })).toEqual([]); // engine off, kernel arp_ignore=1

    await call('setArpAnswering', true);
    await peer.rpc('inject', { name: 'arp', hex: arpRequest(CLUSTER) });
    await peer.rpc('inject', { name: 'arp', hex: arpRequest('192.0.2.99') }); // not a cluster IP: no answer
    await peer.rpc('sleep', { ms: 300 });
    const frames = (await peer.rpc<{ hex: string }[]>('capTake', { name: 'arp' })).map((f) => parseArp(f.hex));
    expect(frames).toEqual([{ ethDst: peerMac, ethSrc: memberMac, op: 2, sha: memberMac, spa: CLUSTER, tha: peerMac, tpa: PEER }]);
    await call('setArpAnswering', false);
    expect(await call('stats')).toMatchObject({ arpRequests: 2, arpAnswered: 1 });
  });

  it('announces the cluster IP by gratuitous ARP, 2 rounds 100 ms apart', async () => {
    await peer.rpc('capStart', { name: 'garp', device: 'vp0', bpf: 'arp' });
    member.events.length = 0;
    await call('announce');
    const deadline = Date.now() + 3000;
    while (!member.events.some((e) => e.type === 'announced') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(member.events).toContainEqual({ type: 'announced', frames: 4 });
    await peer.rpc('sleep', { ms: 50 });
    const got = await peer.rpc<{ t: number; hex: string }[]>('capTake', { name: 'garp' });
    const frames = got.map((f) => parseArp(f.hex));
    const req = { ethDst: 'ff:ff:ff:ff:ff:ff', ethSrc: memberMac, op: 1, sha: memberMac, spa: CLUSTER, tha: '00:00:00:00:00:00', tpa: CLUSTER };
    const rep = { ...req, op: 2, tha: memberMac };
    expect(frames).toEqual([req, rep, req, rep]);
    expect(got[2]!.t - got[0]!.t).toBeGreaterThanOrEqual(80);
  });

  it('holds packets of an unassigned unit (master), emits unit-needs-owner once, and delivers them in order on release', async () => {
    await call('setRole', { master: true });
    const sport = 43000;
    const unit = udpUnit(sport);
    await call('setOwner', unit, 0);
    member.events.length = 0;
    await peer.rpc('udpOpen', { name: 'h', src: PEER, sports: [sport] });
    await peer.rpc('udpSend', { name: 'h', dst: CLUSTER, dport: 7777, count: 3, gapMs: 10 });
    await peer.rpc('sleep', { ms: 250 });
    expect(await peer.rpc('udpTake', { name: 'h', close: false })).toEqual({ [sport]: [] });
    expect(member.events).toEqual([{ type: 'unit-needs-owner', unit, owner: 0 }]);
    expect(await call('isHeld', unit)).toBe(true);
    expect(await call('stats')).toMatchObject({ heldPackets: 3 });

    // Assigned to this member but not yet acknowledged: still held (and announced once more, owner 1).
    await call('setOwner', unit, 1);
    await peer.rpc('udpSend', { name: 'h', dst: CLUSTER, dport: 7777, count: 1, from: 3 });
    await peer.rpc('sleep', { ms: 150 });
    expect(member.events).toEqual([{ type: 'unit-needs-owner', unit, owner: 0 }, { type: 'unit-needs-owner', unit, owner: 1 }]);
    expect(await call('release', unit)).toEqual({ reinjected: 4, forwarded: 0, dropped: 0 });
    await peer.rpc('sleep', { ms: 250 });
    expect(await peer.rpc('udpTake', { name: 'h', close: false })).toEqual({ [sport]: [0, 1, 2, 3].map((i) => `${sport}:${i}`) });
    // Released: later packets are accepted directly.
    await peer.rpc('udpSend', { name: 'h', dst: CLUSTER, dport: 7777, count: 1, from: 4 });
    await peer.rpc('sleep', { ms: 200 });
    expect(await peer.rpc('udpTake', { name: 'h' })).toEqual({ [sport]: [`${sport}:4`] });
    expect(await call('stats')).toMatchObject({ heldPackets: 0, holdReleased: 4, reinjected: 4 });
  });

  it('forwards (method 1) to the owner MAC, including released packets; drops instead in method 2', async () => {
    const [s1, s2, s3] = [44000, 44001, 44002];
    const [u1, u2, u3] = [s1, s2, s3].map(udpUnit) as [number, number, number];
    await call('setOwner', u1, 2);
    await call('setOwner', u3, 2);
    await call('setOwner', u2, 0);
    await call('setSlotMac', 2, FWD_MAC);
    await peer.rpc('capStart', { name: 'fwd', device: 'vp0', bpf: `ether dst ${FWD_MAC}` });
    await peer.rpc('udpOpen', { name: 'f', src: PEER, sports: [s1, s2] });
    await peer.rpc('udpSend', { name: 'f', dst: CLUSTER, dport: 7777, count: 1 });
    await peer.rpc('sleep', { ms: 200 });
    await call('setOwner', u2, 2); // the held unit gets its owner, which acknowledges
    expect(await call('release', u2)).toEqual({ reinjected: 0, forwarded: 1, dropped: 0 });
    await peer.rpc('sleep', { ms: 150 });
    expect(await peer.rpc('udpTake', { name: 'f' })).toEqual({ [s1]: [], [s2]: [] });
    const frames = (await peer.rpc<{ hex: string }[]>('capTake', { name: 'fwd', close: false })).map((f) => Buffer.from(f.hex, 'hex'));
    expect(frames).toHaveLength(2);
    for (const [i, f] of frames.entries()) {
      const sport = [s1, s2][i]!;
      expect(f.subarray(0, 6).toString('hex')).toBe(FWD_MAC.replaceAll(':', ''));
      expect(f.subarray(6, 12).toString('hex')).toBe(memberMac.replaceAll(':', ''));
      expect(f.readUInt16BE(12)).toBe(0x0800);
      const ipPkt = f.subarray(14);
      expect([...ipPkt.subarray(12, 16)].join('.')).toBe(PEER);
      expect([...ipPkt.subarray(16, 20)].join('.')).toBe(CLUSTER);
      expect(ipPkt.readUInt16BE(20)).toBe(sport);
      expect(ipPkt.subarray(28, ipPkt.readUInt16BE(2)).toString()).toBe(`${sport}:0`);
    }
    // Method 2: every member received the packet; the master drops other members' units.
    await call('setRole', { method: 2 });
    const before = await call<{ verdicts: Record<string, number> }>('counters', { reset: true });
    expect(before.verdicts.forwarded).toBe(1);
    const r = await udpExchange([s3], 1, 200);
    expect(r).toEqual({ [s3]: [] });
    expect(await peer.rpc('capTake', { name: 'fwd' })).toEqual([]);
    expect((await call<{ verdicts: Record<string, number> }>('counters')).verdicts).toMatchObject({ dropped: 1, forwarded: 0 });
    await call('setRole', { method: 1, master: false });
  });

  it('reports OS failures as NativeCallError with the call and errno, and closes idempotently (no bypass after)', async () => {
    const base = { queueNum: 8, clusterIps: [CLUSTER], method: 1, localSlot: 1 };
    const errors = await member.rpc<Record<string, unknown>[]>('openErrors', {
      opts: [
        { ...base, forwardInterface: 'gwt-none0' },
        { ...base, arpInterfaces: [{ name: 'gwt-none1', clusterIps: [CLUSTER] }] },
        { ...base, queueNum: QUEUE }, // bound by the open engine
      ],
    });
    expect(errors[0]).toMatchObject({ name: 'NativeCallError', call: 'PacketEngine.open', syscall: 'if_nametoindex', code: 'ENODEV' });
    expect(errors[0]!.message).toMatch(/if_nametoindex\(gwt-none0\)/);
    expect(errors[1]).toMatchObject({ syscall: 'if_nametoindex', code: 'ENODEV' });
    expect(errors[2]).toMatchObject({ name: 'NativeCallError', syscall: 'nfq_create_queue' });
    expect(typeof errors[2]!.errno).toBe('number');

    const sport = 45000;
    await call('setOwner', udpUnit(sport), 1);
    expect(await udpExchange([sport], 1, 200)).toEqual({ [sport]: [`${sport}:0`] });
    expect(await member.rpc('closeEngine')).toMatchObject({ closed: true, after: { code: 'GWC_ENGINE_CLOSED' } });
    // The queue is unbound and the rule has no bypass: the packet is dropped, not delivered.
    expect(await udpExchange([sport], 1, 200)).toEqual({ [sport]: [] });
  });
});

describe('PacketEngine.open argument checks', () => {
  const base = { queueNum: 1, clusterIps: ['192.0.2.1'], method: 1 as const, localSlot: 1 };
  it('rejects bad arguments with TypeErrors that name the option', () => {
    expect(() => PacketEngine.open({ ...base, method: 4 as never })).toThrow(/PacketEngine.open: opts.method must be 1, 2 or 3/);
    expect(() => PacketEngine.open({ ...base, queueNum: 70000 })).toThrow(/opts.queueNum must be an integer 0..65535/);
    expect(() => PacketEngine.open({ ...base, clusterMac: 'zz' })).toThrow(/opts.clusterMac must be a MAC address/);
    expect(() => PacketEngine.open({ ...base, method: 2, arpInterfaces: [{ name: 'eth0', clusterIps: ['192.0.2.1'] }] })).toThrow(/clusterMac is required with method 2/);
    expect(() => PacketEngine.open({ ...base, arpInterfaces: [{ name: 'eth0', clusterIps: ['2001:db8::1'] }] })).toThrow(TypeError);
  });
  it('reports a build without the engine', () => {
    const binding = { hasEngine: false } as never;
    expect(() => PacketEngine.open({ ...base, binding })).toThrow(expect.objectContaining({ code: 'GWC_NO_ENGINE' }));
  });
});
