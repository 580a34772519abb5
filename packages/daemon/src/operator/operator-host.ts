/**
 * How the operator plane (operator-plane.ts, a pure step machine) meets its member: which received
 * messages it takes, what it reads with each event, and the loop that carries its effects out through an
 * OperatorHost, stepping the feedback it asks for (`viewed`, `persisted`, `peer-version`). The same code
 * runs in gwclusterd (operator-channel.ts: real clock, files, timer) and in the simulator (sim/: virtual
 * time, files in memory). Nothing here reads a clock or does I/O; the host does, when called.
 */
import type { ClusterMessage, MemberId, OperatorAction } from '@gwcluster/wire';
import type { MemberConfig } from '../config/config.js';
import { isOperatorMessage, type ActAnswer, type MemberSnapshot, type OperatorCoreEvent, type OperatorEffect, type OperatorEvent, type OperatorPlane } from './operator-plane.js';

/**
 * The member's side of the operator plane. Called synchronously, in effect order, never concurrently;
 * nothing may block.
 */
export interface OperatorHost {
  /** Monotonic clock, ms. */
  now(): number;
  /** The member's state and configuration now. */
  view(): MemberSnapshot;
  /** The configuration in force now (cheaper than view() when only it is needed). */
  config(): MemberConfig;
  /** The configuration file's raw JSON now (read only for what may change the configuration). */
  configFile(): Record<string, unknown>;
  /** The core's role before it handles the message being received. */
  role(): string;
  /** Seals and sends an operator-plane message (best effort; the plane retransmits). */
  send(to: MemberId, message: ClusterMessage): void;
  /** The answer to the admin request `ticket`. */
  answer(ticket: number, answer: ActAnswer): void;
  /** Feeds the core an operator event. */
  core(event: OperatorCoreEvent): void;
  /** Records and logs an operator or configuration event. */
  note(level: 'info' | 'warn' | 'error', kind: 'operator' | 'config', message: string, fields: Record<string, unknown>): void;
  /** Adds one to the member's node counter `name`. */
  count(name: string): void;
  /** Writes `raw` to `file` atomically; null when written, else what failed. */
  persist(file: string, raw: Record<string, unknown>): string | null;
  /** Runs `config` (already persisted): the core takes its version and live timings. */
  adopt(config: MemberConfig, from: MemberId | 'operator'): void;
  /** Calls `step` once the core has handled the message being received (and sent its answer). */
  afterCore(step: () => void): void;
}

/** Steps `plane` with `event` and carries out its effects through `host`, feeding back what it asks for. */
export function runOperatorPlane(plane: OperatorPlane, event: OperatorEvent, host: OperatorHost): void {
  let effects = plane.step(event);
  while (effects.length > 0) {
    let feedback: OperatorEvent | null = null;
    for (const effect of effects) feedback = carryOut(plane, effect, host) ?? feedback;
    effects = feedback ? plane.step(feedback) : [];
  }
}

function carryOut(plane: OperatorPlane, effect: OperatorEffect, host: OperatorHost): OperatorEvent | null {
  switch (effect.type) {
    case 'send':
      host.send(effect.to, effect.message);
      return null;
    case 'answer':
      host.answer(effect.ticket, effect.answer);
      return null;
    case 'core':
      host.core(effect.event);
      return null;
    case 'note':
      host.note(effect.level, effect.kind, effect.message, effect.fields);
      return null;
    case 'count':
      host.count(effect.name);
      return null;
    case 'persist':
      return { type: 'persisted', now: host.now(), error: host.persist(effect.file, effect.raw) };
    case 'adopt':
      host.adopt(effect.config, effect.from);
      return null;
    case 'need-view':
      return { type: 'viewed', now: host.now(), view: host.view() };
    case 'compare-after-core': {
      const { from, version } = effect;
      host.afterCore(() => runOperatorPlane(plane, { type: 'peer-version', now: host.now(), from, version, config: host.config() }, host));
      return null;
    }
  }
}

/** An admin request for an action; answered through host.answer(ticket). */
export function actOnOperatorPlane(
  plane: OperatorPlane,
  host: OperatorHost,
  act: { readonly ticket: number; readonly wallNow: number; readonly action: OperatorAction; readonly member: MemberId | ''; readonly payload: Readonly<Record<string, unknown>> },
): void {
  const configFile = act.action === 'config' ? host.configFile() : {};
  runOperatorPlane(plane, { type: 'act', now: host.now(), ...act, view: host.view(), configFile }, host);
}

/**
 * A received message, before the core: true when it is the operator plane's own (consumed); other
 * messages are shown to the plane (it compares configuration versions once the core has handled them)
 * and passed on (false).
 */
export function receiveOnOperatorPlane(plane: OperatorPlane, host: OperatorHost, from: MemberId, message: ClusterMessage): boolean {
  if (isOperatorMessage(message)) {
    // The file is read only for what may change it: a configuration update or a forwarded change.
    const changesConfig = message.type === 'config-update' || (message.type === 'operator-request' && message.action === 'config');
    const configFile = changesConfig ? host.configFile() : {};
    runOperatorPlane(plane, { type: 'message', now: host.now(), from, message, view: host.view(), configFile }, host);
    return true;
  }
  runOperatorPlane(plane, { type: 'protocol-message', now: host.now(), from, message, role: host.role() }, host);
  return false;
}
