import type { ChildProcess } from 'node:child_process';
import type { Host, Segment, Topology } from '../../test/harness/netns.mjs';

export declare const OUTSIDE_VIP: string;
export declare const INSIDE_VIP: string;

export interface Box {
  name: string;
  host: Host;
  dir: string;
  insideIp: string;
  outsideIp: string;
  keepalivedConf: string;
  conntrackdConf: string;
  conntrackdLock: string;
  conntrackdSocket: string;
  logs: { keepalived: string; conntrackd: string };
}

export declare class KeepalivedBaseline {
  static create(opts?: { boxes?: number; clients?: number; advertInt?: string }): Promise<KeepalivedBaseline>;
  net: Topology;
  inside: Segment;
  outside: Segment;
  boxes: Box[];
  clients: Host[];
  server: Host;
  box(name: string): Box;
  start(name: string, opts?: { flush?: boolean }): Promise<void>;
  startAll(): Promise<void>;
  holders(vip?: string): Promise<string[]>;
  waitForActive(opts?: { timeoutMs?: number; not?: string[] }): Promise<string>;
  tookOverAt(name: string, since?: number): number | undefined;
  pids(name: string): Promise<number[]>;
  kill9(name: string): Promise<number>;
  powerLoss(name: string): Promise<number>;
  restore(name: string): Promise<void>;
  startEcho(): ChildProcess;
  destroy(): Promise<void>;
}
