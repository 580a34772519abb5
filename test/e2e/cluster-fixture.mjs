// A real gwcluster on a real (namespaced) network, for end-to-end tests, the demo and measurements:
// a switch namespace with one bridge, N member namespaces (192.0.2.11, .12, ...), an "ops" namespace
// (192.0.2.100) running the monitor, personalities made with gwctl, and gwclusterd processes.
// Everything lives in the harness's per-run namespaces and temp dir and is removed by destroy().
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Topology, waitFor } from '../harness/netns.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GWCTL = join(ROOT, 'packages/cli/bin/gwctl.js');
export const GWCLUSTERD = join(ROOT, 'packages/daemon/bin/gwclusterd.js');
const MONITOR = join(ROOT, 'test/e2e/monitor.mjs');
export const CLUSTER_IP = '198.51.100.10';
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
  /** @param {{ members?: number, extraConfig?: object }} opts */
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

  async #init({ members = 3, extraConfig = {} }) {
    this.net = await Topology.create();
    this.lan = await this.net.addSegment('lan');
    const dir = this.net.tmpDir();
    this.caDir = join(dir, 'ca');
    await run(process.execPath, [GWCTL, 'pki', 'init-ca', '--dir', this.caDir, '--name', 'e2e cluster CA']);
    for (let i = 0; i < members; i++) {
      const ip = `192.0.2.${11 + i}`;
      const host = await this.net.addHost(`m${i + 1}`, [{ segment: this.lan, address: `${ip}/24`, ifname: 'eth0' }]);
      const out = join(dir, `m${i + 1}`);
      await run(process.execPath, [
        GWCTL, 'personality', '--ca-dir', this.caDir, '--out', out, '--cluster-name', 'e2e', '--cluster-ip', CLUSTER_IP,
        '--member-ip', ip, '--interface', 'eth0', '--token', TOKEN, ...(Object.keys(extraConfig).length ? ['--set', JSON.stringify(extraConfig)] : []),
      ]);
      this.members.push({ ip, host, config: join(out, 'member.json'), name: `m${i + 1}` });
      this.logs.set(ip, []);
    }
    this.ops = await this.net.addHost('ops', [{ segment: this.lan, address: '192.0.2.100/24', ifname: 'eth0' }]);
  }

  member(ip) {
    const m = this.members.find((x) => x.ip === ip || x.name === ip);
    if (!m) throw new Error(`no member ${ip}`);
    return m;
  }

  /** Starts gwclusterd on a member; its JSON log lines are collected. */
  start(ip) {
    const m = this.member(ip);
    const child = m.host.spawn(process.execPath, [GWCLUSTERD, '--config', m.config], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  async waitForView(pred, { since = 0, timeoutMs = 15000, what = 'cluster state' } = {}) {
    let seen = this.samples.length;
    return waitFor(
      () => {
        for (; seen < this.samples.length; seen++) {
          const s = this.samples[seen];
          if (s.t >= since && pred(s.views)) return s;
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 20, what },
    );
  }

  /** Runs gwctl inside a namespace (default: ops) against a member. */
  async gwctl(args, { via = this.ops, endpoint = `http://${this.members[0].ip}:7401` } = {}) {
    return via.exec([process.execPath, GWCTL, '--endpoint', endpoint, '--token', TOKEN, ...args], { timeoutMs: 15000 });
  }

  /** First log line of member `ip` at or after `since` whose msg matches. */
  logLine(ip, re, since = 0) {
    return this.logs.get(this.member(ip).ip).find((l) => l.time >= since && re.test(l.msg ?? ''));
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
