// libpcap capture and inject, end to end, inside a network namespace made for this test: a veth pair
// (veth0 192.0.2.1 = the cluster IP, veth1 192.0.2.10, TEST-NET-1) that exists nowhere else. Host
// interfaces are never opened. The namespace is deleted in afterAll, whatever happened.
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyFrame, loadBinding, Verdict, type PacketClassification } from '../../src/index.js';
import { bytes, ether, ipv4, l2tp, udp } from '../packets.js';

const NS = `gwtcap${process.pid}`;
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../fixtures/capture-child.mjs', import.meta.url));

function canRun(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs iproute2 (ip)';
  if (!loadBinding().hasPcap) return 'addon built without libpcap';
  return null;
}
const skipReason = canRun();

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
let nsCreated = false;

beforeAll(() => {
  if (skipReason) return;
  // The child runs the build, as processes do.
  execFileSync('npx', ['tsc', '-b', 'native-addon'], { cwd: ROOT, stdio: 'pipe' });
  ip('netns', 'add', NS);
  nsCreated = true;
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  execFileSync('ip', ['netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'], { stdio: 'pipe' });
  ip('-n', NS, 'addr', 'add', '192.0.2.1/24', 'dev', 'veth0');
  ip('-n', NS, 'addr', 'add', '192.0.2.10/24', 'dev', 'veth1');
  ip('-n', NS, 'link', 'set', 'veth0', 'up');
  ip('-n', NS, 'link', 'set', 'veth1', 'up');
}, 60_000);

afterAll(() => {
  if (nsCreated) spawnSync('ip', ['netns', 'del', NS]);
});

function runChild(args: string[], stdin = ''): unknown[] {
  const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, CHILD, ...args], { input: stdin, encoding: 'utf8', timeout: 25_000 });
  if (r.status !== 0) throw new Error(`capture child failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
}

/** An Ethernet frame to an unused unicast MAC (the kernel ignores it; the promiscuous capture sees it). */
function frame(ipPacket: Uint8Array): Uint8Array {
  const f = ether({ type: 0x0800, payload: ipPacket });
  f.set([0x02, 0, 0, 0, 0, 0x01], 0);
  return f;
}

describe.skipIf(skipReason !== null)(`Capture in network namespace ${NS}${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('delivers classified batches of what was injected, filtered by BPF, with verdicts and counters', () => {
    const toCluster = (src: string, sport: number, dport = 9999, payload = bytes(1, 2, 3, 4)): Uint8Array =>
      frame(ipv4({ src, dst: '192.0.2.1', proto: 17, payload: udp({ sport, dport, payload }) }));
    const frames = [
      toCluster('198.51.100.1', 1000),
      toCluster('198.51.100.2', 2000),
      toCluster('198.51.100.3', 3000),
      toCluster('198.51.100.4', 4000, 8888), // not matched by the BPF expression
      toCluster('198.51.100.5', 40000, 1701, l2tp({ tunnelId: 77, sessionId: 5, lengthBit: true })),
      frame(ipv4({ src: '198.51.100.6', dst: '192.0.2.1', proto: 17, payload: udp({ sport: 6000, dport: 9999, length: 200 }) })), // truncated UDP
      toCluster('198.51.100.7', 7000),
    ];
    const units = frames.map((f) => {
      const r = classifyFrame(f, { clusterIps: ['192.0.2.1'] });
      return 'unit' in r ? (r as PacketClassification).unit : 0xffff;
    });
    // slot 1 (this member) owns the units of frames 0, 2 and 4; slot 2 owns every other unit
    const table = new Array<number>(1024).fill(2);
    for (const i of [0, 2, 4]) table[units[i]!] = 1;
    const expectVerdict = (i: number): number => (units[i] === 0xffff ? Verdict.INVALID : table[units[i]!] === 1 ? Verdict.LOCAL : Verdict.DROP);
    const delivered = [0, 1, 2, 4, 5, 6];

    const [report, closed] = runChild([], JSON.stringify({ table, frames: frames.map((f) => Buffer.from(f).toString('hex')), expect: delivered.length })) as [
      { sent: number[]; got: { units: number[]; verdicts: number[]; frames: string[]; batches: number }; errored: unknown; stats: Record<string, number>; txStats: Record<string, number>; filterStats: Record<string, number>; counters: { packets: Record<string, number> } },
      { closed: boolean },
    ];
    expect(report.errored).toBeNull();
    expect(report.sent).toEqual(frames.map((f) => f.length));
    expect(report.txStats.injected).toBe(frames.length);
    expect(report.got.frames).toEqual(delivered.map((i) => Buffer.from(frames[i]!).toString('hex')));
    expect(report.got.units).toEqual(delivered.map((i) => units[i]));
    expect(report.got.verdicts).toEqual(delivered.map(expectVerdict));
    expect(report.got.batches).toBeGreaterThanOrEqual(2); // maxBatch 4
    expect(report.stats.delivered).toBe(delivered.length);
    expect(report.filterStats).toMatchObject({ cluster: 5, truncated: 1, l2tp: 1 });
    const localUnits = [0, 2, 4].map((i) => units[i]!);
    const expectedCounts: Record<string, number> = {};
    for (const u of localUnits) expectedCounts[u] = (expectedCounts[u] ?? 0) + 1;
    expect(report.counters.packets).toEqual(expectedCounts);
    expect(closed).toEqual({ closed: true });
  });

  it('reports a missing device, a bad BPF expression and a non-frame filter as errors naming the call', () => {
    const [errors] = runChild(['errors']) as [Record<string, unknown>[]];
    expect(errors[0]).toMatchObject({ name: 'NativeCallError', call: 'Capture.open', syscall: 'pcap_activate', code: 'PCAP_ERROR_NO_SUCH_DEVICE' });
    expect(errors[0]!.message).toMatch(/^Capture\.open: new Capture: pcap_activate\(gwt-none0\): /);
    expect(errors[1]).toMatchObject({ name: 'NativeCallError', syscall: 'pcap_compile' });
    expect(errors[1]!.message).toMatch(/udp port nonsense/);
    expect(errors[2]).toMatchObject({ name: 'TypeError' });
    expect(errors[2]!.message).toMatch(/frames: true/);
  });
});
