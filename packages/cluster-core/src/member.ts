/**
 * The cluster protocol of one member as a pure state machine (digest section 1; Figures 6, 8A-8I, 9).
 *
 *   const m = new ClusterMember(config);
 *   const effects = m.step({ type: 'start', now });   // then for every event: m.step(event)
 *
 * step() never performs I/O, reads no clock and draws no random number: the same events give the same
 * effects. The driver (packages/daemon) carries the effects out: it sends messages, binds the cluster
 * IP, programs the data plane, asks applications, writes logs. step() is not re-entrant: the driver must
 * not call it again from inside the handling of its effects, and never concurrently.
 *
 * The role is a tagged union (roles/shared.ts RoleState); every event goes through the current role's
 * step function (roles/joining.ts, offering.ts, member.ts, master.ts, idle.ts), in the manner of
 * etcd-raft's stepLeader/stepFollower. The state is private: outside code reads it through CoreView
 * (view.ts) and changes it only through step().
 */
import type { MemberId, WorkUnit } from '@gwcluster/wire';
import type { CoreConfig } from './config.js';
import type { CoreEffect, CoreEvent, Role } from './events.js';
import { stepIdle } from './roles/idle.js';
import { enterJoining, stepJoining } from './roles/joining.js';
import { enterMaster, stepMaster } from './roles/master.js';
import { enterMember, stepMember } from './roles/member.js';
import { enterOffering, stepOffering } from './roles/offering.js';
import { enterIdle, MemberCore, type RoleTransitions } from './roles/shared.js';
import { dataPlaneView, statusView, type ClusterStatus, type CoreView, type DataPlaneView } from './view.js';

const TRANSITIONS: RoleTransitions = {
  joining: enterJoining,
  offering: enterOffering,
  master: enterMaster,
  member: enterMember,
  idle: enterIdle,
};

/** Hands the event to the current role's step function. */
function stepRole(c: MemberCore, e: CoreEvent): void {
  const r = c.role;
  switch (r.kind) {
    case 'joining':
      return stepJoining(c, r, e);
    case 'offering':
      return stepOffering(c, r, e);
    case 'member':
      return stepMember(c, r, e);
    case 'master':
      return stepMaster(c, r, e);
    default:
      return stepIdle(c, r, e);
  }
}

export class ClusterMember implements CoreView {
  readonly #core: MemberCore;

  constructor(config: CoreConfig) {
    this.#core = new MemberCore(config, TRANSITIONS);
  }

  /** Feeds one event; returns the effects to carry out, in order. */
  step(event: CoreEvent): CoreEffect[] {
    const c = this.#core;
    c.beginStep();
    if (event.type === 'message') {
      // A member's own broadcasts come back to it: not an input.
      if (event.from === c.self) return c.takeEffects();
      c.noteEpoch(event.message);
      c.count(`rx.${event.message.type}`);
    }
    if (event.type === 'tick') {
      c.tickLate = c.lastTickAt !== undefined && event.now - c.lastTickAt > c.config.keepalivePeriodMs;
      if (c.tickLate) c.count('watchdog.deferred-late-tick');
      c.lastTickAt = event.now;
    }
    if (event.type === 'peer-alive') c.vouched.add(event.peer);
    else if (event.type === 'peer-silent') c.vouched.delete(event.peer);
    stepRole(c, event);
    return c.takeEffects();
  }

  get self(): MemberId {
    return this.#core.self;
  }

  get role(): Role {
    return this.#core.role.kind;
  }

  get config(): CoreConfig {
    return this.#core.config;
  }

  get configVersion(): number {
    return this.#core.configVersion;
  }

  get master(): MemberId | null {
    return this.#core.knownMaster();
  }

  get epoch(): number {
    return this.#core.knownEpoch();
  }

  get owned(): ReadonlySet<WorkUnit> {
    return this.#core.owned;
  }

  get masterLoss(): number | null {
    const r = this.#core.role;
    return r.kind === 'member' ? r.masterLoss : null;
  }

  get syncReady(): boolean {
    return this.#core.syncReady;
  }

  get counters(): Readonly<Record<string, number>> {
    return { ...this.#core.counters };
  }

  status(now: number): ClusterStatus {
    return statusView(this.#core, now);
  }

  dataPlaneView(holdHandover = false): DataPlaneView {
    return dataPlaneView(this.#core, holdHandover);
  }
}
