/**
 * The seam where a packet path plugs into the data plane. A packet path is what gives every packet for
 * a cluster IP its verdict: accept (this member owns the packet's unit), drop (another member does),
 * hold (master: the unit has no acknowledged owner yet) or forward (master-forward method: send it to
 * the owner's MAC). It answers ARP for the cluster IPs while told to.
 *
 * Implementations:
 *   - nfqueue-path.ts: the native packet engine (native-addon PacketEngine) on an NFQUEUE queue, fed by
 *     the iptables rules of netfilter.ts. Today's path.
 *   - kernel-path.ts: a tc BPF program (native-addon FastPath) decides what it can in the kernel and
 *     hands the rest to the NFQUEUE engine; user space stays the only writer of policy (owners, holds,
 *     slot MACs), the kernel applies it. It brings its own kernel setup (kernelPathSetup, passed as
 *     DataPlaneOptions.kernel): the NFQUEUE rule lets the packets it passed through.
 *
 * Units are 0..1023 (the work-unit hash of the filter contract). Members are named by slot numbers:
 * NO_SLOT (0) is "nobody", LOCAL_SLOT (1) is this member, other slots are handed out by the data plane
 * (ownership.ts) and given a MAC with setSlotMac() before packets are forwarded to them.
 *
 * Threading and ordering (what the facade, data-plane.ts, guarantees and what it assumes):
 *   - every method is called on the JS thread, never concurrently, never from inside a callback of the
 *     same path; none may block (work that blocks runs on the path's own thread or in the kernel);
 *   - calls take effect in the order they are made, from the next packet on;
 *   - within one ownership update the facade calls setOwner() for every changed unit before any
 *     release(), and releases units in ascending unit order; release() delivers a unit's held packets
 *     oldest first, to this member's stack if the unit is LOCAL_SLOT's, else to the owner slot's MAC;
 *   - onUnitNeedsOwner and onError are called on the JS thread, asynchronously (never from inside a
 *     method call), and must not throw.
 */
import type { FastPath, SessionTable } from '@gwcluster/native-addon';

/** No member: the unit is unassigned (its packets are dropped, or held at the master). */
export const NO_SLOT = 0;
/** This member. */
export const LOCAL_SLOT = 1;

/** Per-unit counts indexed by unit (1024 entries); 64-bit in the native engine. */
export type UnitCounts = BigUint64Array | Float64Array;

export interface PacketPath {
  /** This member's slot and whether it is master (the master holds and forwards). */
  setRole(role: { localSlot: number; master: boolean }): void;
  /** The unit's owner from now on (NO_SLOT: nobody). */
  setOwner(unit: number, slot: number): void;
  /** The MAC packets for `slot` are forwarded to (master-forward, and released held packets). */
  setSlotMac(slot: number, mac: string): void;
  /** Master: keep this unit's packets (deferred verdict) until release(). Idempotent. */
  hold(unit: number): void;
  /** Ends the hold and delivers the unit's held packets to its current owner, oldest first. */
  release(unit: number): void;
  /** Answer ARP for the cluster IPs (only the master does). Off at open. */
  setArpAnswering(on: boolean): void;
  /** Gratuitous ARP for every cluster IP on every ARP interface (options.announcement); a call restarts the rounds. */
  announce(): void;
  /** Packets and IP bytes accepted per unit since the last reset; `reset` zeroes them after reading. */
  counters(opts: { reset: boolean }): { packets: UnitCounts; bytes: UnitCounts };
  /** Stateful mode: packets of owned units go through this session table; null detaches it. */
  attachSessions(table: SessionTable | null): void;
  /**
   * Kernel path: the fast paths whose flow maps get the flows this path sees established ([] stops).
   * Absent: this path cannot offload (the kernel path then keeps tracked units in user space).
   */
  attachFlowOffloads?(fastPaths: readonly FastPath[]): void;
  /**
   * Brings the attached session table up to date with what this path passed without showing it (the
   * kernel path's offloaded flows), now: before sessions are handed over or saved. Absent: always current.
   */
  syncSessions?(): void;
  /** Cumulative statistics for status and metrics (names documented by the implementation). */
  stats(): Record<string, number | bigint>;
  /** Stops serving packets (with no path, queued packets are dropped, never answered). Idempotent. */
  close(): void;
}

export interface PacketPathOptions {
  readonly queueNum: number;
  /** Distribution method: 1 master-forward, 2 unicast-mac, 3 multicast-mac. */
  readonly method: 1 | 2 | 3;
  readonly clusterIps: readonly string[];
  /** The data-plane interfaces (the packets the path decides arrive on these). */
  readonly interfaces: readonly string[];
  /** Destinations never decided: the host's own addresses (KernelSetup.ownAddresses). */
  readonly bypassAddresses: readonly string[];
  /** Where packets for other members' units leave (master-forward, released held packets). */
  readonly forwardInterface: string;
  readonly arpInterfaces: readonly { name: string; clusterIps: readonly string[] }[];
  /** Methods 2 and 3: the MAC ARP answers give for the cluster IPs (method 1: each interface's own). */
  readonly clusterMac?: string;
  /** What one announce() sends: `rounds` gratuitous ARPs per cluster IP and interface, `intervalMs` apart. */
  readonly announcement: { readonly rounds: number; readonly intervalMs: number };
  readonly localSlot: number;
  /** Limits of the master's hold queue (packets per unit, packets and bytes in all). */
  readonly hold: { readonly perUnitPackets: number; readonly totalPackets: number; readonly totalBytes: number };
  /** Master: a packet of this unit was held (unassigned, or assigned and not yet acknowledged). */
  readonly onUnitNeedsOwner: (unit: number) => void;
  /** The path stopped serving packets on an OS failure. */
  readonly onError: (error: Error) => void;
}

/** Opens a packet path; throws when it cannot (the daemon does not start). */
export type PacketPathFactory = (opts: PacketPathOptions) => PacketPath;
