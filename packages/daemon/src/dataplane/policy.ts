/**
 * The data-plane policy as a pure state machine: events in (the core's view after each step, its
 * hand-over requests, wake-ups with the time), effects out (packet-path calls, session hand-overs, the
 * answers the core waits for, when to be woken). No clock, timers or I/O inside; the facade
 * (data-plane.ts) carries the effects out in order, and tests drive it with simulated time.
 *
 * The rules (docs/dataplane.md):
 *   - Drain: a unit this member lets go of while not master is still accepted for `drainMs` after the
 *     view first showed it gone, so packets already on their way (the master stops sending them when it
 *     sends WORK DE-ASSIGN) are delivered, not dropped. Gaining a unit, and any change on the master,
 *     applies at once; a unit that comes back while draining simply stays.
 *   - Hold until acknowledged: the master holds the packets of units the view lists as `holding`
 *     (unassigned, or assigned and not yet acknowledged with WORK ACK) and releases them when the view
 *     stops listing them, after every owner change of the same view, in ascending unit order.
 *   - Hand-over before WORK ACK: a planned move's sessions are given to the new owner `handoverDelayMs`
 *     after the core asked (the drain has ended, so sessions created while draining are included); the
 *     core hears `handover-done` when the new owner acknowledged them (or the replicator gave up). With
 *     no session tracking there is nothing to hand over and the answer is immediate.
 */
import { UNIT_COUNT, type MemberId, type WorkUnit } from '@gwcluster/wire';
import { NO_SLOT } from './packet-path.js';
import { AppliedOwnership, SlotTable, targetHeld, targetSlot, type DataPlaneView } from './ownership.js';

export interface DataPlanePolicyConfig {
  readonly self: MemberId;
  /** A unit this member lets go of (not master) is still accepted for this long, ms. */
  readonly drainMs: number;
  /** A hand-over starts this long after the core asked for it, ms; more than drainMs. */
  readonly handoverDelayMs: number;
  /** Session tracking is on: a hand-over gives the new owner the sessions (off: done at once). */
  readonly sessions: boolean;
}

/** The drain of a unit let go of, ms: long enough for packets in flight on a LAN, short against a failover. */
export const HANDOVER_DRAIN_MS = 50;

export function dataPlanePolicyConfig(self: MemberId, sessions: boolean): DataPlanePolicyConfig {
  // The hand-over waits for the drain to end (10 ms later, so the drain's last packets are in the table).
  return { self, drainMs: HANDOVER_DRAIN_MS, handoverDelayMs: HANDOVER_DRAIN_MS + 10, sessions };
}

export type DataPlaneEvent =
  /** The core's view after a step (MemberNode calls the facade's sync() after every batch of events). */
  | { readonly type: 'view'; readonly now: number; readonly view: DataPlaneView }
  /** Time passed (the facade delivers one at each `wake`; any extra tick is harmless). */
  | { readonly type: 'tick'; readonly now: number }
  /** The core's `handover` effect: WORK DE-ASSIGN of `units` to `to` ('' when nobody takes them). */
  | { readonly type: 'handover'; readonly now: number; readonly requestId: number; readonly units: readonly WorkUnit[]; readonly to: MemberId | '' }
  /** The session sync finished the hand-over started by `hand-over-sessions`. */
  | { readonly type: 'sessions-handed-over'; readonly now: number; readonly requestId: number; readonly complete: boolean };

export type DataPlaneEffect =
  /** PacketPath.setRole with this member's slot. */
  | { readonly type: 'set-role'; readonly master: boolean }
  | { readonly type: 'set-owner'; readonly unit: WorkUnit; readonly slot: number }
  | { readonly type: 'hold'; readonly unit: WorkUnit }
  | { readonly type: 'release'; readonly unit: WorkUnit }
  /** A member got a packet-path slot: learn its MAC for it (neighbours.ts). */
  | { readonly type: 'new-slot'; readonly member: MemberId; readonly slot: number }
  /** Give `to` the sessions of `units` (session sync); answer with `sessions-handed-over`. */
  | { readonly type: 'hand-over-sessions'; readonly requestId: number; readonly units: readonly WorkUnit[]; readonly to: MemberId | '' }
  /** Tell the core the hand-over is done (core event `handover-done`); `complete` false: not acknowledged. */
  | { readonly type: 'handover-done'; readonly requestId: number; readonly complete: boolean }
  /** Deliver a `tick` at `at` (ms, the events' clock); replaces any earlier wake request. */
  | { readonly type: 'wake'; readonly at: number };

interface PendingHandover {
  readonly requestId: number;
  readonly units: readonly WorkUnit[];
  readonly to: MemberId | '';
  readonly at: number;
}

export interface DataPlanePolicyCounters {
  /** Passes over the unit table (views, and wake-ups that ended a drain). */
  syncs: number;
  holds: number;
  releases: number;
}

export class DataPlanePolicy {
  readonly applied = new AppliedOwnership();
  readonly counters: DataPlanePolicyCounters = { syncs: 0, holds: 0, releases: 0 };
  private readonly slots: SlotTable;
  private master = false;
  private view: DataPlaneView | null = null;
  /** Units let go of and still accepted: unit -> time from which the new owner applies. */
  private readonly draining = new Map<WorkUnit, number>();
  /** In the order asked (and so of `at`). */
  private readonly handovers: PendingHandover[] = [];
  private wakeAt: number | null = null;
  private effects: DataPlaneEffect[] = [];

  constructor(readonly config: DataPlanePolicyConfig) {
    this.slots = new SlotTable(config.self);
  }

  /** The last view (null before the first). */
  get lastView(): DataPlaneView | null {
    return this.view;
  }

  step(event: DataPlaneEvent): DataPlaneEffect[] {
    this.effects = [];
    switch (event.type) {
      case 'view':
        this.view = event.view;
        this.reconcile(event.now);
        break;
      case 'tick':
        // The wake asked for is used up (or the tick came early): what is still pending is asked again.
        this.wakeAt = null;
        if (this.view && this.draining.size > 0) this.reconcile(event.now);
        this.startDueHandovers(event.now);
        break;
      case 'handover':
        if (!this.config.sessions) this.emit({ type: 'handover-done', requestId: event.requestId, complete: true });
        else this.handovers.push({ requestId: event.requestId, units: event.units, to: event.to, at: event.now + this.config.handoverDelayMs });
        break;
      case 'sessions-handed-over':
        this.emit({ type: 'handover-done', requestId: event.requestId, complete: event.complete });
        break;
    }
    this.requestWake();
    return this.effects;
  }

  private emit(effect: DataPlaneEffect): void {
    this.effects.push(effect);
  }

  /** Brings the packet path in line with the view (1024 comparisons); releases come last, in unit order. */
  private reconcile(now: number): void {
    const view = this.view!;
    const applied = this.applied;
    this.counters.syncs++;
    if (view.master !== this.master) {
      this.master = view.master;
      this.emit({ type: 'set-role', master: view.master });
    }
    const releases: WorkUnit[] = [];
    for (let u = 0; u < UNIT_COUNT; u++) {
      const slot = targetSlot(view, u, this.config.self, this.slots, (member, s) => this.emit({ type: 'new-slot', member, slot: s }));
      if (slot !== applied.slot[u]) {
        if (applied.serves(u) && !view.master) {
          const until = this.draining.get(u);
          if (until === undefined) this.draining.set(u, now + this.config.drainMs);
          else if (now >= until) this.setOwner(u, slot);
        } else {
          this.setOwner(u, slot);
        }
      } else {
        this.draining.delete(u);
      }
      const held = targetHeld(view, u) ? 1 : 0;
      if (held !== applied.held[u]) {
        applied.held[u] = held;
        if (held) {
          this.emit({ type: 'hold', unit: u });
          this.counters.holds++;
        } else if (slot !== NO_SLOT) {
          releases.push(u);
        }
      }
    }
    for (const u of releases) {
      this.emit({ type: 'release', unit: u });
      this.counters.releases++;
    }
    // Every member gets its slot (and its MAC learnt) once it is a member, not only when it first owns
    // a unit (after the owners, which keep the order first seen): with unitAssignment first-packet a
    // unit's first owner is chosen while its packets are held, and the master must be able to forward
    // them to that owner at once.
    for (const m of view.members) {
      if (m === this.config.self) continue;
      const { slot, added } = this.slots.slotOf(m);
      if (added) this.emit({ type: 'new-slot', member: m, slot });
    }
  }

  private setOwner(unit: WorkUnit, slot: number): void {
    this.draining.delete(unit);
    this.applied.slot[unit] = slot;
    this.emit({ type: 'set-owner', unit, slot });
  }

  private startDueHandovers(now: number): void {
    while (this.handovers.length > 0 && this.handovers[0]!.at <= now) {
      const h = this.handovers.shift()!;
      this.emit({ type: 'hand-over-sessions', requestId: h.requestId, units: h.units, to: h.to });
    }
  }

  /** Asks for a tick at the earliest deadline (drain end, hand-over start) unless already asked. */
  private requestWake(): void {
    let next = Infinity;
    for (const until of this.draining.values()) if (until < next) next = until;
    if (this.handovers.length > 0 && this.handovers[0]!.at < next) next = this.handovers[0]!.at;
    if (next === Infinity || next === this.wakeAt) return;
    this.wakeAt = next;
    this.emit({ type: 'wake', at: next });
  }
}
