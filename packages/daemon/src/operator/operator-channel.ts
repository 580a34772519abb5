/**
 * The driver of the operator plane (operator-plane.ts, a pure step machine) in a running member: it owns
 * the clock and the one timer, and is the OperatorHost (operator-host.ts, the routing and effect loop it
 * shares with the simulator) over the member: sends through it, answers admin requests, feeds core
 * events, writes the configuration file, adopts configurations and records events.
 *
 * Who calls: the admin API (act), the member's receive path (its control handler), the timer or, with
 * autoTick false, the owner (tick). Never concurrently; nothing here blocks.
 */
import type { ClusterMessage, MemberId, OperatorAction } from '@gwcluster/wire';
import { networkInterfaces } from 'node:os';
import type { HostSubnet } from '@gwcluster/contracts';
import { ApiError } from './api-errors.js';
import { clusterConfiguration, readConfigFile, writeConfigFileAtomically, type ClusterConfiguration } from '../config/cluster-config.js';
import type { MemberNode } from '../control/member-node.js';
import type { MemberConfig } from '../config/config.js';
import { OperatorPlane, type ActAnswer, type ActionOutcome, type MemberSnapshot, type OperatorEvent } from './operator-plane.js';
import { actOnOperatorPlane, receiveOnOperatorPlane, runOperatorPlane, type OperatorHost } from './operator-host.js';

export type { ActionOutcome } from './operator-plane.js';

export interface OperatorChannelOptions {
  readonly node: MemberNode;
  /** How long a forwarded action may take before the admin request fails with GW_FORWARD_TIMEOUT, ms (default 3000). */
  readonly requestTimeoutMs?: number;
  /** Retransmission period of a forwarded request, ms (default 250). */
  readonly retransmitMs?: number;
  /** Persist adopted configurations to the member's file (default true when the config has a file). */
  readonly persist?: boolean;
  /** This host's IPv4 interface addresses (default: os.networkInterfaces()). */
  readonly hostSubnets?: () => readonly HostSubnet[];
  /** Monotonic clock, ms. Default: performance.now(). */
  readonly clock?: () => number;
  /** Wall clock, ms since the epoch (request ids, history). Default: Date.now(). */
  readonly wallClock?: () => number;
  /** Run a timer for retransmissions and time-outs (default true); tests call tick() with simulated time. */
  readonly autoTick?: boolean;
  /** Writes an adopted configuration file; throws when it cannot. Default writeConfigFileAtomically. */
  readonly writeConfigFile?: (file: string, raw: Record<string, unknown>) => void;
  /** The configuration's file form that a change is built on. Default readConfigFile (the file itself). */
  readonly readConfigFile?: (config: MemberConfig) => Record<string, unknown>;
}

/** A configuration version adopted by this member, for GET /v1/config. */
export interface AdoptedConfiguration {
  version: number;
  at: string;
  from: MemberId | 'operator' | 'file';
}

const HISTORY_SIZE = 50;

export class OperatorChannel {
  private readonly node: MemberNode;
  private readonly plane: OperatorPlane;
  private readonly host: OperatorHost;
  private readonly clock: () => number;
  private readonly wallClock: () => number;
  private readonly autoTick: boolean;
  private readonly writeConfigFile: (file: string, raw: Record<string, unknown>) => void;
  private readonly readConfigFile: (config: MemberConfig) => Record<string, unknown>;
  private timer: NodeJS.Timeout | null = null;
  private readonly waiting = new Map<number, (answer: ActAnswer) => void>();
  private ticketCounter = 0;
  private closed = false;
  /** Configuration versions adopted by this member, oldest first (at most HISTORY_SIZE). */
  readonly history: AdoptedConfiguration[] = [];

  constructor(opts: OperatorChannelOptions) {
    this.node = opts.node;
    this.clock = opts.clock ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? (() => Date.now());
    this.autoTick = opts.autoTick ?? true;
    this.writeConfigFile = opts.writeConfigFile ?? writeConfigFileAtomically;
    this.readConfigFile = opts.readConfigFile ?? readConfigFile;
    const requestTimeoutMs = opts.requestTimeoutMs ?? 3000;
    this.plane = new OperatorPlane({
      self: this.node.self,
      requestTimeoutMs,
      retransmitMs: opts.retransmitMs ?? 250,
      // Half the forwarding time-out, so that a change forwarded through another member is answered in time.
      confirmTimeoutMs: Math.floor(requestTimeoutMs / 2),
      persist: opts.persist ?? true,
      hostSubnets: opts.hostSubnets ?? hostSubnets,
    });
    this.host = this.memberHost();
    this.history.push({ version: this.node.config.cluster.configVersion, at: new Date(this.wallClock()).toISOString(), from: 'file' });
    this.node.setControlHandler((from, msg) => this.onMessage(from, msg));
  }

  get configuration(): ClusterConfiguration {
    return clusterConfiguration(this.node.config);
  }

  /** Stops retransmissions; pending actions fail with GW_NO_MASTER. */
  close(): void {
    this.closed = true;
    this.run({ type: 'close', now: this.clock() });
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.node.setControlHandler(null);
  }

  /** The current master as this member knows it, or null. */
  master(): MemberId | null {
    return this.node.core.master;
  }

  /** Retransmits and times out forwarded actions due at the clock's now. */
  tick(): void {
    this.run({ type: 'tick', now: this.clock() });
  }

  /**
   * Carries out an operator action here or on the member it belongs to. Throws ApiError with the
   * receiver's code when refused, GW_NO_MASTER / GW_FORWARD_TIMEOUT when it cannot be delivered.
   */
  act(action: OperatorAction, member: MemberId | '', payload: Record<string, unknown> = {}): Promise<ActionOutcome> {
    const ticket = ++this.ticketCounter;
    const answered = new Promise<ActAnswer>((resolve) => this.waiting.set(ticket, resolve));
    actOnOperatorPlane(this.plane, this.host, { ticket, wallNow: this.wallClock(), action, member, payload });
    this.schedule();
    return answered.then((a) => {
      if (!a.ok) throw new ApiError(a.code, a.message);
      return a.outcome;
    });
  }

  private view(): MemberSnapshot {
    const st = this.node.status();
    return { role: st.role, master: st.master, members: st.members, movingUnits: st.movingUnits, config: this.node.config, pool: st.addresses.pool };
  }

  /** The member's control handler: true when the message was the operator plane's own. */
  private onMessage(from: MemberId, msg: ClusterMessage): boolean {
    const consumed = receiveOnOperatorPlane(this.plane, this.host, from, msg);
    this.schedule();
    return consumed;
  }

  private run(event: OperatorEvent): void {
    runOperatorPlane(this.plane, event, this.host);
    this.schedule();
  }

  /** The plane's effects on this member: its node, its configuration file, the waiting admin requests. */
  private memberHost(): OperatorHost {
    return {
      now: () => this.clock(),
      view: () => this.view(),
      config: () => this.node.config,
      configFile: () => this.readConfigFile(this.node.config),
      role: () => this.node.core.role,
      send: (to, message) => this.node.sendControl(to, message),
      answer: (ticket, answer) => {
        const resolve = this.waiting.get(ticket);
        this.waiting.delete(ticket);
        resolve?.(answer);
      },
      core: (event) => this.node.submit(event),
      note: (level, kind, message, fields) => void this.node.note(level, kind, message, fields),
      count: (name) => {
        this.node.counters[name] = (this.node.counters[name] ?? 0) + 1;
      },
      persist: (file, raw) => {
        try {
          this.writeConfigFile(file, raw);
          return null;
        } catch (e) {
          return (e as Error).message;
        }
      },
      adopt: (config, from) => {
        this.node.adoptConfig(config);
        this.history.push({ version: config.cluster.configVersion, at: new Date(this.wallClock()).toISOString(), from });
        if (this.history.length > HISTORY_SIZE) this.history.splice(0, this.history.length - HISTORY_SIZE);
      },
      afterCore: (step) =>
        queueMicrotask(() => {
          if (this.closed) return;
          step();
          this.schedule();
        }),
    };
  }

  /** One timer, due when the machine next has something to do; none with autoTick off. */
  private schedule(): void {
    if (!this.autoTick || this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const at = this.plane.nextWakeAt();
    if (at !== null) this.timer = setTimeout(() => this.tick(), Math.max(0, at - this.clock()));
  }
}

/** This host's IPv4 interface addresses with their prefixes (the pool's interface check). */
function hostSubnets(): HostSubnet[] {
  return Object.entries(networkInterfaces()).flatMap(([iface, list]) =>
    (list ?? []).filter((a) => a.family === 'IPv4' && a.cidr).map((a) => ({ iface, address: a.address, prefixLength: Number(a.cidr!.split('/')[1]) })),
  );
}
