// A real gwcluster on a real (namespaced) network, for end-to-end tests, the demo and measurements:
// a switch namespace with one bridge, N member namespaces (192.0.2.11, .12, ...), an "ops" namespace
// (192.0.2.100) running the monitor, personalities made with gwctl, and gwclusterd processes.
// Everything lives in the harness's per-run namespaces and temp dir and is removed by destroy().
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Topology, waitFor } from '../harness/netns.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GWCTL = join(ROOT, 'packages/cli/bin/gwctl.js');
export const GWCLUSTERD = join(ROOT, 'packages/daemon/bin/gwclusterd.js');
// GWCLUSTER_PREFIX=DIR: gwctl and gwclusterd run from an unpacked package (DIR/usr/bin/...) instead of
// this checkout (test/package). GWCLUSTER_RUN_AS=USER: gwclusterd runs as USER with CAP_NET_ADMIN,
// CAP_NET_RAW, CAP_BPF and CAP_PERFMON only, as the packaged unit runs it; personalities are made with gwctl personality --owner USER.
const PREFIX = process.env.GWCLUSTER_PREFIX || undefined;
const RUN_AS = process.env.GWCLUSTER_RUN_AS || undefined;
// GWCLUSTER_RUN_RTPRIO=N (with GWCLUSTER_RUN_AS): gwclusterd runs with RLIMIT_RTPRIO N, as the unit's LimitRTPRIO=N.
const RUN_RTPRIO = process.env.GWCLUSTER_RUN_RTPRIO || undefined;
// GWCLUSTER_RUN_NICE=N: gwclusterd runs at niceness N (as the unit's Nice=N).
const RUN_NICE = process.env.GWCLUSTER_RUN_NICE || undefined;
export const GWCTL_CMD = PREFIX ? [join(PREFIX, 'usr/bin/gwctl')] : [process.execPath, GWCTL];
const CAPS = '-all,+net_admin,+net_raw,+bpf,+perfmon';
export const GWCLUSTERD_CMD = [
  ...(RUN_NICE ? ['nice', '-n', RUN_NICE] : []),
  ...(RUN_AS && RUN_RTPRIO ? ['prlimit', `--rtprio=${RUN_RTPRIO}:${RUN_RTPRIO}`] : []),
  ...(RUN_AS ? ['setpriv', `--reuid=${RUN_AS}`, `--regid=${execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' }).trim()}`, '--clear-groups', `--inh-caps=${CAPS}`, `--ambient-caps=${CAPS}`, `--bounding-set=${CAPS}`, '--no-new-privs', '--'] : []),
  ...(PREFIX ? [join(PREFIX, 'usr/bin/gwclusterd')] : [process.execPath, GWCLUSTERD]),
];
const MONITOR = join(ROOT, 'test/e2e/monitor.mjs');
export const CLUSTER_IP = '198.51.100.10';
export const INSIDE_CLUSTER_IP = '192.0.2.10';
const ECHO = join(ROOT, 'test/e2e/tools/echo-server.mjs');
const TRAFFIC = join(ROOT, 'test/e2e/tools/traffic.mjs');
export const TOKEN = 'e2e-token-0123456789abcdef';

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

export class ClusterFixture {
  /**
   * layout 'lan': members on one segment 192.0.2.0/24 (cluster protocol only).
   * layout 'gateway': an outside segment 198.51.100.0/24 with clients c1.. (default route via the cluster
   * IP 198.51.100.10), the members (eth0 outside .11.., eth1 inside 192.0.2.11..), an inside segment
   * with a server s1 192.0.2.100 (default route via the inside cluster IP 192.0.2.10); the data plane is
   * on with `method`.
   * @param {{ members?: number, extraConfig?: object, layout?: 'lan'|'gateway', method?: string, clients?: number }} opts
   */
  static async create(opts = {}) {
    const f = new ClusterFixture();
    await f.#init(opts);
    return f;
  }

  members = [];
  /** monitor samples, oldest first: { t, views } */
  samples = [];
  /** daemon log lines per member ip: parsed pino objects */
  logs = new Map();
  procs = new Map();

  async #init({ members = 3, extraConfig = {}, layout = 'lan', method = 'master-forward', clients = 2 }) {
    this.net = await Topology.create();
    this.layout = layout;
    const gateway = layout === 'gateway';
    this.lan = await this.net.addSegment(gateway ? 'inside' : 'lan');
    if (gateway) this.outside = await this.net.addSegment('outside');
    const dir = this.net.tmpDir();
    this.caDir = join(dir, 'ca');
    if (RUN_AS) chmodSync(dir, 0o755);
    await run(GWCTL_CMD[0], [...GWCTL_CMD.slice(1), 'pki', 'init-ca', '--dir', this.caDir, '--name', 'e2e cluster CA']);
    for (let i = 0; i < members; i++) {
      const ip = `192.0.2.${11 + i}`;
      const ifaces = gateway
        ? [
            { segment: this.outside, address: `198.51.100.${11 + i}/24`, ifname: 'eth0' },
            { segment: this.lan, address: `${ip}/24`, ifname: 'eth1' },
          ]
        : [{ segment: this.lan, address: `${ip}/24`, ifname: 'eth0' }];
      const host = await this.net.addHost(`m${i + 1}`, ifaces);
      const out = join(dir, `m${i + 1}`);
      const extra = gateway
        ? {
            ...extraConfig,
            dataplane: {
              method,
              interfaces: [
                { name: 'eth0', clusterIps: [CLUSTER_IP] },
                { name: 'eth1', clusterIps: [INSIDE_CLUSTER_IP] },
              ],
              ...(extraConfig.dataplane ?? {}),
            },
          }
        : extraConfig;
      await run(GWCTL_CMD[0], [
        ...GWCTL_CMD.slice(1), 'personality', ...(RUN_AS ? ['--owner', RUN_AS] : []), '--ca-dir', this.caDir, '--out', out, '--cluster-name', 'e2e', '--cluster-ip', CLUSTER_IP,
        '--member-ip', ip, '--interface', gateway ? 'eth1' : 'eth0', '--token', TOKEN, ...(Object.keys(extra).length ? ['--set', JSON.stringify(extra)] : []),
      ]);
      this.members.push({ ip, host, config: join(out, 'member.json'), name: `m${i + 1}`, outsideIp: gateway ? `198.51.100.${11 + i}` : undefined });
      this.logs.set(ip, []);
    }
    this.ops = await this.net.addHost('ops', [{ segment: this.lan, address: '192.0.2.200/24', ifname: 'eth0' }]);
    if (gateway) {
      this.clients = [];
      for (let i = 0; i < clients; i++) {
        const c = await this.net.addHost(`c${i + 1}`, [{ segment: this.outside, address: `198.51.100.${21 + i}/24`, ifname: 'eth0' }]);
        await c.ip('route', 'add', 'default', 'via', CLUSTER_IP);
        this.clients.push(c);
      }
      this.server = await this.net.addHost('s1', [{ segment: this.lan, address: '192.0.2.100/24', ifname: 'eth0' }]);
      await this.server.ip('route', 'add', 'default', 'via', INSIDE_CLUSTER_IP);
    }
  }

  member(ip) {
    const m = this.members.find((x) => x.ip === ip || x.name === ip);
    if (!m) throw new Error(`no member ${ip}`);
    return m;
  }

  /**
   * Starts gwclusterd on a member; its JSON log lines are collected. opts.env: extra environment;
   * opts.command: another gwclusterd to run (argv without --config; e.g. a next release, tools/next-release.mjs).
   */
  start(ip, opts = {}) {
    const m = this.member(ip);
    const cmd = opts.command ?? GWCLUSTERD_CMD;
    const child = m.host.spawn(cmd[0], [...cmd.slice(1), '--config', m.config], { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
    const lines = this.logs.get(m.ip);
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ time: Date.now(), msg: line, raw: true });
      }
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code, signal) => lines.push({ time: Date.now(), msg: `process exited code=${code} signal=${signal}`, stderr, exited: true }));
    this.procs.set(m.ip, child);
    return child;
  }

  startAll() {
    for (const m of this.members) this.start(m.ip);
  }

  /** Sends a signal (e.g. SIGHUP: reload) to a member's gwclusterd; returns the wall-clock time. */
  signal(ip, signal) {
    const child = this.procs.get(this.member(ip).ip);
    if (!child) throw new Error(`gwclusterd of ${ip} is not running`);
    const t = Date.now();
    child.kill(signal);
    return t;
  }

  /** kill -9 of a member's gwclusterd; returns the wall-clock time of the kill. */
  kill9(ip) {
    const child = this.procs.get(this.member(ip).ip);
    const t = Date.now();
    child.kill('SIGKILL');
    this.procs.delete(this.member(ip).ip);
    return t;
  }

  /** Starts the monitor in the ops namespace, polling every member's admin API. */
  startMonitor(intervalMs = 25) {
    const endpoints = this.members.map((m) => `http://${m.ip}:7401`);
    this.monitor = this.ops.spawn(process.execPath, [MONITOR, '--interval-ms', String(intervalMs), '--token', TOKEN, ...endpoints], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.monitor.stdout }).on('line', (line) => {
      try {
        this.samples.push(JSON.parse(line));
      } catch {
        /* partial line at exit */
      }
    });
  }

  latest() {
    return this.samples.at(-1);
  }

  /**
   * Waits until `pred(views)` holds for a monitor sample taken at or after `since` (wall ms);
   * returns that sample. Bounded by timeoutMs.
   */
  async waitForView(pred, { since = 0, timeoutMs = 15000, what = 'cluster state', holdMs = 0 } = {}) {
    let seen = this.samples.length;
    let from = null; // time of the first sample of the current run of samples that satisfy pred
    return waitFor(
      () => {
        for (; seen < this.samples.length; seen++) {
          const s = this.samples[seen];
          if (s.t < since || !pred(s.views)) {
            from = null;
            continue;
          }
          from ??= s.t;
          if (s.t - from >= holdMs) return s;
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 20, what },
    );
  }

  /** Starts an echo service (TCP 7000, UDP 7001 on every address) on a host; returns a stopper that resolves its counts. */
  startEcho(host, name = host.name) {
    const child = host.spawn(process.execPath, [ECHO, '--tcp', '7000', '--udp', '7001', '--name', name], { stdio: ['pipe', 'pipe', 'pipe'] });
    // Resolves once the echo server listens (its stderr line); rejects if it exits first.
    const ready = new Promise((resolve, reject) => {
      createInterface({ input: child.stderr }).on('line', (l) => {
        if (l.includes('"listening":true')) resolve();
        else process.stderr.write(`${l}\n`);
      });
      child.once('exit', (code, signal) => reject(new Error(`echo server on ${host.name} exited (${code ?? signal}) before listening`)));
    });
    ready.catch(() => {}); // a caller that does not wait for it
    let last = null;
    createInterface({ input: child.stdout }).on('line', (l) => {
      try {
        last = JSON.parse(l);
      } catch {
        /* ignore */
      }
    });
    return {
      child,
      ready,
      stop: () =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve(last);
          child.once('exit', () => resolve(last));
          child.kill('SIGTERM');
        }),
    };
  }

  /** Runs the traffic tool on a client host; resolves its JSON summary. */
  async traffic(host, args, timeoutMs = 120_000) {
    const r = await host.exec([process.execPath, TRAFFIC, ...args], { timeoutMs });
    if (r.code !== 0) throw new Error(`traffic tool failed (${r.code}): ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1));
  }

  /** Runs gwctl inside a namespace (default: ops) against a member. */
  async gwctl(args, { via = this.ops, endpoint = `http://${this.members[0].ip}:7401` } = {}) {
    return via.exec([...GWCTL_CMD, '--endpoint', endpoint, '--token', TOKEN, ...args], { timeoutMs: 15000 });
  }

  /** First log line of member `ip` at or after `since` whose msg matches. */
  logLine(ip, re, since = 0) {
    return this.logs.get(this.member(ip).ip).find((l) => l.time >= since && re.test(l.msg ?? ''));
  }

  /** The last `n` log lines of every member (time and message), for an assertion's message. */
  recentLogs(n = 12) {
    return this.members
      .map((m) => `${m.ip}:\n${this.logs.get(m.ip).slice(-n).map((l) => `  ${new Date(l.time).toISOString().slice(11, 23)} ${l.msg ?? ''}`).join('\n')}`)
      .join('\n');
  }

  async destroy() {
    try {
      this.monitor?.stdin?.end();
    } catch {
      /* already gone */
    }
    await this.net?.destroy();
  }
}

/** A view set is "healthy" for `ips`: all agree on one master, all list exactly `ips`, 1024 assigned, nothing moving. */
export function healthy(views, ips) {
  const vs = ips.map((ip) => views[ip]);
  if (vs.some((v) => !v || v.error)) return false;
  const master = vs[0].master;
  if (!master || !ips.includes(master)) return false;
  return vs.every(
    (v) => v.master === master && (v.role === 'master' || v.role === 'member') && v.members.length === ips.length && ips.every((ip) => v.members.includes(ip)) && v.assigned === 1024 && v.moving === 0,
  ) && vs.reduce((a, v) => a + v.owned, 0) === 1024;
}

/** healthy() and the units spread evenly (no traffic: unit counts differ by at most one). */
export function balanced(views, ips) {
  if (!healthy(views, ips)) return false;
  const owned = ips.map((ip) => views[ip].owned);
  return Math.max(...owned) - Math.min(...owned) <= 1;
}

/**
 * healthy() and every member carries a fair part of the work (at least `share` of an even split). After
 * traffic the load measure weighs units by traffic, so unit counts need not be equal; this is the test
 * for "the member is back with work".
 */
export function shared(views, ips, share = 0.5) {
  if (!healthy(views, ips)) return false;
  return ips.every((ip) => views[ip].owned >= (share * 1024) / ips.length);
}
