// Network-namespace test harness for gwcluster.
//
// Plain JavaScript ESM (types in ./netns.d.mts) so that vitest tests (TypeScript) and plain
// `node` scripts (the demo) can both import it without a loader.
//
// Model: one "switch" namespace per topology holds one Linux bridge per segment; every host is a
// namespace whose interfaces are veth pairs with the other end plugged into a bridge in the switch
// namespace. Nothing is ever created in the host's (root) network namespace: the veth pair is
// created *by* the switch namespace (`ip -n SWITCH link add PORT type veth peer name IF netns HOST`),
// so neither end exists outside the topology's namespaces, not even briefly.
//
// Only TEST-NET-1/2/3 IPv4 addresses are accepted, IPv6 is disabled in every namespace, no host has
// a default route, and no namespace has a link to the outside: traffic cannot leave the topology.
//
// Cleanup, in every failure mode:
//   - destroy():        SIGTERM to tracked process groups, SIGKILL after a grace period, SIGKILL to
//                       every remaining process in the namespaces (`ip netns pids`), `ip netns del`,
//                       removal of the topology's temp dir. Idempotent.
//   - process 'exit' (normal end, process.exit(), fatal uncaught exception / unhandled rejection):
//                       synchronous version of the above (execFileSync) for every live topology.
//   - SIGINT/SIGTERM/SIGHUP: synchronous cleanup, then, if no one else listens for that signal,
//                       the signal is re-raised so the process still dies of it (as vitest expects).
//   - forked test worker orphaned (its runner died without stopping it; IPC 'disconnect' + ppid
//                       changed): synchronous cleanup, the worker itself lingers until its test ends.
//   - SIGKILL / OOM kill of the process: a detached watchdog (`sh`, own session) per topology holds
//                       the read end of a pipe whose only writer is this process; on EOF it deletes
//                       every namespace with the topology's prefix (killing their processes) and the
//                       temp dir. On a normal destroy() the pipe is closed and the watchdog exits.
//   - all of the above killed at once (e.g. the whole cgroup): scripts/netns-sweep.sh.

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Every namespace / temp dir the harness creates starts with this (scripts/netns-sweep.sh relies on it). */
export const PREFIX_ROOT = 'gwt';

const PREFIX_RE = /^gwt[a-z0-9]{1,24}-$/;
const NAME_RE = /^[a-z0-9][a-z0-9_]{0,23}$/i; // host / segment names (become part of namespace names)
const IFNAME_RE = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,14}$/; // <= 15 chars (IFNAMSIZ - 1)
const NFT_TABLE = 'gwt_harness';
const DEFAULT_CMD_TIMEOUT_MS = 10_000;
const DEFAULT_KILL_GRACE_MS = 2_000;
const MAX_OUTPUT = 16 * 1024 * 1024;

/** TEST-NET-1, TEST-NET-2, TEST-NET-3 (RFC 5737). The only addresses the harness will configure. */
const TEST_NETS = [
  { base: ipToInt('192.0.2.0'), bits: 24 },
  { base: ipToInt('198.51.100.0'), bits: 24 },
  { base: ipToInt('203.0.113.0'), bits: 24 },
];

function ipToInt(ip) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

/** True when `ip` (a dotted IPv4 address, no prefix) is inside 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24. */
export function isTestNetAddress(ip) {
  const n = ipToInt(ip);
  if (n === null) return false;
  return TEST_NETS.some(({ base, bits }) => ((n ^ base) >>> (32 - bits)) === 0);
}

/**
 * Validates "a.b.c.d/len" (len defaults to 32): the address must be in a TEST-NET range and the
 * prefix must not reach outside it (len >= 24). Returns { ip, len, cidr }.
 */
export function parseTestNetCidr(cidr) {
  if (typeof cidr !== 'string') throw new TypeError(`address must be a string, got ${typeof cidr}`);
  const [ip, lenStr, ...rest] = cidr.split('/');
  const len = lenStr === undefined ? 32 : Number(lenStr);
  if (rest.length || !ip || !Number.isInteger(len) || len < 0 || len > 32 || ipToInt(ip) === null) {
    throw new Error(`invalid IPv4 address/prefix: ${JSON.stringify(cidr)}`);
  }
  if (!isTestNetAddress(ip)) {
    throw new Error(`address ${cidr} is outside the TEST-NET ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)`);
  }
  if (len < 24) throw new Error(`prefix length of ${cidr} reaches outside its TEST-NET /24`);
  return { ip, len, cidr: `${ip}/${len}` };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function errMessage(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Polls `fn` until it returns a truthy value (which is returned), bounded in time and in attempts.
 * A throwing / rejecting `fn` counts as "not yet" (its last error is reported on timeout); a call to
 * `fn` that itself hangs past the deadline also ends the wait.
 */
export async function waitFor(fn, opts = {}) {
  const { timeoutMs = 5_000, intervalMs = 100, what = 'condition' } = opts;
  if (!(timeoutMs >= 0) || !(intervalMs >= 0)) throw new RangeError('waitFor: timeoutMs and intervalMs must be >= 0');
  const start = Date.now();
  const deadline = start + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / Math.max(intervalMs, 1)) + 2;
  let attempts = 0;
  let lastError;
  let lastValue;
  const TIMEOUT = Symbol('timeout');
  while (attempts < maxAttempts) {
    attempts++;
    const remaining = Math.max(deadline - Date.now(), 1);
    let timer;
    try {
      const v = await Promise.race([
        Promise.resolve().then(fn),
        new Promise((r) => { timer = setTimeout(() => r(TIMEOUT), remaining); }),
      ]);
      if (v === TIMEOUT) { lastError = new Error('the check itself did not finish before the deadline'); break; }
      if (v) return v;
      lastValue = v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() + intervalMs > deadline) {
      // One last attempt exactly at the deadline, then give up.
      if (Date.now() >= deadline) break;
      await sleep(Math.max(deadline - Date.now(), 0));
      continue;
    }
    await sleep(intervalMs);
  }
  const detail = lastError !== undefined ? `; last error: ${errMessage(lastError)}` : `; last value: ${JSON.stringify(lastValue)}`;
  const err = new Error(`timed out after ${Date.now() - start} ms waiting for ${what} (${attempts} attempts)${detail}`);
  if (lastError !== undefined) err.cause = lastError;
  throw err;
}

/**
 * Runs argv (no shell) with a timeout; never rejects for a non-zero exit (see `code`), only when the
 * program cannot be started. The command runs in its own process group, killed (SIGKILL) on timeout.
 */
function runCommand(argv, opts = {}) {
  const { timeoutMs = DEFAULT_CMD_TIMEOUT_MS, input, env } = opts;
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    const child = spawn(file, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
      env: env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { if (stdout.length < MAX_OUTPUT) stdout += d; });
    child.stderr.on('data', (d) => { if (stderr.length < MAX_OUTPUT) stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      if (!settled) { settled = true; reject(new Error(`cannot run ${argv.join(' ')}: ${e.message}`)); }
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (!settled) { settled = true; resolve({ stdout, stderr, code, signal, timedOut }); }
    });
    if (input !== undefined) {
      child.stdin.on('error', () => {}); // EPIPE if the command does not read its input
      child.stdin.end(input);
    }
  });
}

function describeFailure(argv, r) {
  const why = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  const out = (r.stderr.trim() || r.stdout.trim()).slice(0, 2000);
  const hint = /Cannot open network namespace/.test(out)
    ? ' (the namespace was deleted from outside this process, e.g. by `scripts/netns-sweep.sh --force` or `ip netns del`)'
    : '';
  return `${argv.join(' ')}: ${why}${out ? `: ${out}` : ''}${hint}`;
}

/** Like runCommand, but rejects unless the exit code is 0. */
async function runOk(argv, opts) {
  const r = await runCommand(argv, opts);
  if (r.code !== 0) throw new Error(describeFailure(argv, r));
  return r;
}

function killGroup(pid, signal) {
  if (!pid) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

function killPid(pid, signal) {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Names of all network namespaces (`ip netns list`). */
export function listNamespaces() {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((n) => !!n);
}

/** Whether this machine/user can run the harness; `reason` explains why not. */
export function netnsSupported() {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'needs root' };
  for (const [cmd, args] of [['ip', ['-V']], ['nft', ['--version']]]) {
    try {
      execFileSync(cmd, args, { stdio: 'ignore', timeout: 5_000 });
    } catch {
      return { ok: false, reason: `${cmd} not available` };
    }
  }
  return { ok: true };
}

// ---------------------------------------------------------------------------------------------
// Process-wide registry: every live topology, destroyed synchronously on exit / fatal signals.
// Shared through globalThis so that several copies of this module (vitest module isolation) use
// one set of process listeners.

const REGISTRY_KEY = Symbol.for('gwcluster.test.netns.registry');
/** @type {{ live: Set<any>, installed: boolean, handlers: Record<string, (...a: any[]) => void> }} */
const registry = globalThis[REGISTRY_KEY] ??= { live: new Set(), installed: false, handlers: {} };

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function cleanupAllSync(reason) {
  for (const t of [...registry.live]) {
    try {
      t.destroySync(reason);
    } catch {
      // keep going: the other topologies still have to go
    }
  }
}

function installHandlers() {
  if (registry.installed) return;
  registry.installed = true;
  const h = registry.handlers;
  h.exit = () => cleanupAllSync('process exit');
  process.on('exit', h.exit);
  // 'exit' also fires for fatal exceptions; the monitor only cleans up earlier when the exception
  // is going to be fatal (nobody handles it), so a runner that survives uncaught errors keeps its topologies.
  h.uncaughtExceptionMonitor = (_err, origin) => {
    const handled = process.listenerCount('uncaughtException') > 0
      || (origin === 'unhandledRejection' && process.listenerCount('unhandledRejection') > 0);
    if (!handled) cleanupAllSync(`fatal ${origin}`);
  };
  process.on('uncaughtExceptionMonitor', h.uncaughtExceptionMonitor);
  // A forked worker (vitest's "forks" pool) whose runner died without stopping it (runner SIGKILLed,
  // or SIGINT/SIGTERM sent to the runner alone) keeps running the current test until its timeout.
  // The IPC channel closing is the sign; clean up once the process has really been orphaned
  // (ppid changed), so an intentional process.disconnect() does not destroy anything.
  if (typeof process.send === 'function' && process.connected) {
    const parent = process.ppid;
    h.disconnect = () => {
      let checks = 0;
      const timer = setInterval(() => {
        if (process.ppid !== parent) {
          clearInterval(timer);
          cleanupAllSync('parent process gone');
        } else if (++checks >= 40) {
          clearInterval(timer); // still has its parent after 2 s: an intentional disconnect
        }
      }, 50);
      timer.unref();
    };
    process.on('disconnect', h.disconnect);
  }
  for (const sig of SIGNALS) {
    const handler = () => {
      cleanupAllSync(sig);
      // Preserve the default behaviour (die of the signal) unless someone else handles it.
      if (process.listeners(sig).every((l) => l === handler)) {
        uninstallHandlers();
        process.kill(process.pid, sig);
      }
    };
    h[sig] = handler;
    process.on(sig, handler);
  }
}

function uninstallHandlers() {
  if (!registry.installed) return;
  registry.installed = false;
  const h = registry.handlers;
  process.removeListener('exit', h.exit);
  process.removeListener('uncaughtExceptionMonitor', h.uncaughtExceptionMonitor);
  if (h.disconnect) process.removeListener('disconnect', h.disconnect);
  for (const sig of SIGNALS) process.removeListener(sig, h[sig]);
  registry.handlers = {};
}

function register(t) {
  registry.live.add(t);
  installHandlers();
}

function unregister(t) {
  registry.live.delete(t);
  if (registry.live.size === 0) uninstallHandlers();
}

/** Topologies created by this process and not destroyed yet. */
export function liveTopologies() {
  return [...registry.live];
}

/** Destroys every live topology of this process (e.g. in a global teardown). */
export async function destroyAllTopologies() {
  await Promise.allSettled([...registry.live].map((t) => t.destroy()));
}

// ---------------------------------------------------------------------------------------------
// Watchdog: survives a SIGKILL of this process and removes what the topology left behind.

const WATCHDOG_SCRIPT = `
p=$1; d=$2
case $p in gwt*-) ;; *) exit 2 ;; esac
case $p in *[!a-z0-9-]*) exit 2 ;; esac
case $d in /*/"$p"files) ;; *) d= ;; esac
cat >/dev/null 2>&1
i=0
while [ $i -lt 10 ]; do
  left=0
  for ns in $(ip netns list 2>/dev/null | cut -d' ' -f1); do
    case $ns in
      "$p"*)
        left=1
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null ;;
    esac
  done
  [ $left = 0 ] && break
  i=$((i+1)); sleep 0.2
done
[ -n "$d" ] && rm -rf -- "$d"
exit 0
`;

function startWatchdog(prefix, dir) {
  const child = spawn('sh', ['-c', WATCHDOG_SCRIPT, 'gwt-netns-watchdog', prefix, dir], {
    detached: true, // own session: a Ctrl-C / group kill aimed at the test runner does not reach it
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => {});
  child.stdin.on('error', () => {});
  child.unref();
  // @ts-ignore - Socket has unref(); keep the pipe from holding the event loop open
  child.stdin.unref?.();
  return child;
}

// ---------------------------------------------------------------------------------------------

function randomSuffix(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[bytes[i] % alphabet.length];
  return s;
}

function asHostList(x, what) {
  const list = Array.isArray(x) ? x : [x];
  if (list.length === 0) throw new Error(`${what}: empty host group`);
  for (const h of list) if (!(h instanceof Host)) throw new TypeError(`${what}: expected Host objects`);
  return list;
}

/** A bridge (L2 segment) inside the topology's switch namespace. */
export class Segment {
  /** @internal */
  constructor(topology, name, bridge) {
    this.topology = topology;
    this.name = name;
    this.bridge = bridge;
  }

  /** Hosts with at least one interface on this segment. */
  get hosts() {
    return this.topology.hosts.filter((h) => h.interfaces.some((i) => i.segment === this));
  }
}

/** A network namespace with veth interfaces plugged into segments. */
export class Host {
  /** @internal */
  constructor(topology, name, nsName) {
    this.topology = topology;
    this.name = name;
    this.nsName = nsName;
    /** @type {{ ifname: string, segment: Segment, port: string, addresses: string[], mac: string | undefined }[]} */
    this.interfaces = [];
  }

  #iface(ifname) {
    const i = ifname === undefined ? this.interfaces[0] : this.interfaces.find((x) => x.ifname === ifname);
    if (!i) throw new Error(`host ${this.name} has no interface ${ifname ?? '(none at all)'}`);
    return i;
  }

  /** First IPv4 address (without prefix length) of `ifname` (default: the first interface). */
  address(ifname) {
    const c = this.#iface(ifname).addresses[0];
    if (!c) throw new Error(`host ${this.name} interface ${ifname ?? this.interfaces[0]?.ifname} has no address`);
    return c.split('/')[0];
  }

  /** First address with prefix length ("192.0.2.11/24"). */
  cidr(ifname) {
    const c = this.#iface(ifname).addresses[0];
    if (!c) throw new Error(`host ${this.name} interface ${ifname ?? this.interfaces[0]?.ifname} has no address`);
    return c;
  }

  /** All configured addresses (without prefix length), all interfaces. */
  addresses() {
    return this.interfaces.flatMap((i) => i.addresses.map((a) => a.split('/')[0]));
  }

  /** The switch-side port name of `ifname` (inside topology.switchNs). */
  port(ifname) {
    return this.#iface(ifname).port;
  }

  /** Runs argv inside the namespace (`ip netns exec NS ...`); resolves with the exit code, never rejects for a non-zero exit. */
  async exec(argv, opts = {}) {
    this.topology.assertAlive();
    if (!Array.isArray(argv) || argv.length === 0) throw new TypeError('exec: argv must be a non-empty array');
    return runCommand(['ip', 'netns', 'exec', this.nsName, ...argv.map(String)], opts);
  }

  /** exec() that rejects (with stderr in the message) unless the exit code is 0. */
  async execOk(argv, opts = {}) {
    const r = await this.exec(argv, opts);
    if (r.code !== 0) throw new Error(`[${this.name}] ${describeFailure(argv, r)}`);
    return r;
  }

  /** Runs a shell snippet inside the namespace (`sh -c`). */
  sh(script, opts = {}) {
    return this.exec(['sh', '-c', script], opts);
  }

  /** `ip ARGS...` inside the namespace; rejects on failure. */
  ip(...args) {
    return this.execOk(['ip', ...args]);
  }

  /** Pings `target` (Host or address): true when at least one reply arrived. */
  async ping(target, opts = {}) {
    const { count = 1, timeoutS = 1, intervalS } = opts;
    const addr = typeof target === 'string' ? target : target.address(opts.ifname);
    if (!isTestNetAddress(addr)) throw new Error(`refusing to ping ${addr}: not a TEST-NET address`);
    const argv = ['ping', '-n', '-q', '-c', String(count), '-W', String(timeoutS)];
    if (intervalS !== undefined) argv.push('-i', String(intervalS));
    argv.push(addr);
    const budget = (count * (intervalS ?? 1) + timeoutS) * 1000 + 5_000;
    const r = await this.exec(argv, { timeoutMs: budget });
    return r.code === 0;
  }

  /**
   * Starts a long-running process inside the namespace, in its own process group, tracked by the
   * topology: destroy() (or process exit) kills the group, then everything left in the namespace.
   * Note: `ip netns exec` exits 255 when `cmd` cannot be executed (the ChildProcess does not emit 'error').
   */
  spawn(cmd, args = [], opts = {}) {
    this.topology.assertAlive();
    const child = spawn('ip', ['netns', 'exec', this.nsName, cmd, ...args.map(String)], { ...opts, detached: true });
    this.topology._track(child);
    return child;
  }

  /** Adds an address (TEST-NET only) to an interface. */
  async addAddress(ifname, cidr) {
    const { cidr: c } = parseTestNetCidr(cidr);
    const i = this.#iface(ifname);
    await this.ip('addr', 'add', c, 'dev', i.ifname);
    i.addresses.push(c);
    await this.topology._refreshFilters();
  }

  /** Removes an address added with addAddress (or at creation). */
  async delAddress(ifname, cidr) {
    const { cidr: c } = parseTestNetCidr(cidr);
    const i = this.#iface(ifname);
    await this.ip('addr', 'del', c, 'dev', i.ifname);
    i.addresses = i.addresses.filter((a) => a !== c);
    await this.topology._refreshFilters();
  }

  /** Shorthand for topology.setLoss(this, ifname, percent, opts). */
  setLoss(ifname, percent, opts) {
    return this.topology.setLoss(this, ifname, percent, opts);
  }
}

export class Topology {
  #destroyPromise = undefined;
  #destroyed = false;
  #children = new Set();
  #nsList = []; // every namespace name this topology may have created, in creation order
  #portSeq = 0;
  #bridgeSeq = 0;
  #watchdog = undefined;
  #tmpDir = undefined;
  #filterChain = Promise.resolve();
  /** @type {Map<Host, Map<string, { in: number, out: number }>>} */
  #loss = new Map();
  /** @type {Map<string, { from: Host, to: Host, segment: Segment | undefined }>} */
  #blocked = new Map();

  /** @internal use Topology.create() */
  constructor(prefix, opts) {
    this.prefix = prefix;
    this.switchNs = `${prefix}_switch`;
    this.killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.mcastSnooping = opts.mcastSnooping ?? false;
    /** @type {Host[]} */
    this.hosts = [];
    /** @type {Segment[]} */
    this.segments = [];
    this.tmpDirPath = join(tmpdir(), `${prefix}files`);
  }

  /** Creates the topology and its switch namespace. */
  static async create(opts = {}) {
    const support = netnsSupported();
    if (!support.ok) throw new Error(`network namespaces unavailable: ${support.reason}`);
    let prefix = opts.prefix;
    if (prefix !== undefined) {
      if (!PREFIX_RE.test(prefix)) throw new Error(`prefix must match ${PREFIX_RE} (starts with "${PREFIX_ROOT}", ends with "-"), got ${JSON.stringify(prefix)}`);
      if (listNamespaces().some((n) => n.startsWith(prefix))) throw new Error(`namespaces with prefix ${prefix} already exist (leftovers? see scripts/netns-sweep.sh)`);
    } else {
      const existing = listNamespaces();
      for (let i = 0; i < 10 && prefix === undefined; i++) {
        const candidate = `${PREFIX_ROOT}${process.pid.toString(36)}${randomSuffix(3)}-`;
        if (!existing.some((n) => n.startsWith(candidate))) prefix = candidate;
      }
      if (prefix === undefined) throw new Error('could not find an unused namespace prefix');
    }
    const t = new Topology(prefix, opts);
    register(t);
    if (opts.watchdog !== false) t.#watchdog = startWatchdog(prefix, t.tmpDirPath);
    try {
      await t.#addNamespace(t.switchNs);
    } catch (e) {
      await t.destroy().catch(() => {});
      throw e;
    }
    return t;
  }

  get destroyed() {
    return this.#destroyed;
  }

  /** Pid of the watchdog process (diagnostics). */
  get watchdogPid() {
    return this.#watchdog?.pid;
  }

  /** Namespace names created (or being created) by this topology. */
  get namespaces() {
    return [...this.#nsList];
  }

  /** @internal */
  assertAlive() {
    if (this.#destroyed) throw new Error(`topology ${this.prefix} is destroyed`);
  }

  /** @internal */
  _track(child) {
    this.#children.add(child);
    const forget = () => this.#children.delete(child);
    child.once('exit', forget);
    child.once('error', forget);
  }

  async #addNamespace(ns) {
    this.assertAlive();
    this.#nsList.push(ns); // before creation: a half-created namespace is still cleaned up
    await runOk(['ip', 'netns', 'add', ns]);
    // lo up; no IPv6 (its link-local chatter would be the only non-TEST-NET traffic).
    await runOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    if (existsSync('/proc/sys/net/ipv6')) {
      await runOk(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w',
        'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
  }

  /** A per-topology directory under the OS temp dir, created on first call, removed with the topology. */
  tmpDir() {
    this.assertAlive();
    if (!this.#tmpDir) {
      mkdirSync(this.tmpDirPath, { recursive: false, mode: 0o700 });
      this.#tmpDir = this.tmpDirPath;
    }
    return this.#tmpDir;
  }

  /** Adds an L2 segment: a bridge in the switch namespace. */
  async addSegment(name, opts = {}) {
    this.assertAlive();
    if (!NAME_RE.test(name)) throw new Error(`bad segment name ${JSON.stringify(name)}`);
    if (this.segments.some((s) => s.name === name)) throw new Error(`segment ${name} exists`);
    const bridge = opts.bridgeName ?? `br${this.#bridgeSeq++}`;
    if (!IFNAME_RE.test(bridge)) throw new Error(`bad bridge name ${JSON.stringify(bridge)}`);
    if (this.segments.some((s) => s.bridge === bridge)) throw new Error(`bridge ${bridge} exists`);
    const seg = new Segment(this, name, bridge);
    const snooping = opts.mcastSnooping ?? this.mcastSnooping;
    await runOk(['ip', '-n', this.switchNs, 'link', 'add', bridge, 'type', 'bridge',
      'stp_state', '0', 'mcast_snooping', snooping ? '1' : '0']);
    this.segments.push(seg);
    await runOk(['ip', '-n', this.switchNs, 'link', 'set', bridge, 'up']);
    return seg;
  }

  /** Adds a host namespace with one veth interface per spec, each plugged into its segment's bridge. */
  async addHost(name, ifaces, opts = {}) {
    this.assertAlive();
    if (!NAME_RE.test(name)) throw new Error(`bad host name ${JSON.stringify(name)}`);
    if (this.hosts.some((h) => h.name === name)) throw new Error(`host ${name} exists`);
    if (!Array.isArray(ifaces)) throw new TypeError('addHost: ifaces must be an array');
    // Validate everything before creating anything.
    const specs = ifaces.map((spec, idx) => {
      const ifname = spec.ifname ?? `eth${idx}`;
      if (!IFNAME_RE.test(ifname) || ifname === 'lo') throw new Error(`bad interface name ${JSON.stringify(ifname)}`);
      if (!(spec.segment instanceof Segment) || spec.segment.topology !== this) throw new Error(`interface ${ifname}: segment of another topology`);
      const raw = spec.address === undefined ? [] : Array.isArray(spec.address) ? spec.address : [spec.address];
      const addresses = raw.map((a) => parseTestNetCidr(a).cidr);
      if (spec.mac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(spec.mac)) throw new Error(`bad MAC ${spec.mac}`);
      return { ifname, segment: spec.segment, addresses, mac: spec.mac };
    });
    const names = new Set(specs.map((s) => s.ifname));
    if (names.size !== specs.length) throw new Error('addHost: duplicate interface names');
    const sysctls = Object.entries(opts.sysctl ?? {});
    for (const [k] of sysctls) if (!/^[a-z0-9_.\/-]+$/i.test(k)) throw new Error(`bad sysctl name ${k}`);

    const host = new Host(this, name, `${this.prefix}${name}`);
    await this.#addNamespace(host.nsName);
    this.hosts.push(host);
    for (const s of specs) {
      const port = `p${this.#portSeq++}`;
      // Created by the switch namespace, peer created directly in the host namespace.
      await runOk(['ip', '-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', s.ifname, 'netns', host.nsName]);
      host.interfaces.push({ ifname: s.ifname, segment: s.segment, port, addresses: [...s.addresses], mac: s.mac });
      const sw = [
        `link set ${port} alias ${host.name}:${s.ifname}`,
        `link set ${port} master ${s.segment.bridge}`,
        `link set ${port} up`,
      ];
      await runOk(['ip', '-n', this.switchNs, '-batch', '-'], { input: sw.join('\n') + '\n' });
      const hb = [];
      if (s.mac) hb.push(`link set ${s.ifname} address ${s.mac}`);
      for (const a of s.addresses) hb.push(`addr add ${a} dev ${s.ifname}`);
      hb.push(`link set ${s.ifname} up`);
      await runOk(['ip', '-n', host.nsName, '-batch', '-'], { input: hb.join('\n') + '\n' });
    }
    if (opts.forwarding) sysctls.push(['net.ipv4.ip_forward', '1']);
    if (sysctls.length) await runOk(['ip', 'netns', 'exec', host.nsName, 'sysctl', '-q', '-w', ...sysctls.map(([k, v]) => `${k}=${v}`)]);
    return host;
  }

  /** Looks a host up by name. */
  host(name) {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /**
   * Random loss of IPv4 packets on `ifname` of `host` (nftables in the host's namespace, prerouting /
   * postrouting, so forwarded packets count too). percent in [0, 100], 0.01 resolution; 0 removes it.
   * direction: 'in' | 'out' | 'both' (default 'both': a ping round trip then succeeds with (1-p)^2).
   * ARP is not affected (use partition() to cut a link completely).
   */
  async setLoss(host, ifname, percent, opts = {}) {
    this.assertAlive();
    if (!(host instanceof Host) || host.topology !== this) throw new TypeError('setLoss: host of another topology');
    const iface = host.interfaces.find((i) => i.ifname === (ifname ?? host.interfaces[0]?.ifname));
    if (!iface) throw new Error(`setLoss: host ${host.name} has no interface ${ifname}`);
    if (typeof percent !== 'number' || !(percent >= 0 && percent <= 100)) throw new RangeError(`setLoss: percent must be within 0..100, got ${percent}`);
    const direction = opts.direction ?? 'both';
    if (!['in', 'out', 'both'].includes(direction)) throw new Error(`setLoss: bad direction ${direction}`);
    let perIf = this.#loss.get(host);
    if (!perIf) this.#loss.set(host, (perIf = new Map()));
    const cur = perIf.get(iface.ifname) ?? { in: 0, out: 0 };
    if (direction !== 'out') cur.in = percent;
    if (direction !== 'in') cur.out = percent;
    if (cur.in === 0 && cur.out === 0) perIf.delete(iface.ifname);
    else perIf.set(iface.ifname, cur);
    await this._refreshFilters();
  }

  /**
   * Cuts all traffic between every host of `a` and every host of `b` (a Host or an array): frames
   * between their bridge ports are dropped in the switch namespace (any protocol, ARP and shared
   * addresses included), and IPv4 packets from/to each other's configured addresses are dropped in
   * the hosts' namespaces (which also cuts paths routed through a third host).
   * opts.oneWay: only a -> b. opts.segment: only on that segment.
   */
  async partition(a, b, opts = {}) {
    this.assertAlive();
    const as = asHostList(a, 'partition');
    const bs = asHostList(b, 'partition');
    for (const x of as) for (const y of bs) {
      if (x === y) throw new Error(`partition: host ${x.name} is on both sides`);
      this.#block(x, y, opts.segment);
      if (!opts.oneWay) this.#block(y, x, opts.segment);
    }
    await this._refreshFilters();
  }

  /** Undoes partition(a, b) (both directions unless opts.oneWay; all segments unless opts.segment). */
  async heal(a, b, opts = {}) {
    this.assertAlive();
    const as = asHostList(a, 'heal');
    const bs = asHostList(b, 'heal');
    const matches = (e, from, to) => e.from === from && e.to === to && (opts.segment === undefined || e.segment === opts.segment);
    for (const [k, e] of [...this.#blocked]) {
      for (const x of as) for (const y of bs) {
        if (matches(e, x, y) || (!opts.oneWay && matches(e, y, x))) this.#blocked.delete(k);
      }
    }
    await this._refreshFilters();
  }

  /** Removes every partition. */
  async healAll() {
    this.assertAlive();
    this.#blocked.clear();
    await this._refreshFilters();
  }

  #block(from, to, segment) {
    if (segment !== undefined && (!(segment instanceof Segment) || segment.topology !== this)) throw new Error('partition: segment of another topology');
    this.#blocked.set(`${from.name}>${to.name}@${segment?.name ?? '*'}`, { from, to, segment });
  }

  /** @internal Re-applies every nftables table from the current state (serialized, atomic per namespace). */
  _refreshFilters() {
    const run = async () => {
      if (this.#destroyed) return;
      const jobs = [runOk(['ip', 'netns', 'exec', this.switchNs, 'nft', '-f', '-'], { input: this.#switchRules() })];
      for (const h of this.hosts) jobs.push(runOk(['ip', 'netns', 'exec', h.nsName, 'nft', '-f', '-'], { input: this.#hostRules(h) }));
      await Promise.all(jobs);
    };
    const p = this.#filterChain.then(run, run);
    this.#filterChain = p.catch(() => {});
    return p;
  }

  /** Current filter rules as nft scripts, per namespace (diagnostics). */
  rules() {
    const out = { [this.switchNs]: this.#switchRules() };
    for (const h of this.hosts) out[h.nsName] = this.#hostRules(h);
    return out;
  }

  #switchRules() {
    const rules = [];
    for (const { from, to, segment } of this.#blocked.values()) {
      for (const fi of from.interfaces) for (const ti of to.interfaces) {
        if (fi.segment !== ti.segment) continue;
        if (segment !== undefined && fi.segment !== segment) continue;
        rules.push(`iifname "${fi.port}" oifname "${ti.port}" drop`);
      }
    }
    return replaceTable('bridge', rules.length ? [
      `chain forward { type filter hook forward priority -200; policy accept;`,
      ...dedupe(rules).map((r) => `  ${r}`),
      `}`,
    ] : []);
  }

  #hostRules(h) {
    const pre = [];
    const post = [];
    const peerAddrs = (peer, segment) => peer.interfaces
      .filter((i) => segment === undefined || i.segment === segment)
      .flatMap((i) => i.addresses.map((a) => a.split('/')[0]));
    const fromAddrs = [];
    const toAddrs = [];
    for (const { from, to, segment } of this.#blocked.values()) {
      if (to === h) fromAddrs.push(...peerAddrs(from, segment));
      if (from === h) toAddrs.push(...peerAddrs(to, segment));
    }
    if (fromAddrs.length) pre.push(`ip saddr { ${dedupe(fromAddrs).join(', ')} } drop`);
    if (toAddrs.length) post.push(`ip daddr { ${dedupe(toAddrs).join(', ')} } drop`);
    for (const [ifname, l] of this.#loss.get(h) ?? []) {
      const lin = lossExpr(l.in);
      const lout = lossExpr(l.out);
      if (lin) pre.push(`iifname "${ifname}" ${lin}`);
      if (lout) post.push(`oifname "${ifname}" ${lout}`);
    }
    const body = [];
    if (pre.length) body.push('chain pre { type filter hook prerouting priority -300; policy accept;', ...pre.map((r) => `  ${r}`), '}');
    if (post.length) body.push('chain post { type filter hook postrouting priority 300; policy accept;', ...post.map((r) => `  ${r}`), '}');
    return replaceTable('inet', body);
  }

  /**
   * Kills tracked processes (SIGTERM to each process group, SIGKILL after killGraceMs), then every
   * process left in the namespaces, deletes the namespaces and the temp dir. Idempotent; concurrent
   * calls share one promise. Rejects (after doing all it can) if something could not be removed.
   */
  destroy() {
    this.#destroyPromise ??= this.#destroyAsync();
    return this.#destroyPromise;
  }

  async #destroyAsync() {
    this.#destroyed = true;
    const problems = [];
    try {
      // 1. Polite: SIGTERM to every live tracked process group, bounded wait.
      const alive = () => [...this.#children].filter((c) => c.exitCode === null && c.signalCode === null);
      for (const c of alive()) killGroup(c.pid, 'SIGTERM');
      const graceEnd = Date.now() + this.killGraceMs;
      while (alive().length && Date.now() < graceEnd) await sleep(25);
      for (const c of alive()) killGroup(c.pid, 'SIGKILL');
      const killEnd = Date.now() + 2_000;
      while (alive().length && Date.now() < killEnd) await sleep(25);
      // 2. Everything still inside the namespaces (double-forked daemons, exec() leftovers).
      await this.#sweepAsync(problems);
      // 3. Temp dir.
      if (this.#tmpDir || existsSync(this.tmpDirPath)) {
        await rm(this.tmpDirPath, { recursive: true, force: true }).catch((e) => problems.push(`rm ${this.tmpDirPath}: ${errMessage(e)}`));
      }
    } finally {
      unregister(this);
      this.#stopWatchdog();
    }
    if (problems.length) throw new Error(`topology ${this.prefix}: cleanup incomplete: ${problems.join('; ')}`);
  }

  async #sweepAsync(problems) {
    const mine = (n) => n.startsWith(this.prefix);
    for (let round = 0; round < 5; round++) {
      const present = listNamespaces().filter(mine);
      if (present.length === 0) return;
      // Hosts first, the switch namespace last (order does not matter to the kernel; keeps logs readable).
      present.sort((x, y) => Number(x === this.switchNs) - Number(y === this.switchNs));
      for (const ns of present) {
        for (let i = 0; i < 5; i++) {
          const r = await runCommand(['ip', 'netns', 'pids', ns], { timeoutMs: 5_000 });
          const pids = r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number).filter((p) => p !== process.pid);
          if (pids.length === 0) break;
          for (const pid of pids) killPid(pid, 'SIGKILL');
          await sleep(20);
        }
        const r = await runCommand(['ip', 'netns', 'del', ns], { timeoutMs: 5_000 });
        if (r.code !== 0 && round === 4) problems.push(describeFailure(['ip', 'netns', 'del', ns], r));
      }
      await sleep(round * 50);
    }
    const left = listNamespaces().filter(mine);
    if (left.length) problems.push(`namespaces left: ${left.join(' ')}`);
  }

  /**
   * Synchronous cleanup for exit / signal handlers: SIGKILL to tracked process groups and to every
   * process in the namespaces, `ip netns del`, temp dir removal. Never throws.
   */
  destroySync(_reason) {
    this.#destroyed = true;
    try {
      for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) killGroup(c.pid, 'SIGKILL');
      let present = [];
      try {
        present = listNamespaces().filter((n) => n.startsWith(this.prefix));
      } catch {
        present = [...this.#nsList];
      }
      for (const ns of present) {
        for (let i = 0; i < 3; i++) {
          let out = '';
          try {
            out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 2_000, stdio: ['ignore', 'pipe', 'ignore'] });
          } catch {
            break;
          }
          const pids = out.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number).filter((p) => p !== process.pid);
          if (pids.length === 0) break;
          for (const pid of pids) killPid(pid, 'SIGKILL');
        }
        try {
          execFileSync('ip', ['netns', 'del', ns], { timeout: 2_000, stdio: 'ignore' });
        } catch {
          // the watchdog retries
        }
      }
      try {
        rmSync(this.tmpDirPath, { recursive: true, force: true });
      } catch {
        // the watchdog retries
      }
    } finally {
      unregister(this);
      // Closing the pipe lets the watchdog do a final sweep of anything that survived.
      this.#stopWatchdog();
    }
  }

  #stopWatchdog() {
    const w = this.#watchdog;
    this.#watchdog = undefined;
    if (!w) return;
    try {
      w.stdin.end();
    } catch {
      // already closed
    }
  }
}

function lossExpr(percent) {
  if (percent >= 100) return 'drop';
  const threshold = Math.round(percent * 100); // of 10000
  if (threshold <= 0) return undefined;
  return `numgen random mod 10000 < ${threshold} drop`;
}

function dedupe(xs) {
  return [...new Set(xs)];
}

/** An nft script that atomically replaces the harness table of `family` with `body` (nothing if empty). */
function replaceTable(family, body) {
  const lines = [`add table ${family} ${NFT_TABLE}`, `delete table ${family} ${NFT_TABLE}`];
  if (body.length) lines.push(`table ${family} ${NFT_TABLE} {`, ...body.map((l) => `  ${l}`), '}');
  return lines.join('\n') + '\n';
}

/**
 * Creates a topology, runs fn with it and always destroys it (also when fn throws). Resolves with
 * fn's result; if fn threw, that error wins over a cleanup error.
 */
export async function withTopology(fn, opts) {
  const net = await Topology.create(opts);
  let result;
  try {
    result = await fn(net);
  } catch (e) {
    await net.destroy().catch(() => {});
    throw e;
  }
  await net.destroy();
  return result;
}
