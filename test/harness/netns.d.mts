// Hand-written declarations for ./netns.mjs (the harness is plain ESM so plain `node` scripts can import it).
import type { ChildProcess, SpawnOptions } from 'node:child_process';

/** Every namespace / temp dir the harness creates starts with this (scripts/netns-sweep.sh relies on it). */
export declare const PREFIX_ROOT: 'gwt';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed by a signal (e.g. on timeout). */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

export interface ExecOptions {
  /** Default 10000. On timeout the command's process group is SIGKILLed and `timedOut` is true. */
  timeoutMs?: number;
  /** Written to the command's stdin (otherwise stdin is /dev/null). */
  input?: string;
  env?: NodeJS.ProcessEnv;
}

export interface WaitForOptions {
  /** Default 5000. */
  timeoutMs?: number;
  /** Default 100. */
  intervalMs?: number;
  /** Named in the timeout error: "timed out after N ms waiting for <what>". */
  what?: string;
}

export interface TopologyOptions {
  /** Namespace-name prefix; must match /^gwt[a-z0-9]{1,24}-$/. Default `gwt<pid base36><3 random>-`. */
  prefix?: string;
  /** Grace between SIGTERM and SIGKILL of tracked processes in destroy(). Default 2000. */
  killGraceMs?: number;
  /** Bridge multicast snooping for all segments (default false: multicast is flooded). */
  mcastSnooping?: boolean;
  /**
   * Start the detached watchdog that cleans up after a SIGKILL of this process (default true).
   * Only worth disabling to test the in-process cleanup paths in isolation.
   */
  watchdog?: boolean;
}

export interface SegmentOptions {
  /** Bridge device name in the switch namespace (<= 15 chars). Default br0, br1, ... */
  bridgeName?: string;
  mcastSnooping?: boolean;
}

export interface InterfaceSpec {
  segment: Segment;
  /** TEST-NET IPv4 "a.b.c.d/len" (len >= 24), or several, or none. */
  address?: string | string[];
  /** Interface name inside the host namespace (<= 15 chars). Default eth<index>. */
  ifname?: string;
  /** Fixed MAC address "xx:xx:xx:xx:xx:xx" (default random). */
  mac?: string;
}

export interface HostOptions {
  /** sysctl settings applied inside the namespace, e.g. { 'net.ipv4.conf.all.arp_ignore': '1' }. */
  sysctl?: Record<string, string>;
  /** net.ipv4.ip_forward=1 */
  forwarding?: boolean;
}

export type LossDirection = 'in' | 'out' | 'both';

export interface LossOptions {
  /** Default 'both'. */
  direction?: LossDirection;
}

export interface PartitionOptions {
  /** Only traffic from the first group to the second. */
  oneWay?: boolean;
  /** Only on this segment (default: every segment both sides share). */
  segment?: Segment;
}

export interface PingOptions {
  /** Default 1. */
  count?: number;
  /** ping -W (seconds to wait for a reply). Default 1. */
  timeoutS?: number;
  /** ping -i (seconds between packets). */
  intervalS?: number;
  /** Which interface of a target Host to take the address from. */
  ifname?: string;
}

export interface HostInterface {
  readonly ifname: string;
  readonly segment: Segment;
  /** Port (veth peer) name inside the switch namespace. */
  readonly port: string;
  /** Configured addresses with prefix length. */
  readonly addresses: readonly string[];
  readonly mac: string | undefined;
}

export declare class Segment {
  private constructor();
  readonly topology: Topology;
  readonly name: string;
  /** Bridge device name in topology.switchNs. */
  readonly bridge: string;
  readonly hosts: Host[];
}

export declare class Host {
  private constructor();
  readonly topology: Topology;
  readonly name: string;
  /** Network namespace name (`ip netns exec <nsName> ...`). */
  readonly nsName: string;
  readonly interfaces: readonly HostInterface[];
  /** First IPv4 address (no prefix length) of `ifname`, default the first interface. Throws if none. */
  address(ifname?: string): string;
  /** First address with prefix length, e.g. "192.0.2.11/24". */
  cidr(ifname?: string): string;
  /** All configured addresses (no prefix length). */
  addresses(): string[];
  /** Switch-side port name of `ifname`. */
  port(ifname?: string): string;
  /** `ip netns exec <ns> ...argv`; resolves with the exit code (never rejects for a non-zero exit). */
  exec(argv: readonly (string | number)[], opts?: ExecOptions): Promise<ExecResult>;
  /** Like exec, rejects unless the exit code is 0 (message includes stderr). */
  execOk(argv: readonly (string | number)[], opts?: ExecOptions): Promise<ExecResult>;
  /** exec(['sh', '-c', script]). */
  sh(script: string, opts?: ExecOptions): Promise<ExecResult>;
  /** `ip ...args` inside the namespace; rejects on failure. */
  ip(...args: string[]): Promise<ExecResult>;
  /** true when at least one echo reply arrived (`ping -c count -W timeoutS`). TEST-NET targets only. */
  ping(target: Host | string, opts?: PingOptions): Promise<boolean>;
  /**
   * Starts `cmd args` in the namespace, in a new process group/session, tracked by the topology
   * (SIGTERM, then SIGKILL, on destroy; SIGKILL on process exit). `detached` is forced to true.
   * If `cmd` cannot be executed the child exits with code 255 (from `ip netns exec`).
   */
  spawn(cmd: string, args?: readonly (string | number)[], opts?: Omit<SpawnOptions, 'detached'>): ChildProcess;
  addAddress(ifname: string, cidr: string): Promise<void>;
  delAddress(ifname: string, cidr: string): Promise<void>;
  /** topology.setLoss(this, ifname, percent, opts) */
  setLoss(ifname: string | undefined, percent: number, opts?: LossOptions): Promise<void>;
}

export declare class Topology {
  private constructor();
  /** Creates the switch namespace (and the watchdog). Throws if not root / no `ip` / no `nft`. */
  static create(opts?: TopologyOptions): Promise<Topology>;
  /** e.g. "gwt1k2abc-"; every namespace of this topology starts with it. */
  readonly prefix: string;
  /** Name of the namespace holding the bridges. */
  readonly switchNs: string;
  readonly hosts: readonly Host[];
  readonly segments: readonly Segment[];
  readonly killGraceMs: number;
  /** Path tmpDir() creates: <os.tmpdir()>/<prefix>files. */
  readonly tmpDirPath: string;
  readonly destroyed: boolean;
  /** Pid of the detached watchdog (undefined after destroy). */
  readonly watchdogPid: number | undefined;
  /** Namespace names this topology created (or tried to). */
  readonly namespaces: string[];

  addSegment(name: string, opts?: SegmentOptions): Promise<Segment>;
  addHost(name: string, ifaces: readonly InterfaceSpec[], opts?: HostOptions): Promise<Host>;
  host(name: string): Host;
  /** Per-topology temp dir (created on first call), removed with the topology (also by the watchdog). */
  tmpDir(): string;

  /**
   * Random IPv4 packet loss on `ifname` (default: first interface) of `host`, nftables in the host's
   * namespace (prerouting for 'in', postrouting for 'out'). percent in [0, 100]; 0 removes the rule.
   * Does not affect ARP.
   */
  setLoss(host: Host, ifname: string | undefined, percent: number, opts?: LossOptions): Promise<void>;
  /**
   * Drops all traffic between every host of `a` and every host of `b`: bridge-level (switch namespace,
   * any protocol incl. ARP) plus IPv4 from/to the peers' configured addresses in the hosts' namespaces.
   */
  partition(a: Host | readonly Host[], b: Host | readonly Host[], opts?: PartitionOptions): Promise<void>;
  heal(a: Host | readonly Host[], b: Host | readonly Host[], opts?: PartitionOptions): Promise<void>;
  healAll(): Promise<void>;
  /** Current nft scripts per namespace (diagnostics). */
  rules(): Record<string, string>;

  /** Kills tracked processes (SIGTERM, SIGKILL after killGraceMs) and everything left in the namespaces, deletes them and the temp dir. Idempotent. */
  destroy(): Promise<void>;
  /** Synchronous best-effort cleanup (used by the exit/signal handlers). Never throws. */
  destroySync(reason?: string): void;
}

export declare function waitFor<T>(fn: () => T | Promise<T>, opts?: WaitForOptions): Promise<NonNullable<T>>;
/** Creates a topology, runs fn, always destroys it. */
export declare function withTopology<T>(fn: (net: Topology) => Promise<T> | T, opts?: TopologyOptions): Promise<T>;
export declare function isTestNetAddress(ip: string): boolean;
export declare function parseTestNetCidr(cidr: string): { ip: string; len: number; cidr: string };
/** `ip netns list` names. */
export declare function listNamespaces(): string[];
export declare function netnsSupported(): { ok: boolean; reason?: string };
export declare function liveTopologies(): Topology[];
export declare function destroyAllTopologies(): Promise<void>;
