import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PREFIX_ROOT,
  Topology,
  listNamespaces,
  liveTopologies,
  netnsSupported,
  waitFor,
  withTopology,
  type Host,
  type Segment,
} from './netns.mjs';

const support = netnsSupported();
const FIXTURE = fileURLToPath(new URL('./fixtures/child-topology.mjs', import.meta.url));

/** Alive = exists and is not a zombie. */
function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

const withPrefix = (prefix: string) => listNamespaces().filter((n) => n.startsWith(prefix));

/** Test-side safety net: whatever a failed assertion left behind is removed anyway. */
function sweep(prefix: string): void {
  if (!prefix.startsWith(PREFIX_ROOT) || !prefix.endsWith('-')) return;
  for (const ns of withPrefix(prefix)) {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 2_000 }).split(/\s+/).filter(Boolean);
      for (const p of pids) try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
      execFileSync('ip', ['netns', 'del', ns], { timeout: 2_000, stdio: 'ignore' });
    } catch { /* best effort */ }
  }
}

/** ping loss percentage from `ping -q` output. */
function lossPercent(out: string): number {
  const m = /([\d.]+)% packet loss/.exec(out);
  if (!m) throw new Error(`no loss figure in ping output: ${out}`);
  return Number(m[1]);
}

describe.skipIf(!support.ok)('netns harness', () => {
  describe('three hosts on one switch', () => {
    let net: Topology;
    let lan: Segment;
    let m1: Host;
    let m2: Host;
    let m3: Host;

    beforeAll(async () => {
      net = await Topology.create();
      lan = await net.addSegment('lan');
      [m1, m2, m3] = await Promise.all([
        net.addHost('m1', [{ segment: lan, address: '192.0.2.11/24', ifname: 'eth0' }]),
        net.addHost('m2', [{ segment: lan, address: '192.0.2.12/24', ifname: 'eth0' }]),
        net.addHost('m3', [{ segment: lan, address: '192.0.2.13/24', ifname: 'eth0' }]),
      ]);
    });

    afterAll(async () => {
      await net?.destroy();
    });

    afterEach(async () => {
      if (net && !net.destroyed) {
        await net.healAll();
        for (const h of net.hosts) await net.setLoss(h, 'eth0', 0);
      }
    });

    it('creates prefixed namespaces, and nothing in the root namespace', async () => {
      expect(net.prefix).toMatch(/^gwt[a-z0-9]+-$/);
      expect(withPrefix(net.prefix).sort()).toEqual([net.switchNs, m1.nsName, m2.nsName, m3.nsName].sort());
      // The bridge and the switch-side ports live in the switch namespace...
      const sw = execFileSync('ip', ['-n', net.switchNs, '-o', 'link', 'show', 'master', lan.bridge], { encoding: 'utf8' });
      for (const h of [m1, m2, m3]) expect(sw).toContain(`${h.port('eth0')}@`);
      // ...and the root namespace has none of the topology's addresses or links. (Note: on this
      // machine the root namespace itself sits in 192.0.2.0/24, so only our exact addresses are checked.)
      const rootAddrs = execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' });
      for (const h of [m1, m2, m3]) expect(rootAddrs).not.toContain(`${h.address()}/`);
      const rootLinks = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
      expect(rootLinks).not.toContain(net.prefix);
      expect(m1.address('eth0')).toBe('192.0.2.11');
      expect(m1.cidr()).toBe('192.0.2.11/24');
    });

    it('has lo up, no IPv6 and no default route in a host', async () => {
      const lo = await m1.execOk(['ip', '-o', 'link', 'show', 'lo']);
      expect(lo.stdout).toMatch(/[<,]UP[,>]/);
      expect((await m1.execOk(['ip', '-6', '-o', 'addr'])).stdout.trim()).toBe('');
      const routes = (await m1.execOk(['ip', 'route'])).stdout.trim().split('\n');
      expect(routes).toEqual([expect.stringMatching(/^192\.0\.2\.0\/24 dev eth0 /)]);
    });

    it('pings between two hosts', async () => {
      const r = await m1.exec(['ping', '-c', '1', '-W', '1', m2.address()]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(await m2.ping(m3)).toBe(true);
    });

    it('100% loss stops the ping, 0% restores it', async () => {
      await net.setLoss(m2, 'eth0', 100);
      expect(await m1.ping(m2)).toBe(false);
      expect(await m1.ping(m3)).toBe(true); // only m2 is affected
      await net.setLoss(m2, 'eth0', 0);
      expect(net.rules()[m2.nsName]).not.toContain('drop');
      expect(await m1.ping(m2)).toBe(true);
    });

    it('100% loss in one direction only', async () => {
      await m2.setLoss('eth0', 100, { direction: 'out' });
      expect(net.rules()[m2.nsName]).toContain('oifname "eth0" drop');
      expect(net.rules()[m2.nsName]).not.toContain('iifname');
      expect(await m1.ping(m2)).toBe(false); // replies are dropped
      await m2.setLoss('eth0', 0, { direction: 'out' });
      expect(await m1.ping(m2)).toBe(true);
    });

    it('partial loss drops roughly the requested share', async () => {
      await net.setLoss(m2, 'eth0', 30, { direction: 'in' });
      const r = await m1.exec(['ping', '-n', '-q', '-c', '300', '-i', '0.005', '-W', '1', m2.address()], { timeoutMs: 15_000 });
      const loss = lossPercent(r.stdout);
      // Binomial(300, 0.3): sd 2.6 points, so 15..45 is ~5.7 sd wide on either side.
      expect(loss).toBeGreaterThan(15);
      expect(loss).toBeLessThan(45);
    });

    it('partition cuts exactly the two hosts apart, heal restores it', async () => {
      await net.partition(m1, m2);
      expect(await m1.ping(m2)).toBe(false);
      expect(await m2.ping(m1)).toBe(false);
      expect(await m1.ping(m3)).toBe(true);
      expect(await m3.ping(m2)).toBe(true);
      await net.heal(m1, m2);
      expect(net.rules()[net.switchNs]).not.toContain('drop');
      // Neighbour entries that went FAILED during the partition may cost a retry.
      await waitFor(() => m1.ping(m2), { timeoutMs: 10_000, intervalMs: 100, what: 'm1 -> m2 after heal' });
      await waitFor(() => m2.ping(m1), { timeoutMs: 10_000, intervalMs: 100, what: 'm2 -> m1 after heal' });
    });

    it('partitions groups', async () => {
      await net.partition([m1], [m2, m3]);
      expect(await m1.ping(m2)).toBe(false);
      expect(await m1.ping(m3)).toBe(false);
      expect(await m2.ping(m3)).toBe(true);
      await net.heal(m1, [m2, m3]);
      await waitFor(() => m1.ping(m3), { timeoutMs: 10_000, what: 'm1 -> m3 after heal' });
      await waitFor(() => m1.ping(m2), { timeoutMs: 10_000, what: 'm1 -> m2 after heal' });
    });

    it('one-way partition only drops one direction', async () => {
      await net.partition(m1, m2, { oneWay: true });
      const sw = net.rules()[net.switchNs]!;
      expect(sw).toContain(`iifname "${m1.port()}" oifname "${m2.port()}" drop`);
      expect(sw).not.toContain(`iifname "${m2.port()}" oifname "${m1.port()}" drop`);
      expect(await m1.ping(m2)).toBe(false);
      // m2 -> m1 requests pass, so m1 learns m2 and answers, but the reply is m1 -> m2: dropped.
      expect(await m2.ping(m1)).toBe(false);
      await net.healAll();
      await waitFor(() => m1.ping(m2), { timeoutMs: 10_000, what: 'm1 -> m2 after healAll' });
    });

    it('exec() timeouts kill the command', async () => {
      const t0 = Date.now();
      const r = await m1.exec(['sleep', '30'], { timeoutMs: 300 });
      expect(r.timedOut).toBe(true);
      expect(r.code).toBeNull();
      expect(Date.now() - t0).toBeLessThan(5_000);
      await expect(m1.execOk(['false'])).rejects.toThrow(/exit code 1/);
    });

    it('refuses addresses outside TEST-NET without creating anything', async () => {
      const before = withPrefix(net.prefix);
      await expect(net.addHost('bad1', [{ segment: lan, address: '10.0.0.1/24' }])).rejects.toThrow(/TEST-NET/);
      await expect(net.addHost('bad2', [{ segment: lan, address: '192.0.2.50/16' }])).rejects.toThrow(/reaches outside/);
      await expect(m1.ping('8.8.8.8')).rejects.toThrow(/TEST-NET/);
      await expect(m1.addAddress('eth0', '172.16.0.1/24')).rejects.toThrow(/TEST-NET/);
      expect(withPrefix(net.prefix)).toEqual(before);
    });

    it('adds and removes extra addresses', async () => {
      await m3.addAddress('eth0', '192.0.2.113/24');
      expect(await m1.ping('192.0.2.113')).toBe(true);
      await m3.delAddress('eth0', '192.0.2.113/24');
      expect(await m1.ping('192.0.2.113')).toBe(false);
    });
  });

  describe('waitFor', () => {
    it('returns the first truthy value', async () => {
      let n = 0;
      await expect(waitFor(() => (++n >= 3 ? `done after ${n}` : false), { timeoutMs: 2_000, intervalMs: 10 })).resolves.toBe('done after 3');
    });

    it('throws an error naming what it waited for, bounded in attempts and time', async () => {
      let calls = 0;
      const t0 = Date.now();
      await expect(
        waitFor(() => { calls++; throw new Error('not yet'); }, { timeoutMs: 300, intervalMs: 50, what: 'the moon' }),
      ).rejects.toThrow(/waiting for the moon.*last error: not yet/);
      expect(Date.now() - t0).toBeLessThan(1_500);
      expect(calls).toBeLessThanOrEqual(300 / 50 + 2);
    });

    it('gives up on a check that hangs', async () => {
      await expect(waitFor(() => new Promise(() => {}), { timeoutMs: 200, what: 'a hung check' })).rejects.toThrow(/a hung check/);
    });
  });

  describe('destroy', () => {
    it('kills processes, deletes namespaces and the temp dir; is idempotent', async () => {
      const net = await Topology.create();
      try {
        const seg = await net.addSegment('s', { bridgeName: 'brs' });
        const h = await net.addHost('h', [{ segment: seg, address: '203.0.113.7/24' }]);
        const child = h.spawn('sleep', ['1000'], { stdio: 'ignore' });
        const exited = new Promise<unknown>((r) => child.once('exit', (code, sig) => r(sig ?? code)));
        const escaped = Number((await h.execOk(['sh', '-c', 'setsid sleep 1001 </dev/null >/dev/null 2>&1 & echo $!'])).stdout.trim());
        const dir = net.tmpDir();
        writeFileSync(join(dir, 'f'), 'x');
        expect(pidAlive(child.pid!)).toBe(true);
        expect(pidAlive(escaped)).toBe(true);
        expect(withPrefix(net.prefix)).toHaveLength(2);
        expect(liveTopologies()).toContain(net);
        const watchdog = net.watchdogPid!;
        expect(pidAlive(watchdog)).toBe(true);

        await net.destroy();

        expect(withPrefix(net.prefix)).toEqual([]);
        expect(listNamespaces().some((n) => n.startsWith(net.prefix))).toBe(false);
        expect(await exited).toBe('SIGTERM');
        await waitFor(() => !pidAlive(escaped), { timeoutMs: 2_000, what: 'the escaped process to die' });
        expect(existsSync(dir)).toBe(false);
        expect(liveTopologies()).not.toContain(net);
        await waitFor(() => !pidAlive(watchdog), { timeoutMs: 5_000, what: 'the watchdog to exit' });
        await expect(net.destroy()).resolves.toBeUndefined(); // idempotent
        await expect(h.exec(['true'])).rejects.toThrow(/destroyed/);
      } finally {
        await net.destroy().catch(() => {});
        sweep(net.prefix);
      }
    });

    it('SIGKILLs processes that ignore SIGTERM after the grace period', async () => {
      const net = await Topology.create({ killGraceMs: 300 });
      try {
        const seg = await net.addSegment('s');
        const h = await net.addHost('h', [{ segment: seg, address: '203.0.113.8/24' }]);
        const child = h.spawn('sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 1; done'], { stdio: ['ignore', 'pipe', 'ignore'] });
        await new Promise((r) => child.stdout!.once('data', r));
        const exited = new Promise<unknown>((r) => child.once('exit', (code, sig) => r(sig ?? code)));
        const t0 = Date.now();
        await net.destroy();
        expect(await exited).toBe('SIGKILL');
        expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
        expect(withPrefix(net.prefix)).toEqual([]);
      } finally {
        await net.destroy().catch(() => {});
        sweep(net.prefix);
      }
    });

    it('withTopology destroys the topology when the callback throws', async () => {
      let prefix = '';
      await expect(
        withTopology(async (net) => {
          prefix = net.prefix;
          await net.addSegment('s');
          expect(withPrefix(prefix)).toHaveLength(1);
          throw new Error('test body failed');
        }),
      ).rejects.toThrow('test body failed');
      expect(prefix).not.toBe('');
      expect(withPrefix(prefix)).toEqual([]);
    });
  });

  describe('a process that dies with a live topology leaves nothing behind', () => {
    type Report = { prefix: string; namespaces: string[]; pids: number[]; watchdogPid?: number; tmpDir: string };
    const children: ChildProcess[] = [];
    const prefixes: string[] = [];

    afterEach(async () => {
      // Let a child that is still cleaning up finish (bounded) before the hard kill.
      for (const c of children.splice(0)) {
        if (c.exitCode === null && c.signalCode === null) {
          await waitFor(() => c.exitCode !== null || c.signalCode !== null, { timeoutMs: 3_000, what: 'child exit' }).catch(() => {});
          if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
        }
      }
      for (const p of prefixes.splice(0)) {
        sweep(p);
        rmSync(join(tmpdir(), `${p}files`), { recursive: true, force: true });
      }
    });

    async function startChild(mode: string, watchdog: boolean) {
      const child = spawn(process.execPath, [FIXTURE, mode], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, GWT_TEST_NO_WATCHDOG: watchdog ? '0' : '1' },
      });
      children.push(child);
      let out = '';
      let err = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
        child.once('exit', (code, signal) => r({ code, signal })));
      const line = await waitFor(() => {
        if (child.exitCode !== null) throw new Error(`child exited early: ${err}`);
        return out.includes('\n') ? out.slice(0, out.indexOf('\n')) : undefined;
      }, { timeoutMs: 20_000, intervalMs: 20, what: `child (${mode}) to report its topology` });
      const report = JSON.parse(line) as Report;
      prefixes.push(report.prefix);
      expect(withPrefix(report.prefix).sort()).toEqual([...report.namespaces].sort());
      for (const pid of report.pids) expect(pidAlive(pid)).toBe(true);
      expect(existsSync(report.tmpDir)).toBe(true);
      return { child, report, exit, stderr: () => err };
    }

    async function expectNothingLeft(report: Report, timeoutMs: number) {
      await waitFor(() => withPrefix(report.prefix).length === 0, { timeoutMs, intervalMs: 25, what: `namespaces ${report.prefix}* to disappear` });
      await waitFor(() => report.pids.every((p) => !pidAlive(p)), { timeoutMs: 2_000, what: 'the processes in the namespaces to die' });
      await waitFor(() => !existsSync(report.tmpDir), { timeoutMs, what: 'the temp dir to disappear' });
      if (report.watchdogPid) await waitFor(() => !pidAlive(report.watchdogPid!), { timeoutMs: 5_000, what: 'the watchdog to exit' });
    }

    // In-process cleanup (watchdog disabled, so these prove the exit/signal handlers alone suffice).
    it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('%s: cleaned up by the signal handler, which re-raises the signal', async (sig) => {
      const { child, report, exit } = await startChild('wait', false);
      expect(report.watchdogPid).toBeUndefined();
      child.kill(sig);
      const { signal } = await exit;
      expect(signal).toBe(sig); // default behaviour preserved: the process still dies of the signal
      expect(withPrefix(report.prefix)).toEqual([]); // already gone when the process is gone
      await expectNothingLeft(report, 1_000);
    });

    it.each([
      ['throw', 1],
      ['reject', 1],
      ['exit', 3],
    ] as const)('%s: cleaned up by the exit handler', async (mode, expectedCode) => {
      const { child, report, exit, stderr } = await startChild(mode, false);
      child.stdin!.end('go\n');
      const { code } = await exit;
      expect(code, stderr()).toBe(expectedCode);
      expect(withPrefix(report.prefix)).toEqual([]);
      await expectNothingLeft(report, 1_000);
    });

    it('SIGKILL without watchdog: scripts/netns-sweep.sh removes the leftovers, and spares live runs', async () => {
      const SWEEP = fileURLToPath(new URL('../../scripts/netns-sweep.sh', import.meta.url));
      const live = await Topology.create();
      try {
        const { child, report, exit } = await startChild('wait', false);
        child.kill('SIGKILL');
        await exit;
        expect(withPrefix(report.prefix).length).toBeGreaterThan(0); // nothing cleaned up: hard kill
        // A live run is skipped even when addressed by its exact prefix.
        const spared = execFileSync('bash', [SWEEP, live.prefix], { encoding: 'utf8', timeout: 20_000 });
        expect(spared).toMatch(/skipping namespace/);
        expect(withPrefix(live.prefix)).toEqual([live.switchNs]);
        // The dead run's leftovers go.
        const out = execFileSync('bash', [SWEEP, report.prefix], { encoding: 'utf8', timeout: 20_000 });
        expect(out).toContain(`deleted namespace ${report.prefix}`);
        await expectNothingLeft(report, 2_000);
        expect(() => execFileSync('bash', [SWEEP, 'notgwt'], { stdio: 'pipe' })).toThrow();
      } finally {
        await live.destroy();
      }
    });

    it('SIGKILL: cleaned up by the watchdog', async () => {
      const { child, report, exit } = await startChild('wait', true);
      expect(report.watchdogPid).toBeGreaterThan(0);
      expect(pidAlive(report.watchdogPid!)).toBe(true);
      child.kill('SIGKILL');
      expect((await exit).signal).toBe('SIGKILL');
      await expectNothingLeft(report, 10_000);
    });
  });
});
