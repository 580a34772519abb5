// The Debian packages as an appliance gets them: built from this checkout (scripts/package/build-deb.mjs,
// or taken from GWC_DEB_DIR), unpacked with dpkg -x into an empty directory, and a three-member cluster
// run FROM THE UNPACKED FILES (their /usr/bin wrappers and module tree, nothing of the checkout) in network
// namespaces, each member as an unprivileged user with the unit's capabilities (CAP_NET_ADMIN, CAP_NET_RAW,
// CAP_BPF, CAP_PERFMON) and its real-time limit (LimitRTPRIO) only, as the unit runs it. The members form a cluster and flows to the cluster IP pass.
//
// Not a clean Debian root: no package manager runs the maintainer scripts here (see appliance/README.md,
// "Package checks"); the files and their dependencies on this host's Node.js and libraries are what runs.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/netns.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
// Every Debian system has it; the package's own user (gwcluster) is made by its postinst, which does not run here.
const SERVICE_USER = { name: 'nobody', uid: 65534 };
// CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_PERFMON (38), CAP_BPF (39).
const NET_CAPS = (1n << 12n) | (1n << 13n) | (1n << 38n) | (1n << 39n);

/** The unit's LimitRTPRIO= (the real-time priority the service user may take). */
const unitRtprio = (unit: string) => Number(/^LimitRTPRIO=(\d+)$/m.exec(unit)?.[1] ?? NaN);

/** Scheduling policy and real-time priority of every thread of a process (/proc/PID/task/TID/stat fields 41 and 40). */
function threadScheduling(pid: number): { tid: number; comm: string; policy: number; rtPriority: number }[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const rest = stat.slice(close + 2).split(' '); // from field 3 (state) on
    return { tid: Number(tid), comm: stat.slice(stat.indexOf('(') + 1, close), rtPriority: Number(rest[40 - 3]), policy: Number(rest[41 - 3]) };
  });
}
const SCHED_FIFO = 1;
const canRaiseRtprio = spawnSync('prlimit', ['--rtprio=10:10', 'true']).status === 0;
/** Each member's node counter liveness.realtime and its metric gwcluster_liveness_realtime, in one process in the operator's namespace. */
async function realtimeReports(ips: readonly string[]): Promise<Record<string, { counter: number | undefined; metric: string | undefined }>> {
  const script = `const ips=${JSON.stringify(ips)};const h={headers:{authorization:'Bearer ${fixture.TOKEN}'}};const out={};
for(const ip of ips){const c=await (await fetch('http://'+ip+':7401/v1/counters',h)).json();const m=await (await fetch('http://'+ip+':7401/metrics',h)).text();
out[ip]={counter:c.counters['node.liveness.realtime'],metric:/^gwcluster_liveness_realtime\\{[^}]*\\} (\\S+)$/m.exec(m)?.[1]};}
process.stdout.write(JSON.stringify(out));`;
  const r = await f!.ops.exec([process.execPath, '--input-type=module', '-e', script]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let work: string;
let debs: string;
let prefix: string;
let fixture: typeof import('../e2e/cluster-fixture.mjs');
let f: InstanceType<typeof import('../e2e/cluster-fixture.mjs').ClusterFixture> | undefined;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gwc-pkgtest-'));
  chmodSync(work, 0o755);
  debs = process.env.GWC_DEB_DIR || join(work, 'debs');
  if (!process.env.GWC_DEB_DIR) sh(process.execPath, [join(ROOT, 'scripts/package/build-deb.mjs'), '--out', debs, '--no-lintian', '--fast']);
  prefix = join(work, 'root');
  for (const deb of readdirSync(debs).filter((n) => n.endsWith('.deb'))) sh('dpkg-deb', ['-x', join(debs, deb), prefix]);
  chmodSync(prefix, 0o755);
}, 600_000);

afterAll(async () => {
  await f?.destroy();
  rmSync(work, { recursive: true, force: true });
});

const field = (deb: string, name: string) => sh('dpkg-deb', ['-f', join(debs, readdirSync(debs).find((n) => n.startsWith(`${deb}_`))!), name]).trim();

describe('the packages', () => {
  it('gwctl is for every architecture and needs only Node.js; gwcluster needs gwctl of its version and the run-time libraries and commands', () => {
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
    expect(field('gwctl', 'Architecture')).toBe('all');
    expect(field('gwctl', 'Depends')).toBe('nodejs (>= 20.17)');
    const depends = field('gwcluster', 'Depends').split(/,\s*/).map((d) => d.split(' ')[0]);
    expect(field('gwcluster', 'Depends')).toContain(`gwctl (= ${version})`);
    for (const d of ['nodejs', 'libpcap0.8', 'libnetfilter-queue1', 'libbpf1', 'iproute2', 'nftables', 'iptables', 'iputils-arping', 'adduser']) expect(depends, d).toContain(d);
  });

  it('install the commands, the unit, the man pages, the schema and the bash completion; nothing points back to the build tree', () => {
    for (const p of [
      'usr/bin/gwctl',
      'usr/bin/gwclusterd',
      'lib/systemd/system/gwclusterd.service',
      'usr/share/man/man8/gwclusterd.8.gz',
      'usr/share/man/man1/gwctl.1.gz',
      'usr/share/man/man5/member.json.5.gz',
      'usr/share/gwcluster/member-config.schema.json',
      'usr/share/bash-completion/completions/gwctl',
      'usr/lib/gwcluster/node_modules/@gwcluster/native-addon/build/Release/gwcluster_filter.node',
    ]) {
      expect(existsSync(join(prefix, p)), p).toBe(true);
    }
    expect(sh('find', [prefix, '-type', 'l'])).toBe('');
    // No module refers to the checkout it was built from (grep exits 1: nothing found).
    const refs = spawnSync('grep', ['-rl', ROOT, prefix, '--include=*.js', '--include=*.json'], { encoding: 'utf8' });
    expect(refs.stdout).toBe('');
    expect(refs.status).toBe(1);
  });

  it('the unit runs the member as gwcluster with CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_PERFMON, its state in /var/lib/gwcluster, never giving up restarting', () => {
    const unit = readFileSync(join(prefix, 'lib/systemd/system/gwclusterd.service'), 'utf8');
    for (const line of ['User=gwcluster', 'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON', 'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON', 'StateDirectory=gwcluster', 'ExecReload=/bin/kill -HUP $MAINPID', 'Restart=on-failure', 'StartLimitIntervalSec=0', 'Type=notify', 'NotifyAccess=main', 'WatchdogSec=20s']) {
      expect(unit.split('\n'), line).toContain(line);
    }
    // The heartbeat thread's SCHED_FIFO by RLIMIT_RTPRIO, not by CAP_SYS_NICE; RestrictRealtime=yes would refuse it.
    expect(unit.split('\n')).toContain('RestrictRealtime=no');
    expect(unitRtprio(unit)).toBeGreaterThanOrEqual(10);
    expect(unit).not.toMatch(/^ReadWritePaths=/m);
    expect(unit).not.toMatch(/^RestartPreventExitStatus=/m);
  });
});

describe('a three-member cluster from the unpacked files, members unprivileged', () => {
  beforeAll(async () => {
    process.env.GWCLUSTER_PREFIX = prefix;
    process.env.GWCLUSTER_RUN_AS = SERVICE_USER.name;
    if (canRaiseRtprio) process.env.GWCLUSTER_RUN_RTPRIO = String(unitRtprio(readFileSync(join(prefix, 'lib/systemd/system/gwclusterd.service'), 'utf8')));
    fixture = await import('../e2e/cluster-fixture.mjs');
    expect(fixture.GWCLUSTERD_CMD).toContain(join(prefix, 'usr/bin/gwclusterd'));
    f = await fixture.ClusterFixture.create({ members: 3, layout: 'gateway', clients: 1 });
    f.startMonitor(100);
    f.startAll();
    await f.waitForView((v) => fixture.balanced(v, M), { timeoutMs: 45_000, what: 'a balanced cluster' });
  }, 180_000);

  afterAll(async () => {
    await f?.destroy();
    f = undefined;
  });

  it('every member runs the packaged gwclusterd as the service user with only CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_PERFMON', () => {
    for (const ip of M) {
      const pid = f!.procs.get(ip)!.pid!;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(new RegExp(`^Uid:\\s+${SERVICE_USER.uid}\\s+${SERVICE_USER.uid}\\s`, 'm'));
      for (const set of ['CapEff', 'CapBnd', 'CapAmb']) expect(BigInt(`0x${status.match(new RegExp(`^${set}:\\s+([0-9a-f]+)`, 'm'))![1]}`), `${ip} ${set}`).toBe(NET_CAPS);
      // node runs the unpacked module tree (the wrapper exec'd it: same process).
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).map((a) => resolve(a))).toContain(join(prefix, 'usr/lib/gwcluster/node_modules/@gwcluster/daemon/bin/gwclusterd.js'));
    }
  });

  // systemd applies LimitRTPRIO= with CAP_SYS_RESOURCE; where this test's root lacks it (a container), the
  // members run with the inherited RLIMIT_RTPRIO 0 instead, and what is checked is that each says so.
  it.runIf(canRaiseRtprio)("with the unit's LimitRTPRIO and no CAP_SYS_NICE, each member's heartbeat thread runs SCHED_FIFO at liveness.realtimePriority", async () => {
    const reports = await realtimeReports(M);
    for (const ip of M) {
      const pid = f!.procs.get(ip)!.pid!;
      expect(readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(new RegExp(`^Max realtime priority\\s+${process.env.GWCLUSTER_RUN_RTPRIO}\\s+${process.env.GWCLUSTER_RUN_RTPRIO}\\s`, 'm'));
      expect(threadScheduling(pid).filter((t) => t.policy === SCHED_FIFO).map((t) => t.rtPriority), `${ip}: real-time threads`).toEqual([10]);
      expect(reports[ip], `${ip}: node.liveness.realtime and gwcluster_liveness_realtime`).toEqual({ counter: 1, metric: '1' });
      expect(f!.logs.get(ip)!.some((l) => /real-time priority \d+ refused/.test(String(l.msg))), `${ip}: no refusal logged`).toBe(false);
    }
  });

  it.runIf(!canRaiseRtprio)('without RLIMIT_RTPRIO (this host cannot raise it) each member runs its heartbeat thread with normal scheduling, logs why and what the unit needs, and reports liveness.realtime 0', async () => {
    const reports = await realtimeReports(M);
    for (const ip of M) {
      const pid = f!.procs.get(ip)!.pid!;
      expect(readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(/^Max realtime priority\s+0\s+0\s/m);
      expect(threadScheduling(pid).filter((t) => t.policy === SCHED_FIFO), `${ip}: real-time threads`).toEqual([]);
      expect(reports[ip], `${ip}: node.liveness.realtime and gwcluster_liveness_realtime`).toEqual({ counter: 0, metric: '0' });
      const refusal = f!.logs.get(ip)!.find((l) => /^fast liveness: real-time priority 10 refused/.test(String(l.msg)));
      expect(refusal, `${ip}: the refusal logged`).toBeDefined();
      expect(refusal!.level).toBe(40);
      expect(refusal!.msg).toContain('LimitRTPRIO=10 and RestrictRealtime=no');
      expect(refusal!.rlimitRtprio).toBe(0);
    }
  });

  it('with those capabilities the packaged members decide packets in the kernel (dataplane.path auto)', async () => {
    for (const ip of M) {
      const r = await f!.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` });
      expect(r.code, r.stderr).toBe(0);
      const counters = JSON.parse(r.stdout).cluster.counters as Record<string, number>;
      expect(Object.keys(counters).filter((k) => k.startsWith('node.dataplane.engine.kernel.')).length, `${ip}: kernel path counters`).toBeGreaterThan(0);
    }
  });

  it('gwctl from the package shows the three members, and TCP and UDP flows to the cluster IP pass', async () => {
    const st = await f!.gwctl(['status']);
    expect(st.code, st.stderr).toBe(0);
    for (const ip of M) expect(st.stdout).toContain(ip);
    const echos = f!.members.map((m) => f!.startEcho(m.host, m.name));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await f!.traffic(f!.clients![0]!, ['--target', fixture.CLUSTER_IP, '--tcp-port', '7000', '--udp-port', '7001', '--flows', '30', '--bytes', '5000', '--timeout-ms', '8000']);
      expect(r.tcp).toMatchObject({ ok: 30, failed: 0 });
      expect(r.udp).toMatchObject({ ok: 30, failed: 0 });
    } finally {
      await Promise.all(echos.map((e) => e.stop()));
    }
  }, 120_000);
});

// systemd itself: each member a container booted by systemd-nspawn from this host's root (an overlay, so
// the host is not written) inside the member's network namespace; the packages installed with dpkg -i
// (maintainer scripts: the user, /etc/gwcluster, the enabled unit), the personality put in /etc/gwcluster,
// `systemctl start gwclusterd`. systemd runs the unit as written: its user, capabilities, limits,
// sandboxing, Type=notify and watchdog.
// 40-80 s more on the project's 2-core test host (by its load), at or over a CI file's budget: run with
// GWC_TEST_SYSTEMD=1 (needs systemd-nspawn, Debian package systemd-container).
const canBootSystemd = process.env.GWC_TEST_SYSTEMD === '1' && process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v systemd-nspawn && command -v nsenter']).status === 0;

describe.runIf(canBootSystemd)('three members booted by systemd from the packaged unit (systemd-nspawn, one container per member namespace)', () => {
  interface Container { ip: string; dir: string; nspawn: ChildProcess; leader: number }
  const containers: Container[] = [];
  let g: InstanceType<typeof import('../e2e/cluster-fixture.mjs').ClusterFixture> | undefined;
  const inside = (c: Container, script: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const p = spawn('nsenter', ['-t', String(c.leader), '-a', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => done({ code, stdout, stderr }));
    });
  const show = async (c: Container) =>
    Object.fromEntries((await inside(c, 'systemctl show -p ActiveState,SubState,Type,StatusText,NRestarts,MainPID,Result gwclusterd')).stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

  beforeAll(async () => {
    const t0 = Date.now();
    g = await fixture.ClusterFixture.create({ members: 3 });
    g.startMonitor(100);
    for (const m of g.members) {
      const dir = mkdtempSync(join('/dev/shm', 'gwc-pkg-nspawn-'));
      for (const d of ['upper', 'work', 'root']) mkdirSync(join(dir, d));
      sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=/,upperdir=${dir}/upper,workdir=${dir}/work`, join(dir, 'root')]);
      const root = join(dir, 'root');
      // This host's enabled services that have no business in a member container.
      for (const unit of ['conntrackd', 'keepalived', 'postgresql', 'prometheus']) rmSync(join(root, 'etc/systemd/system/multi-user.target.wants', `${unit}.service`), { force: true });
      rmSync(join(root, 'var/lib/man-db/auto-update'), { force: true }); // no man-db trigger run at dpkg -i
      const stage = join(root, 'root/gwc');
      mkdirSync(join(stage, 'personality'), { recursive: true });
      for (const deb of readdirSync(debs).filter((n) => n.endsWith('.deb'))) cpSync(join(debs, deb), join(stage, deb));
      cpSync(dirname(m.config), join(stage, 'personality'), { recursive: true });
      const nspawn = spawn(
        'systemd-nspawn',
        ['--quiet', '--register=no', '--keep-unit', `--network-namespace-path=/run/netns/${m.host.nsName}`, '--capability=CAP_NET_ADMIN,CAP_BPF,CAP_PERFMON', '-D', root, '-M', `gwc-${process.pid}-${m.name}`, '--console=passive', '-b'],
        { stdio: 'ignore' },
      );
      containers.push({ ip: m.ip, dir, nspawn, leader: 0 });
    }
    for (const c of containers) {
      c.leader = await waitFor(() => Number(spawnSync('pgrep', ['-P', String(c.nspawn.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0]) || undefined, { timeoutMs: 20_000, what: `${c.ip}: the container's init` });
      await waitFor(async () => /^(running|degraded)$/m.test((await inside(c, 'systemctl is-system-running')).stdout), { timeoutMs: 90_000, intervalMs: 500, what: `${c.ip}: systemd up` });
    }
    await Promise.all(
      containers.map(async (c) => {
        const r = await inside(
          c,
          'set -e; dpkg -i /root/gwc/*.deb >/dev/null; cp /root/gwc/personality/* /etc/gwcluster/; chown root:gwcluster /etc/gwcluster/*; chown gwcluster:gwcluster /etc/gwcluster/member.key; chmod 640 /etc/gwcluster/*; chmod 600 /etc/gwcluster/member.key; systemctl start gwclusterd',
        );
        expect(r.code, `${c.ip}: ${r.stderr}`).toBe(0);
      }),
    );
    console.log(`systemd containers: namespaces, boot, dpkg -i and systemctl start of three members in ${Date.now() - t0} ms`);
  }, 300_000);

  afterAll(async () => {
    for (const c of containers) c.nspawn.kill('SIGTERM');
    for (const c of containers) {
      if (c.nspawn.exitCode === null && c.nspawn.signalCode === null) {
        const exited = once(c.nspawn, 'exit');
        const timer = setTimeout(() => c.nspawn.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      spawnSync('umount', [join(c.dir, 'root')]);
      rmSync(c.dir, { recursive: true, force: true });
    }
    await g?.destroy();
  }, 60_000);

  it('systemctl start returns once each member is ready (Type=notify READY=1); the three form a cluster', async () => {
    for (const c of containers) {
      const s = await show(c);
      expect(s, c.ip).toMatchObject({ Type: 'notify', ActiveState: 'active', SubState: 'running', NRestarts: '0' });
      expect(s.StatusText, c.ip).toMatch(/^ready: /);
    }
    await g!.waitForView((v) => fixture.balanced(v, M), { timeoutMs: 45_000, what: 'a balanced cluster of the systemd-run members' });
  }, 120_000);

  it('systemd ran each as the service user with the four capabilities; the heartbeat thread real-time exactly when the limit could be raised', async () => {
    for (const c of containers) {
      const pid = Number((await show(c)).MainPID);
      const r = await inside(c, `grep -E '^(Uid|CapEff|CapBnd|CapAmb):' /proc/${pid}/status; id -u gwcluster; grep 'Max realtime priority' /proc/${pid}/limits`);
      const uid = r.stdout.trim().split('\n').at(-2)!;
      expect(r.stdout).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s`, 'm'));
      for (const set of ['CapEff', 'CapBnd', 'CapAmb']) expect(BigInt(`0x${r.stdout.match(new RegExp(`^${set}:\\s+([0-9a-f]+)`, 'm'))![1]}`), `${c.ip} ${set}`).toBe(NET_CAPS);
      const counters = JSON.parse((await g!.gwctl(['counters', '--json', '--match', 'node.liveness.'], { endpoint: `http://${c.ip}:7401` })).stdout).counters;
      expect(counters['node.liveness.realtime'], `${c.ip}: RLIMIT_RTPRIO as systemd set it: ${r.stdout.trim().split('\n').at(-1)}`).toBe(canRaiseRtprio ? 1 : 0);
    }
  }, 120_000);

  it('systemctl reload comes back to active; systemctl stop is a clean leave and the other two carry on', async () => {
    const [c1, , c3] = containers as [Container, Container, Container];
    expect((await inside(c1, 'systemctl reload gwclusterd')).code).toBe(0);
    await waitFor(async () => (await show(c1)).ActiveState === 'active', { timeoutMs: 20_000, what: `${c1.ip} active after the reload` });
    const t = Date.now();
    expect((await inside(c3, 'systemctl stop gwclusterd')).code).toBe(0);
    expect(await show(c3)).toMatchObject({ ActiveState: 'inactive', Result: 'success' });
    await g!.waitForView((v) => fixture.healthy(v, M.slice(0, 2)), { since: t, timeoutMs: 30_000, what: 'the two others in a cluster' });
  }, 120_000);
});
