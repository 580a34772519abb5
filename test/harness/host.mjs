// The parts of a topology: Segment (a bridge in the switch namespace) and Host (a namespace with
// veth interfaces plugged into segments), with the commands a test runs inside a host.

import { spawn } from 'node:child_process';
import { describeFailure, runCommand } from './commands.mjs';
import { isTestNetAddress, parseTestNetCidr } from './test-net.mjs';


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
