/**
 * The driver of the operator plane (operator-plane.ts, a pure step machine): it owns the clock and the
 * one timer, reads the member's state and configuration file for the machine, and carries the machine's
 * effects out in order: sends through the member, answers admin requests, feeds core events, writes the
 * configuration file, adopts configurations and records events.
 *
 * Who calls: the admin API (act), the member's receive path (its control handler), the timer or, with
 * autoTick false, the owner (tick). Never concurrently; nothing here blocks.
 */
import type { ClusterMessage, MemberId, OperatorAction } from '@gwcluster/wire';
import { ApiError } from './api-errors.js';
import { clusterConfiguration, liveTimings, readConfigFile, writeConfigFileAtomically, type ClusterConfiguration } from '../config/cluster-config.js';
import type { MemberNode } from '../control/member-node.js';
import { OperatorPlane, isOperatorMessage, type ActAnswer, type ActionOutcome, type MemberSnapshot, type OperatorEffect, type OperatorEvent } from './operator-plane.js';

export type { ActionOutcome } from './operator-plane.js';

export interface OperatorChannelOptions {
  readonly node: MemberNode;
  /** How long a forwarded action may take before the admin request fails with GW_FORWARD_TIMEOUT, ms (default 3000). */
  readonly requestTimeoutMs?: number;
  /** Retransmission period of a forwarded request, ms (default 250). */
  readonly retransmitMs?: number;
  /** Persist adopted configurations to the member's file (default true when the config has a file). */
  readonly persist?: boolean;
  /** Monotonic clock, ms. Default: performance.now(). */
  readonly clock?: () => number;
  /** Wall clock, ms since the epoch (request ids, history). Default: Date.now(). */
  readonly wallClock?: () => number;
  /** Run a timer for retransmissions and time-outs (default true); tests call tick() with simulated time. */
  readonly autoTick?: boolean;
  /** Writes an adopted configuration file; throws when it cannot. Default writeConfigFileAtomically. */
  readonly writeConfigFile?: (file: string, raw: Record<string, unknown>) => void;
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
  private readonly clock: () => number;
  private readonly wallClock: () => number;
  private readonly autoTick: boolean;
  private readonly writeConfigFile: (file: string, raw: Record<string, unknown>) => void;
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
    const requestTimeoutMs = opts.requestTimeoutMs ?? 3000;
    this.plane = new OperatorPlane({
      self: this.node.self,
      requestTimeoutMs,
      retransmitMs: opts.retransmitMs ?? 250,
      // Half the forwarding time-out, so that a change forwarded through another member is answered in time.
      confirmTimeoutMs: Math.floor(requestTimeoutMs / 2),
      persist: opts.persist ?? true,
    });
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
    const configFile = action === 'config' ? readConfigFile(this.node.config) : {};
    this.run({ type: 'act', now: this.clock(), wallNow: this.wallClock(), ticket, action, member, payload, view: this.view(), configFile });
    return answered.then((a) => {
      if (!a.ok) throw new ApiError(a.code, a.message);
      return a.outcome;
    });
  }

  private view(): MemberSnapshot {
    const st = this.node.status();
    return { role: st.role, master: st.master, members: st.members, movingUnits: st.movingUnits, config: this.node.config };
  }

  /** The member's control handler: true when the message was the operator plane's own. */
  private onMessage(from: MemberId, msg: ClusterMessage): boolean {
    if (isOperatorMessage(msg)) {
      // The file is read only for what may change it: a configuration update or a forwarded change.
      const changesConfig = msg.type === 'config-update' || (msg.type === 'operator-request' && msg.action === 'config');
      const configFile = changesConfig ? readConfigFile(this.node.config) : {};
      this.run({ type: 'message', now: this.clock(), from, message: msg, view: this.view(), configFile });
      return true;
    }
    this.run({ type: 'protocol-message', now: this.clock(), from, message: msg, role: this.node.core.role });
    return false;
  }

  /** Steps the machine with `event` and carries out its effects, feeding back what it asks for. */
  private run(event: OperatorEvent): void {
    let effects = this.plane.step(event);
    while (effects.length > 0) {
      let feedback: OperatorEvent | null = null;
      for (const effect of effects) feedback = this.carryOut(effect) ?? feedback;
      effects = feedback ? this.plane.step(feedback) : [];
    }
    this.schedule();
  }

  private carryOut(effect: OperatorEffect): OperatorEvent | null {
    switch (effect.type) {
      case 'send':
        this.node.sendControl(effect.to, effect.message);
        return null;
      case 'answer': {
        const resolve = this.waiting.get(effect.ticket);
        this.waiting.delete(effect.ticket);
        resolve?.(effect.answer);
        return null;
      }
      case 'core':
        this.node.submit(effect.event);
        return null;
      case 'note':
        this.node.note(effect.level, effect.kind, effect.message, effect.fields);
        return null;
      case 'persist':
        try {
          this.writeConfigFile(effect.file, effect.raw);
          return { type: 'persisted', now: this.clock(), error: null };
        } catch (e) {
          return { type: 'persisted', now: this.clock(), error: (e as Error).message };
        }
      case 'adopt':
        this.node.adoptConfig(effect.config, liveTimings(effect.config));
        this.history.push({ version: effect.config.cluster.configVersion, at: new Date(this.wallClock()).toISOString(), from: effect.from });
        if (this.history.length > HISTORY_SIZE) this.history.splice(0, this.history.length - HISTORY_SIZE);
        return null;
      case 'need-view':
        return { type: 'viewed', now: this.clock(), view: this.view() };
      case 'compare-after-core': {
        const { from, version } = effect;
        queueMicrotask(() => {
          if (!this.closed) this.run({ type: 'peer-version', now: this.clock(), from, version, config: this.node.config });
        });
        return null;
      }
    }
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
