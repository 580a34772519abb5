// Topology: the switch namespace, its segments and hosts, partitions and loss, and the destruction
// of all of it (see netns.mjs for the model and the cleanup guarantees).

import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errMessage, killGroup, listNamespaces, netnsSupported, runOk } from './commands.mjs';
import { sleep } from './wait.mjs';
import { parseTestNetCidr } from './test-net.mjs';
import { Host, Segment } from './host.mjs';
import { hostRules, switchRules } from './nft-rules.mjs';
import { register, removeNamespaces, removeNamespacesSync, startWatchdog, stopWatchdog, unregister } from './cleanup.mjs';

/** Every namespace / temp dir the harness creates starts with this (scripts/netns-sweep.sh relies on it). */
export const PREFIX_ROOT = 'gwt';

const PREFIX_RE = /^gwt[a-z0-9]{1,24}-$/;
const NAME_RE = /^[a-z0-9][a-z0-9_]{0,23}$/i; // host / segment names (become part of namespace names)
const IFNAME_RE = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,14}$/; // <= 15 chars (IFNAMSIZ - 1)
const DEFAULT_KILL_GRACE_MS = 2_000;

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
      const jobs = [runOk(['ip', 'netns', 'exec', this.switchNs, 'nft', '-f', '-'], { input: switchRules(this.#blocked.values()) })];
      for (const h of this.hosts) {
        jobs.push(runOk(['ip', 'netns', 'exec', h.nsName, 'nft', '-f', '-'], { input: hostRules(h, this.#blocked.values(), this.#loss.get(h)) }));
      }
      await Promise.all(jobs);
    };
    const p = this.#filterChain.then(run, run);
    this.#filterChain = p.catch(() => {});
    return p;
  }

  /** Current filter rules as nft scripts, per namespace (diagnostics). */
  rules() {
    const out = { [this.switchNs]: switchRules(this.#blocked.values()) };
    for (const h of this.hosts) out[h.nsName] = hostRules(h, this.#blocked.values(), this.#loss.get(h));
    return out;
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
      await removeNamespaces(this.prefix, this.switchNs, problems);
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

  /**
   * Synchronous cleanup for exit / signal handlers: SIGKILL to tracked process groups and to every
   * process in the namespaces, `ip netns del`, temp dir removal. Never throws.
   */
  destroySync(_reason) {
    this.#destroyed = true;
    try {
      for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) killGroup(c.pid, 'SIGKILL');
      removeNamespacesSync(this.prefix, this.#nsList);
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
    stopWatchdog(w);
  }
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
