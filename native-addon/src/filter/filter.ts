// WorkUnitFilter and the stateless batch calls: the packet filter of 003 Figure 9 in C++
// (filter.cc, work_unit_filter.cc, hold_queue.cc), behind a typed wrapper that checks arguments and
// turns native failures into errors naming the call. reference.ts is the same contract in TypeScript.
import { loadBinding, type FilterBinding, type NativeDetailedBatch, type NativeFilter, type NativeFilterStats } from '../common/binding.js';
import { parseClusterIps, type ClusterAddresses, type ClusterIpsInput } from '../common/addresses.js';
import { callNative, checkBoolean, checkBytes, checkInteger, checkMethod, checkOffsets } from '../common/errors.js';
import { DEFAULT_HOLD_LIMITS, type HoldLimits } from './hold-limits.js';
import { WORK_UNITS } from './reference.js';

/** What a member does with a packet (003, Figure 9). Values as in work_unit_filter.h. */
export const Verdict = {
  /** This member's unit (or ARP): hand it to the local stack. */
  LOCAL: 0,
  /** Master, method 1: another member's acknowledged unit: forward it to the owner. */
  FORWARD_TO_OWNER: 1,
  /** Not this member's: drop silently (methods 2 and 3: the owner received it too). */
  DROP: 2,
  /** Master: unassigned, or assigned and not yet acknowledged: queued in the hold queue. */
  HOLD: 3,
  /** Truncated, malformed or unsupported: counted and dropped. */
  INVALID: 4,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];
export const VERDICT_NAMES = ['LOCAL', 'FORWARD_TO_OWNER', 'DROP', 'HOLD', 'INVALID'] as const;

/** Packets concatenated in one buffer; packet i is packets[offsets[i], offsets[i + 1]). */
export interface PacketBatch {
  packets: Uint8Array;
  offsets: Uint32Array;
}

/** Concatenates packets into the batch form the native calls take. */
export function packBatch(list: readonly Uint8Array[]): PacketBatch {
  if (!Array.isArray(list)) throw new TypeError('packBatch: list must be an array of Buffer/Uint8Array');
  let total = 0;
  list.forEach((p, i) => {
    checkBytes(p, 'packBatch', `list[${i}]`);
    total += p.length;
  });
  if (total > 0xffffffff) throw new RangeError(`packBatch: ${total} bytes do not fit 32-bit offsets; split the batch`);
  const packets = Buffer.allocUnsafe(total);
  const offsets = new Uint32Array(list.length + 1);
  let at = 0;
  list.forEach((p, i) => {
    packets.set(p, at);
    at += p.length;
    offsets[i + 1] = at;
  });
  return { packets, offsets };
}

export interface BatchOptions {
  /** The batch holds Ethernet II frames (VLAN tags, ARP) rather than raw IP packets. Default false. */
  frames?: boolean;
  /** A binding to use instead of the compiled addon (tests). */
  binding?: FilterBinding;
}

function batchFrames(opts: BatchOptions | undefined, call: string): boolean {
  if (opts === undefined) return false;
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${call}: opts must be an object { frames?, binding? }`);
  if (opts.frames === undefined) return false;
  checkBoolean(opts.frames, call, 'opts.frames');
  return opts.frames;
}

/**
 * Native classification of a batch: per packet its work unit, or NO_UNIT (0xFFFF) when the packet
 * is dropped (truncated, malformed, unsupported) or is ARP. Stateless: counts nothing.
 */
export function classifyBatch(packets: Uint8Array, offsets: Uint32Array, clusterIps: ClusterIpsInput, opts?: BatchOptions): Uint16Array {
  const call = 'classifyBatch';
  checkOffsets(packets, offsets, call);
  const frames = batchFrames(opts, call);
  const c = parseClusterIps(clusterIps, `${call}: clusterIps`);
  const b = opts?.binding ?? loadBinding();
  return callNative(call, () => b.classifyBatch(packets, offsets, c.v4, c.v6, frames));
}

/** As classifyBatch, with every field of the outcome (the parity tests compare these). */
export function classifyBatchDetailed(packets: Uint8Array, offsets: Uint32Array, clusterIps: ClusterIpsInput, opts?: BatchOptions): NativeDetailedBatch {
  const call = 'classifyBatchDetailed';
  checkOffsets(packets, offsets, call);
  const frames = batchFrames(opts, call);
  const c = parseClusterIps(clusterIps, `${call}: clusterIps`);
  const b = opts?.binding ?? loadBinding();
  return callNative(call, () => b.classifyBatchDetailed(packets, offsets, c.v4, c.v6, frames));
}

export interface WorkUnitFilterOptions {
  clusterIps: ClusterIpsInput;
  /** This member's slot in the ownership table, 1..65535; 0 (default) = none yet. */
  localSlot?: number;
  /** This member is the master (it holds and forwards; others only keep or drop). Default false. */
  master?: boolean;
  /** Packet distribution method (003): 1 master forwards, 2 unicast MAC, 3 multicast MAC. Default 1. */
  method?: 1 | 2 | 3;
  hold?: Partial<HoldLimits>;
  /** Batches hold Ethernet frames rather than raw IP packets. Default false. */
  frames?: boolean;
  binding?: FilterBinding;
}

export interface VerdictBatchResult {
  /** Verdict per packet (Verdict values). */
  verdicts: Uint8Array;
  /** Work unit per packet, NO_UNIT for INVALID and ARP. */
  units: Uint16Array;
}

/** Packets and IP bytes per unit (index = unit), counted for units this member owns. */
export interface UnitCounters {
  packets: BigUint64Array;
  bytes: BigUint64Array;
}

export type FilterStats = NativeFilterStats;

/**
 * One member's filter: the ownership table (1024 units -> owner slot, 0 = unassigned), this member's
 * slot and role, per-unit counters and the master's hold queue. Not shared between threads; every
 * method is synchronous and cheap (the batch calls are O(packets)).
 *
 * Counting: classifyBatch and verdictBatch both count (stats, and per-unit counters of owned
 * units), so a packet passed to both is counted twice.
 */
export class WorkUnitFilter {
  readonly native: NativeFilter;
  readonly frames: boolean;
  #clusterIps: ClusterAddresses;
  #localSlot: number;
  #master: boolean;
  #method: 1 | 2 | 3;

  constructor(opts: WorkUnitFilterOptions) {
    const call = 'new WorkUnitFilter';
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${call}: opts must be an object { clusterIps, localSlot?, master?, method?, hold?, frames? }`);
    const limits = { ...DEFAULT_HOLD_LIMITS, ...(opts.hold ?? {}) };
    checkInteger(limits.perUnitPackets, call, 'opts.hold.perUnitPackets', 1, 65536);
    checkInteger(limits.totalPackets, call, 'opts.hold.totalPackets', 1, 1 << 24);
    checkInteger(limits.totalBytes, call, 'opts.hold.totalBytes', 0, 0xffffffff);
    this.#clusterIps = parseClusterIps(opts.clusterIps, `${call}: opts.clusterIps`);
    this.#localSlot = opts.localSlot ?? 0;
    this.#master = opts.master ?? false;
    this.#method = opts.method ?? 1;
    checkInteger(this.#localSlot, call, 'opts.localSlot', 0, 0xffff);
    checkBoolean(this.#master, call, 'opts.master');
    checkMethod(this.#method, call, 'opts.method');
    this.frames = opts.frames ?? false;
    checkBoolean(this.frames, call, 'opts.frames');
    const b = opts.binding ?? loadBinding();
    this.native = callNative(call, () => new b.Filter(limits.perUnitPackets, limits.totalPackets, limits.totalBytes));
    callNative(call, () => {
      this.native.setClusterIps(this.#clusterIps.v4, this.#clusterIps.v6);
      this.native.setRole(this.#localSlot, this.#master, this.#method);
    });
  }

  get clusterIps(): ClusterAddresses {
    return this.#clusterIps;
  }
  set clusterIps(input: ClusterIpsInput) {
    const c = parseClusterIps(input, 'WorkUnitFilter.clusterIps');
    callNative('WorkUnitFilter.clusterIps', () => this.native.setClusterIps(c.v4, c.v6));
    this.#clusterIps = c;
  }

  get localSlot(): number {
    return this.#localSlot;
  }
  get master(): boolean {
    return this.#master;
  }
  get method(): 1 | 2 | 3 {
    return this.#method;
  }

  /** Sets this member's slot and role (e.g. after an election). */
  setRole(role: { localSlot?: number; master?: boolean; method?: 1 | 2 | 3 }): void {
    const call = 'WorkUnitFilter.setRole';
    const slot = role.localSlot ?? this.#localSlot;
    const master = role.master ?? this.#master;
    const method = role.method ?? this.#method;
    checkInteger(slot, call, 'role.localSlot', 0, 0xffff);
    checkBoolean(master, call, 'role.master');
    checkMethod(method, call, 'role.method');
    callNative(call, () => this.native.setRole(slot, master, method));
    this.#localSlot = slot;
    this.#master = master;
    this.#method = method;
  }

  /** Assigns one unit to a slot (0 = unassigned). */
  setOwner(unit: number, slot: number): void {
    const call = 'WorkUnitFilter.setOwner';
    checkUnit(unit, call);
    checkInteger(slot, call, 'slot', 0, 0xffff);
    callNative(call, () => this.native.setOwner(unit, slot));
  }

  /** Assigns many units to one slot. */
  setOwners(units: readonly number[] | Uint16Array, slot: number): void {
    const call = 'WorkUnitFilter.setOwners';
    if (!(units instanceof Uint16Array) && !Array.isArray(units)) throw new TypeError(`${call}: units must be an array or Uint16Array of work units 0..1023`);
    Array.prototype.forEach.call(units, (u: unknown, i: number) => checkUnit(u, call, `units[${i}]`));
    const list = units instanceof Uint16Array ? units : Uint16Array.from(units);
    checkInteger(slot, call, 'slot', 0, 0xffff);
    callNative(call, () => this.native.setOwners(list, slot));
  }

  /** Replaces the whole table: 1024 owner slots, index = unit. */
  setTable(table: Uint16Array | readonly number[]): void {
    const call = 'WorkUnitFilter.setTable';
    if (!(table instanceof Uint16Array) && !Array.isArray(table)) throw new TypeError(`${call}: table must be a Uint16Array or array of 1024 owner slots`);
    if (table.length !== WORK_UNITS) throw new RangeError(`${call}: table must have 1024 entries (one per work unit), got ${table.length}`);
    if (Array.isArray(table)) table.forEach((s: unknown, i: number) => checkInteger(s, call, `table[${i}]`, 0, 0xffff));
    const t = table instanceof Uint16Array ? table : Uint16Array.from(table);
    callNative(call, () => this.native.setTable(t));
  }

  /** A copy of the table: index = unit, value = owner slot (0 = unassigned). */
  owners(): Uint16Array {
    return callNative('WorkUnitFilter.owners', () => this.native.owners());
  }

  /** Classifies and counts; returns units (NO_UNIT for dropped packets and ARP). */
  classifyBatch(packets: Uint8Array, offsets: Uint32Array): Uint16Array {
    const call = 'WorkUnitFilter.classifyBatch';
    checkOffsets(packets, offsets, call);
    return callNative(call, () => this.native.classifyBatch(packets, offsets, this.frames));
  }

  /** Classifies, counts and decides per packet (Figure 9); HOLD packets are queued (copied). */
  verdictBatch(packets: Uint8Array, offsets: Uint32Array): VerdictBatchResult {
    const call = 'WorkUnitFilter.verdictBatch';
    checkOffsets(packets, offsets, call);
    return callNative(call, () => this.native.verdictBatch(packets, offsets, this.frames));
  }

  /** Per-unit packets and bytes of owned units; `reset` zeroes them after reading. */
  counters(opts: { reset?: boolean } = {}): UnitCounters {
    const reset = opts.reset ?? false;
    checkBoolean(reset, 'WorkUnitFilter.counters', 'opts.reset');
    const all = callNative('WorkUnitFilter.counters', () => this.native.counters(reset));
    return { packets: all.subarray(0, WORK_UNITS), bytes: all.subarray(WORK_UNITS, 2 * WORK_UNITS) };
  }

  stats(): FilterStats {
    return callNative('WorkUnitFilter.stats', () => this.native.stats());
  }

  /** Marks a unit held: its packets are queued (master) until release() or dropHeld(). */
  hold(unit: number): void {
    checkUnit(unit, 'WorkUnitFilter.hold');
    callNative('WorkUnitFilter.hold', () => this.native.hold(unit));
  }

  isHeld(unit: number): boolean {
    checkUnit(unit, 'WorkUnitFilter.isHeld');
    return callNative('WorkUnitFilter.isHeld', () => this.native.isHeld(unit));
  }

  /** Ends the hold (the owner acknowledged): the queued packets, oldest first. */
  release(unit: number): Buffer[] {
    checkUnit(unit, 'WorkUnitFilter.release');
    return callNative('WorkUnitFilter.release', () => this.native.release(unit));
  }

  /** Ends the hold and discards the queued packets; returns how many there were. */
  dropHeld(unit: number): number {
    checkUnit(unit, 'WorkUnitFilter.dropHeld');
    return callNative('WorkUnitFilter.dropHeld', () => this.native.dropHeld(unit));
  }
}

function checkUnit(unit: unknown, call: string, name = 'unit'): asserts unit is number {
  checkInteger(unit, call, name, 0, WORK_UNITS - 1);
}
