import type { ChildProcess } from 'node:child_process';
import type { Host, Topology, Segment, ExecResult } from '../harness/netns.mjs';

export declare const GWCTL: string;
export declare const GWCLUSTERD: string;
/** The command that runs gwctl / gwclusterd (GWCLUSTER_PREFIX: an unpacked package; GWCLUSTER_RUN_AS: as that user, CAP_NET_ADMIN and CAP_NET_RAW only). */
export declare const GWCTL_CMD: string[];
export declare const GWCLUSTERD_CMD: string[];
export declare const CLUSTER_IP: string;
export declare const TOKEN: string;
export declare const INSIDE_CLUSTER_IP: string;

export interface MemberView {
  role: string;
  master: string | null;
  epoch: number;
  members: string[];
  assigned: number;
  moving: number;
  owned: number;
  configVersion: number;
  error?: string;
}
export type Views = Record<string, MemberView>;
export interface Sample {
  t: number;
  views: Views;
}
export interface LogLine {
  time: number;
  msg?: string;
  [k: string]: unknown;
}
export interface EchoStats {
  name: string;
  tcpConnections: number;
  tcpBytes: number;
  tcpErrors: number;
  udpDatagrams: number;
  udpBytes: number;
  peers: Record<string, number>;
  udpPeers: Record<string, number>;
}
export interface FlowSummary {
  ok: number;
  failed: number;
  resets: number;
  errors: Record<string, number>;
}
export interface TrafficSummary {
  tcp?: FlowSummary;
  udp?: FlowSummary;
  flows: { proto: 'tcp' | 'udp'; sport: number; ok: boolean }[];
  stream?: { sport: number; sent: number; received: number; missing: number[] };
  error?: string;
}
export interface FixtureMember {
  outsideIp?: string;
  ip: string;
  host: Host;
  config: string;
  name: string;
}

export declare class ClusterFixture {
  static create(opts?: { members?: number; extraConfig?: Record<string, unknown>; layout?: 'lan' | 'gateway'; method?: 'master-forward' | 'unicast-mac' | 'multicast-mac'; clients?: number }): Promise<ClusterFixture>;
  layout: 'lan' | 'gateway';
  outside?: Segment;
  clients?: Host[];
  server?: Host;
  /** `ready` resolves once the echo server listens on TCP 7000 and UDP 7001. */
  startEcho(host: Host, name?: string): { child: ChildProcess; ready: Promise<void>; stop(): Promise<EchoStats | null> };
  traffic(host: Host, args: string[], timeoutMs?: number): Promise<TrafficSummary>;
  net: Topology;
  lan: Segment;
  ops: Host;
  caDir: string;
  members: FixtureMember[];
  samples: Sample[];
  logs: Map<string, LogLine[]>;
  /** The running gwclusterd process of each member, by member ip (absent once killed with kill9). */
  procs: Map<string, ChildProcess>;
  member(ipOrName: string): FixtureMember;
  start(ip: string, opts?: { env?: Record<string, string>; command?: readonly string[] }): ChildProcess;
  startAll(): void;
  signal(ip: string, signal: NodeJS.Signals): number;
  kill9(ip: string): number;
  /** The gwclusterd process of each running member, by address. */
  procs: Map<string, ChildProcess>;
  startMonitor(intervalMs?: number): void;
  latest(): Sample | undefined;
  /** holdMs: the predicate must hold on every sample for that long (a settled state, not a passing one). */
  waitForView(pred: (views: Views) => boolean, opts?: { since?: number; timeoutMs?: number; what?: string; holdMs?: number }): Promise<Sample>;
  gwctl(args: string[], opts?: { via?: Host; endpoint?: string }): Promise<ExecResult>;
  logLine(ip: string, re: RegExp, since?: number): LogLine | undefined;
  /** The last `n` log lines of every member (time and message), for an assertion's message. */
  recentLogs(n?: number): string;
  destroy(): Promise<void>;
}

export declare function healthy(views: Views, ips: readonly string[]): boolean;
export declare function balanced(views: Views, ips: readonly string[]): boolean;
export declare function shared(views: Views, ips: readonly string[], share?: number): boolean;
