import type { ClusterMessage, MemberId, UnitLoad, WorkUnit } from '@gwcluster/wire';
import type { CoreConfig } from './config.js';

/** The fields of CoreConfig a propagated cluster configuration may change while the member runs. */
export type CoreTimings = Pick<
  CoreConfig,
  'keepalivePeriodMs' | 'joinTimeoutMs' | 'offerTimeoutMs' | 'lossToleranceK' | 'minWatchdogPeriods' | 'maxWatchdogPeriods' | 'rebalanceIntervalMs' | 'maxMovesPerRebalance' | 'rebalanceThreshold' | 'reclaimGraceMs' | 'addressPool' | 'memberAddressTakeover' | 'addressPoolFailback'
>;

/**
 * Everything that can happen to a member, as data. `now` is a monotonic clock in ms supplied by the
 * driver (the core never reads a clock).
 */
export type CoreEvent =
  /** The member boots (or re-enters after leave): it starts joining. */
  | { readonly type: 'start'; readonly now: number }
  /** Time passed. The driver ticks at least every keepalivePeriodMs / 5. */
  | { readonly type: 'tick'; readonly now: number }
  /** An authenticated message from another member (the driver has verified signature and certificate). */
  | { readonly type: 'message'; readonly now: number; readonly from: MemberId; readonly message: ClusterMessage }
  /** A JOIN REQUEST whose signature is good but whose certificate the trust store refused. */
  | { readonly type: 'untrusted-join'; readonly now: number; readonly from: MemberId; readonly nonce: number; readonly reason: string }
  /** The applications' combined answer to an `ask-applications` effect (Figure 8F). */
  | { readonly type: 'application-verdict'; readonly now: number; readonly joiner: MemberId; readonly accepted: boolean; readonly reason: string }
  /** Data plane (master): a packet arrived for a unit nobody owns (Figure 9). */
  | { readonly type: 'unit-needs-owner'; readonly now: number; readonly unit: WorkUnit }
  /** Data plane: this member's measured load (docs/architecture.md, "Load measure"). */
  | { readonly type: 'load-report'; readonly now: number; readonly load: number; readonly busiestUnits: readonly UnitLoad[] }
  /**
   * The operator installed another cluster configuration version on this member. `timings`, when
   * given, replaces those fields of the core configuration from now on (a propagated configuration).
   */
  | { readonly type: 'config-changed'; readonly now: number; readonly configVersion: number; readonly timings?: Partial<CoreTimings> }
  /** The operator asks the master to rebalance now instead of at the next 2-second round. */
  | { readonly type: 'rebalance-now'; readonly now: number }
  /** The operator asks the master to move every unit away from a member (it stays a member, owning nothing). */
  | { readonly type: 'drain'; readonly now: number; readonly member: MemberId }
  /** The operator asks the master to give `member` its share of the address pool back now (gwctl failback). */
  | { readonly type: 'failback'; readonly now: number; readonly member: MemberId }
  /** The operator asks the master to accept a drained member's units again. */
  | { readonly type: 'undrain'; readonly now: number; readonly member: MemberId }
  /**
   * This member leaves the cluster (operator, shutdown, or a configuration it cannot write). `detail`, when
   * given, is why, for the EXIT CLUSTER the others receive.
   */
  | { readonly type: 'leave'; readonly now: number; readonly detail?: string }
  /**
   * The process is stopping (signal). Only recorded: counter `shutdown` becomes 1 and no effect follows;
   * the driver sends `leave` afterwards to exit the cluster.
   */
  | { readonly type: 'shutdown'; readonly now: number }
  /** State sync: this member now holds every other member's sessions (it may be given units). */
  | { readonly type: 'sync-ready'; readonly now: number }
  /**
   * Fast liveness (the native heartbeat thread) reports `peer` silent for `silentMs`: the master treats a
   * member, a member treats its master (or the successor it waits for) as dead, once the protocol's own
   * keepalives from that peer are also late by LIVENESS_KEEPALIVES_LATE periods (two independent signals; until then
   * the report is kept and checked on every tick, and a keepalive from the peer clears it).
   */
  | { readonly type: 'peer-silent'; readonly now: number; readonly peer: MemberId; readonly silentMs: number }
  /** Fast liveness hears `peer` again after a peer-silent report: the report is withdrawn. */
  | { readonly type: 'peer-alive'; readonly now: number; readonly peer: MemberId }
  /** The hand-over started by a `handover` effect is done (the new owner acknowledged the sessions). */
  | { readonly type: 'handover-done'; readonly now: number; readonly requestId: number };

/** A CoreEvent as a driver's caller submits it: the driver adds `now` from its clock. */
export type CoreInput = CoreEvent extends infer E ? (E extends CoreEvent ? Omit<E, 'now'> : never) : never;

export type Role = 'joining' | 'offering' | 'member' | 'master' | 'waiting-config' | 'rejected' | 'left' | 'stopped';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * An address this member answers for besides its own: a pool address (with the interface the
 * configuration names) or a dead member's own address (`takeover`: on the member interface).
 */
/**
 * A pool address this member gains from, or loses to, another live member (`from`/`to` null: nobody
 * live, e.g. a dead owner; `from` 'unknown': the first placement this member applies, e.g. after it
 * joined, so it cannot tell). The driver keeps the old connections on the member that holds their state
 * (docs/operator-guide.md, "Affinity").
 */
export interface PoolMove {
  readonly address: string;
  readonly from: MemberId | null | 'unknown';
  readonly to: MemberId | null;
}

export interface HeldAddress {
  readonly address: string;
  readonly kind: 'pool' | 'takeover';
  /** The pool entry's interface; absent for a takeover (the cluster interface). */
  readonly interface?: string;
}

/** What the core asks its driver to do, in order. */
export type CoreEffect =
  | { readonly type: 'send'; readonly to: MemberId | 'broadcast'; readonly message: ClusterMessage }
  /** The role changed. */
  | { readonly type: 'role'; readonly role: Role; readonly master: MemberId | null; readonly epoch: number }
  /** Take the cluster IP: answer ARP for it and send gratuitous ARP (Figure 6, step 4; Figure 8A). */
  | { readonly type: 'announce-cluster-ip' }
  /** Stop answering for the cluster IP (this member is no longer master). */
  | { readonly type: 'release-cluster-ip' }
  /** Before acknowledging WORK DE-ASSIGN: give `to` the sessions of `units`; answer `handover-done`. */
  | { readonly type: 'handover'; readonly requestId: number; readonly units: readonly WorkUnit[]; readonly to: MemberId | '' }
  /**
   * The addresses this member answers for changed (address pool, a dead member's own address): take
   * `gained` (answer ARP for them, announce them by gratuitous ARP), stop answering for `lost` (before any
   * later effect, e.g. a message to the member whose address it gives back).
   */
  | { readonly type: 'addresses'; readonly gained: readonly HeldAddress[]; readonly lost: readonly HeldAddress[]; readonly reason: string; readonly moves?: readonly PoolMove[] }
  /** This member's own units changed: serve `gained`, stop serving `lost`. */
  | { readonly type: 'ownership'; readonly gained: readonly WorkUnit[]; readonly lost: readonly WorkUnit[]; readonly reason: string }
  /** Master: these units' assignment to `owner` is acknowledged; release packets held for them (Figure 9). */
  | { readonly type: 'assignment-acked'; readonly owner: MemberId; readonly units: readonly WorkUnit[] }
  /** Master: ask every application whether it accepts the joiner; answer with an application-verdict event. */
  | { readonly type: 'ask-applications'; readonly joiner: MemberId }
  /** Tell applications which members joined and left (Figure 8G). */
  | { readonly type: 'membership'; readonly joined: readonly MemberId[]; readonly left: readonly MemberId[] }
  | { readonly type: 'log'; readonly level: LogLevel; readonly msg: string; readonly fields?: Readonly<Record<string, unknown>> };
