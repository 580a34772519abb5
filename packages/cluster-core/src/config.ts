import type { MemberId } from '@gwcluster/wire';

/**
 * Timing and policy of the cluster protocol. Every field names its unit; defaults carry their reason.
 * The same values must be configured on every member (they are part of the cluster configuration,
 * whose version members compare at join).
 */
export interface CoreConfig {
  /** This member's id: its member IP address. */
  readonly self: MemberId;
  /** Version of the cluster configuration this member runs; compared at join and in keepalives. */
  readonly configVersion: number;
  /**
   * Keepalive period T, ms. Master and client keepalives are each sent once per period. Default 40: with
   * the smallest multiple n = minWatchdogPeriods = 6, a dead master or member is declared dead after
   * (n + 0.5) * T = 260 ms on a quiet network, as fast as the digest's 100 ms x 2 but without taking a
   * sudden loss for death (docs/decisions.md, "Failover defaults").
   */
  readonly keepalivePeriodMs: number;
  /**
   * Smallest adaptive multiple n (the digest searches from 2). Default 6: a sudden loss on a quiet link
   * (n has not adapted yet) is not taken for death: at 20 % loss six keepalives go missing in a row
   * 6.4e-5 of the time.
   */
  readonly minWatchdogPeriods: number;
  /** Figure 6: a joiner that gets no JOIN reply within this many ms offers to become master. Digest: 100. */
  readonly joinTimeoutMs: number;
  /** Figure 6: an offerer that hears no OTHER MASTER EXISTS within this many ms becomes master. Digest: 100. */
  readonly offerTimeoutMs: number;
  /**
   * K of the adaptive interval formula (digest: 3600, "by policy", at keepalives of 100 ms). n * P^n < 1/K
   * bounds false deaths per keepalive; keepalives 2.5 times as frequent (T = 40 ms) need K = 9000 for the
   * same false-death rate per second.
   */
  readonly lossToleranceK: number;
  /** Largest adaptive multiple n (digest: the search stops at 20). */
  readonly maxWatchdogPeriods: number;
  /** Figure 8D: the master compares loads every this many ms. Digest: 2000. */
  readonly rebalanceIntervalMs: number;
  /**
   * How unowned units get an owner (docs/decisions.md, "Work follows traffic").
   * 'at-once': the master hands out every unowned unit on its next tick, in contiguous shares by load,
   * so the table is complete without traffic. 'first-packet' (the digest's Figure 9): a unit gets an
   * owner when its first packet reaches the master, the least loaded member (measured load plus the
   * units it was given since its last report), its packets held until that member acknowledges; a dead
   * or drained member's units go to the others one at a time by weight, or back to the pool.
   */
  readonly unitAssignment: 'at-once' | 'first-packet';
  /** Cap on units moved by one rebalance round (the digest repeats "while it helps"; 1024 = no cap). */
  readonly maxMovesPerRebalance: number;
  /**
   * A rebalance round starts only when the gap between the most and least loaded member exceeds this
   * fraction of the mean load (hysteresis: moving a unit interrupts its locally terminated sessions, so
   * small, traffic-driven wobbles must not move work). 0 = the digest's "whenever it helps".
   */
  readonly rebalanceThreshold: number;
  /**
   * After taking office, a new master waits up to this many ms for the previous members to re-join and
   * claim the units they serve before it hands out unclaimed units, so that a master change moves no
   * work needlessly. It stops waiting as soon as every member it knew has re-joined.
   */
  readonly reclaimGraceMs: number;
  /**
   * A member admitted less than this many ms ago that holds nothing (no unit, being assigned or owned,
   * no pool address, no taken-over address) is not declared dead by the master's watchdog: a process
   * that has just started stalls for a few hundred ms (JIT, the data plane's first table, the state-sync
   * snapshot) right after its JOIN REPLY, and removing it then only makes it re-join (EXIT CLUSTER
   * not-a-member, membership churn). Once the grace is over, or as soon as it holds something, the
   * ordinary watchdog applies (from its last keepalive). A member that dies right after joining is
   * removed at most this long after its admission; it held nothing, so nothing waited on it.
   */
  readonly newMemberGraceMs: number;
  /** How long a joiner waits for the verdict after a NAK "operation in progress", ms. */
  readonly approvalTimeoutMs: number;
  /** How long the master waits for its applications to approve a joiner before it refuses, ms. */
  readonly applicationTimeoutMs: number;
  /** A member refused at join (certificate, application, full) tries again after this many ms. */
  readonly rejoinBackoffMs: number;
  /** The master re-sends an unacknowledged WORK ASSIGN / DE-ASSIGN after this many ms. */
  readonly workAckTimeoutMs: number;
  /** Most members in one cluster (a keepalive table names owners by one-byte slot). */
  readonly maxMembers: number;
  /**
   * With state sync: a member is given units only once it reports sync-ready (it holds the others'
   * sessions), and this member reports not-ready until the driver sends the `sync-ready` event.
   */
  readonly waitForSyncReady: boolean;
  /**
   * With state sync: on WORK DE-ASSIGN the member emits a `handover` effect and acknowledges only after
   * the driver answers `handover-done` (the new owner holds the units' sessions), so a planned move
   * loses no state. Without: it acknowledges at once.
   */
  readonly handoverBeforeAck: boolean;
  /**
   * This member's software release, announced in JOIN REQUEST and CLIENT KEEPALIVE so that the master's
   * member list (and every member's status) carries each member's version. Absent: not announced.
   */
  readonly softwareVersion?: string;
  /**
   * The cluster's address pool (docs/protocol.md, "Address pool and address takeover"): the master gives
   * each address to exactly one member, spread evenly by count; the owner answers ARP for it. The order
   * is the configuration's; MASTER KEEPALIVE names the owners in this order. `interface` is the driver's.
   */
  readonly addressPool: readonly PoolAddress[];
  /**
   * When the watchdog declares a member dead, a survivor answers for the dead member's own address until
   * it returns. Off by default: it is right only when the member's host is gone (power, link); a member
   * whose daemon died on a running host still answers for its own address from its kernel.
   */
  readonly memberAddressTakeover: boolean;
  /**
   * 'automatic': the master keeps the pool spread evenly (a returning member gets its share at once);
   * 'on-command': addresses move only when their owner dies or is drained, and are spread again on the
   * operator's rebalance (rebalance-now).
   */
  readonly addressPoolFailback: 'automatic' | 'on-command';
}

/** One address of the cluster's address pool and the interface its owner answers on. */
export interface PoolAddress {
  readonly address: string;
  readonly interface: string;
}

export const DEFAULT_CORE_CONFIG: Omit<CoreConfig, 'self' | 'configVersion'> = {
  keepalivePeriodMs: 40,
  minWatchdogPeriods: 6,
  joinTimeoutMs: 100,
  offerTimeoutMs: 100,
  lossToleranceK: 9000,
  maxWatchdogPeriods: 20,
  rebalanceIntervalMs: 2000,
  unitAssignment: 'at-once',
  maxMovesPerRebalance: 1024,
  rebalanceThreshold: 0.05,
  reclaimGraceMs: 1000,
  newMemberGraceMs: 2000,
  approvalTimeoutMs: 5000,
  applicationTimeoutMs: 3000,
  rejoinBackoffMs: 5000,
  workAckTimeoutMs: 300,
  maxMembers: 255,
  waitForSyncReady: false,
  handoverBeforeAck: false,
  addressPool: [],
  memberAddressTakeover: false,
  addressPoolFailback: 'automatic',
};

export function coreConfig(self: MemberId, configVersion: number, overrides: Partial<CoreConfig> = {}): CoreConfig {
  return { ...DEFAULT_CORE_CONFIG, self, configVersion, ...overrides };
}
