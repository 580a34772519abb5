// The fast path on a real interface, in two network namespaces of the test harness (TEST-NET-1 only):
//   member: fp0 192.0.2.2/24 (also the cluster IP here); runs a FastPath (fixtures/fastpath-child.mjs)
//           attached to fp0's ingress; an nft prerouting chain counts UDP to port 9, all and marked.
//   client: cl0 192.0.2.10/24; sends UDP to 192.0.2.2:9 from three source ports whose units the member
//           passes (its own), drops (another member's) and hands to user space (held).
// Packets of the dropped unit never reach netfilter; those of the passed unit arrive with the pass mark
// and are counted per unit in the kernel; those handed up arrive with the user mark. Needs root.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topology, waitFor, type Host } from '../../../test/harness/netns.mjs';
import { fastPathAvailable, UnitAction, workUnitOfKey } from '../../src/index.js';

const CHILD = fileURLToPath(new URL('../fixtures/fastpath-child.mjs', import.meta.url));
const MEMBER = '192.0.2.2';
const CLIENT = '192.0.2.10';
const USER_MARK = 0x100;
const PASS_MARK = 0x200;
const PORT = 9;
const COUNT = 20; // datagrams per source port

function canRun(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, BPF)';
  if (spawnSync('nft', ['--version']).status !== 0) return 'needs nftables (nft)';
  if (!fastPathAvailable()) return 'addon built without the fast path (clang, libbpf-dev)';
  return null;
}
const skipReason = canRun();

/** Three client source ports with three different units. */
function pickPorts(): { pass: number; drop: number; toUser: number; units: { pass: number; drop: number; toUser: number } } {
  const src = ((192 << 24) | (0 << 16) | (2 << 8) | 10) >>> 0;
  const ports: number[] = [];
  const units = new Set<number>();
  for (let p = 40000; ports.length < 3 && p < 40100; p++) {
    const u = workUnitOfKey((src ^ p) >>> 0);
    if (!units.has(u)) units.add(u), ports.push(p);
  }
  const unit = (p: number) => workUnitOfKey((src ^ p) >>> 0);
  return { pass: ports[0]!, drop: ports[1]!, toUser: ports[2]!, units: { pass: unit(ports[0]!), drop: unit(ports[1]!), toUser: unit(ports[2]!) } };
}

interface Child {
  rpc<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  proc: ChildProcess;
}

function startChild(host: Host): Child {
  const proc = host.spawn(process.execPath, [CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
  const pending = new Map<number, { res: (v: unknown) => void; rej: (e: Error) => void }>();
  let stderr = '';
  let next = 0;
  proc.stderr!.on('data', (d) => (stderr += d));
  proc.on('exit', (code) => {
    for (const p of pending.values()) p.rej(new Error(`fastpath child exited (${code}): ${stderr}`));
    pending.clear();
  });
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const m = JSON.parse(line) as { id: number; result?: unknown; error?: Record<string, unknown> };
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p?.rej(Object.assign(new Error(String(m.error.message)), m.error));
    else p?.res(m.result);
  });
  return {
    proc,
    rpc: <T,>(cmd: string, args: Record<string, unknown> = {}) =>
      new Promise<T>((res, rej) => {
        const id = ++next;
        const timer = setTimeout(() => rej(new Error(`fastpath child: ${cmd} timed out; stderr: ${stderr}`)), 10_000);
        pending.set(id, { res: (v) => (clearTimeout(timer), res(v as T)), rej: (e) => (clearTimeout(timer), rej(e)) });
        proc.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
      }),
  };
}

/** Sends COUNT datagrams to MEMBER:PORT from each source port, from the client namespace. */
async function send(client: Host, ports: number[]): Promise<void> {
  const script = `
    const { createSocket } = require('node:dgram');
    (async () => {
      for (const port of ${JSON.stringify(ports)}) {
        const s = createSocket('udp4');
        await new Promise((r) => s.bind(port, '${CLIENT}', r));
        for (let i = 0; i < ${COUNT}; i++) await new Promise((r) => s.send(Buffer.from('gwc' + i), ${PORT}, '${MEMBER}', r));
        s.close();
      }
    })();`;
  await client.execOk([process.execPath, '-e', script]);
}

/** nft counters of the member: UDP to PORT, all, with the user mark and with the pass mark. */
async function nftCounts(member: Host): Promise<{ all: number; marked: number; passMarked: number }> {
  const out = await member.execOk(['nft', '-j', 'list', 'table', 'ip', 'gwcfpt']);
  const rules = (JSON.parse(out.stdout) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] }).nftables
    .map((x) => x.rule)
    .filter((r) => r !== undefined);
  const count = (comment: string) => rules.find((r) => r!.comment === comment)!.expr.find((e) => e.counter)!.counter!.packets;
  return { all: count('all'), marked: count('marked'), passMarked: count('passMarked') };
}

interface Report {
  stats: Record<string, number>;
  packets: Record<string, number>;
  attached: boolean;
}

describe.skipIf(skipReason !== null)(`fast path on a namespace pair${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let net: Topology;
  let member: Host;
  let client: Host;
  const ports = pickPorts();

  beforeAll(async () => {
    net = await Topology.create();
    const lan = await net.addSegment('lan');
    member = await net.addHost('member', [{ segment: lan, address: `${MEMBER}/24`, ifname: 'fp0' }]);
    client = await net.addHost('client', [{ segment: lan, address: `${CLIENT}/24`, ifname: 'cl0' }]);
    await member.execOk(['nft', '-f', '-'], {
      input: `table ip gwcfpt {
  chain pre {
    type filter hook prerouting priority -300;
    udp dport ${PORT} counter comment "all"
    udp dport ${PORT} meta mark & ${USER_MARK} == ${USER_MARK} counter comment "marked"
    udp dport ${PORT} meta mark & ${PASS_MARK} == ${PASS_MARK} counter comment "passMarked"
  }
}
`,
    });
  }, 30_000);
  afterAll(async () => {
    await net?.destroy();
  }, 30_000);

  for (const mode of ['tcx', 'cls_bpf'] as const) {
    it(`${mode}: owned unit passes (counted in the kernel), another member's is dropped, a held one goes up marked; detach restores the path`, async () => {
      const child = startChild(member);
      try {
        await child.rpc('open', { opts: { clusterIps: [MEMBER], userMark: USER_MARK, passMark: PASS_MARK } });
        await child.rpc('setUnitActions', { units: [ports.units.pass], action: UnitAction.PASS, ownerSlot: 1 });
        await child.rpc('setUnitActions', { units: [ports.units.drop], action: UnitAction.DROP, ownerSlot: 2 });
        await child.rpc('attach', { ifname: 'fp0', mode });
        const before = await nftCounts(member);
        await send(client, [ports.pass, ports.drop, ports.toUser]);
        const report = await waitFor(
          async () => {
            const r = await child.rpc<Report>('report');
            return r.stats.passed >= COUNT && r.stats.dropped >= COUNT && r.stats.toUser >= COUNT ? r : null;
          },
          { timeoutMs: 5_000, what: 'the kernel counters' },
        );
        expect(report.attached).toBe(true);
        expect(report.packets).toEqual({ [ports.units.pass]: COUNT });
        expect(report.stats).toMatchObject({ passed: COUNT, dropped: COUNT, toUser: COUNT, cluster: 3 * COUNT, invalid: 0 });
        const after = await nftCounts(member);
        expect(after.all - before.all).toBe(2 * COUNT); // the dropped unit's never reached netfilter
        expect(after.marked - before.marked).toBe(COUNT); // the held unit's, marked for NFQUEUE
        expect(after.passMarked - before.passMarked).toBe(COUNT); // the owned unit's, marked as passed

        await child.rpc('detach');
        const filters = await member.execOk(['tc', 'filter', 'show', 'dev', 'fp0', 'ingress']);
        expect(filters.stdout.trim()).toBe('');
        if (mode === 'cls_bpf') expect((await member.execOk(['tc', 'qdisc', 'show', 'dev', 'fp0'])).stdout).not.toMatch(/clsact/);
        await send(client, [ports.drop]);
        await waitFor(async () => (await nftCounts(member)).all - after.all === COUNT, { timeoutMs: 5_000, what: 'packets after detach' });
        expect((await child.rpc<Report>('report')).stats.dropped).toBe(COUNT);
      } finally {
        child.proc.stdin!.end();
        await new Promise((r) => (child.proc.exitCode !== null ? r(null) : child.proc.once('exit', r)));
      }
    }, 30_000);
  }

  it('tcx: the kernel detaches the program when its process dies (SIGKILL)', async () => {
    const child = startChild(member);
    await child.rpc('open', { opts: { clusterIps: [MEMBER] } });
    await child.rpc('setUnitActions', { units: [ports.units.drop], action: UnitAction.DROP, ownerSlot: 2 });
    await child.rpc('attach', { ifname: 'fp0', mode: 'tcx' });
    const before = await nftCounts(member);
    await send(client, [ports.drop]);
    await waitFor(async () => (await child.rpc<Report>('report')).stats.dropped === COUNT, { timeoutMs: 5_000, what: 'drops while attached' });
    const exited = new Promise((r) => child.proc.once('exit', r));
    child.proc.kill('SIGKILL');
    await exited;
    await send(client, [ports.drop]);
    await waitFor(async () => (await nftCounts(member)).all - before.all === COUNT, { timeoutMs: 5_000, what: 'packets after the owner died' });
  }, 30_000);
});
