// PacketEngine: the data plane of one member. Packets queued by the kernel (iptables raw PREROUTING
// `-j NFQUEUE --queue-num N` on the data-plane interfaces, no bypass) get their verdict on the
// engine's own thread by the Figure 9 filter; ARP for the cluster IPs is answered and announced.
// engine/packet_engine.h states the verdicts, the threading and the memory ordering.
import type { FastPath } from '../fastpath/fastpath.js';
import type { SessionTable } from '../sessions/sessions.js';
import {
  loadBinding,
  type FilterBinding,
  type NativeEngineConfig,
  type NativeEngineStats,
  type NativePacketEngine,
  type NativeVerdictCounts,
} from '../common/binding.js';
import { parseClusterIps, parseIpv4, type ClusterIpsInput } from '../common/addresses.js';
import { callNative, checkBoolean, checkInteger, checkMethod, NativeCallError, translateNativeError } from '../common/errors.js';
import { DEFAULT_HOLD_LIMITS, type HoldLimits } from '../filter/hold-limits.js';
import type { UnitCounters } from '../filter/filter.js';
import { WORK_UNITS } from '../filter/reference.js';

/** Distribution method (003): 1 the master forwards, 2 a shared unicast MAC, 3 a shared multicast MAC. */
export type DistributionMethod = 1 | 2 | 3;

export interface ArpInterfaceOptions {
  /** Interface name, e.g. 'eth1'. */
  name: string;
  /** The IPv4 cluster addresses answered and announced on this interface. */
  clusterIps: readonly string[];
  /** Method 1: the MAC to answer with instead of the interface's own ('aa:bb:cc:dd:ee:ff'). */
  mac?: string;
}

export interface PacketEngineOptions {
  /** The NFQUEUE number of the iptables rule, 0..65535. One engine per queue per network namespace. */
  queueNum: number;
  /** The cluster IPs (the filter contract's to-cluster rule). */
  clusterIps: ClusterIpsInput;
  /** Where packets for other members' units are sent (method 1, and released held packets). Default: none. */
  forwardInterface?: string;
  /** Interfaces on which ARP for the cluster IPs is answered (when setArpAnswering(true)) and announced. */
  arpInterfaces?: readonly ArpInterfaceOptions[];
  method: DistributionMethod;
  /** Methods 2 and 3: the MAC ARP answers and announcements give for the cluster IPs. */
  clusterMac?: string;
  /** This member's slot, 1..65535 (0 = none yet: nothing is owned). */
  localSlot: number;
  /** Default false. */
  master?: boolean;
  hold?: Partial<HoldLimits>;
  /** Packets the kernel keeps waiting for a verdict before it drops. Default 4096. */
  queueMaxLen?: number;
  /** Gratuitous ARP rounds per announce() and the pause between them. Defaults 2 and 100 ms. */
  announceRounds?: number;
  announceIntervalMs?: number;
  /** Events of the engine thread, on the JS thread. Must not throw. */
  onEvent?: (event: PacketEngineEvent) => void;
  binding?: FilterBinding;
}

export type PacketEngineEvent =
  /** Master: a packet of this unit was held (unassigned, or assigned and not yet acknowledged). Once
   * per unit until its owner changes or it is released or dropped. `owner` 0 = unassigned. */
  | { type: 'unit-needs-owner'; unit: number; owner: number }
  /** announce() finished; `frames` gratuitous ARP frames were sent. */
  | { type: 'announced'; frames: number }
  /** The engine thread stopped on an OS failure (the queue is no longer served: packets are dropped). */
  | { type: 'error'; error: NativeCallError };

export type VerdictCounts = NativeVerdictCounts;
export type PacketEngineStats = NativeEngineStats;

export interface EngineCounters extends UnitCounters {
  /** Verdicts since the last reset. */
  verdicts: VerdictCounts;
}

export interface ReleaseResult {
  /** Delivered to this member's own stack (the unit is now this member's). */
  reinjected: number;
  /** Sent to the owner's MAC on the forward interface. */
  forwarded: number;
  /** No owner, no MAC known for it, or a send error. */
  dropped: number;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** 'aa:bb:cc:dd:ee:ff' -> 6 bytes. */
export function parseMac(text: unknown, call: string, name: string): Uint8Array {
  if (typeof text !== 'string' || !MAC_RE.test(text)) {
    throw new TypeError(`${call}: ${name} must be a MAC address 'aa:bb:cc:dd:ee:ff', got ${JSON.stringify(text)}`);
  }
  return Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
}

function checkIfName(x: unknown, call: string, name: string): asserts x is string {
  if (typeof x !== 'string' || x.length === 0 || x.length > 15) {
    throw new TypeError(`${call}: ${name} must be an interface name (1..15 characters), got ${JSON.stringify(x)}`);
  }
}

/**
 * Lifecycle: `open()` binds the queue, opens the sockets and starts the engine thread (errors surface
 * here as NativeCallError with `syscall` and `code`, e.g. nfq_create_queue / EPERM, if_nametoindex /
 * ENODEV); every other method is synchronous and short (it waits at most for one packet's
 * classification on the engine thread); `close()` joins the thread and unbinds the queue (idempotent;
 * also done on process exit). While open, the engine keeps the event loop alive unless `unref()`.
 */
export class PacketEngine {
  readonly queueNum: number;
  readonly #native: NativePacketEngine;
  #localSlot: number;
  #master: boolean;
  #method: DistributionMethod;
  #closed = false;

  private constructor(native: NativePacketEngine, opts: { queueNum: number; localSlot: number; master: boolean; method: DistributionMethod }) {
    this.#native = native;
    this.queueNum = opts.queueNum;
    this.#localSlot = opts.localSlot;
    this.#master = opts.master;
    this.#method = opts.method;
  }

  static open(opts: PacketEngineOptions): PacketEngine {
    const call = 'PacketEngine.open';
    if (typeof opts !== 'object' || opts === null) {
      throw new TypeError(`${call}: opts must be an object { queueNum, clusterIps, method, localSlot, master?, forwardInterface?, arpInterfaces?, clusterMac?, hold?, onEvent? }`);
    }
    checkInteger(opts.queueNum, call, 'opts.queueNum', 0, 0xffff);
    const cluster = parseClusterIps(opts.clusterIps, `${call}: opts.clusterIps`);
    checkMethod(opts.method, call, 'opts.method');
    checkInteger(opts.localSlot, call, 'opts.localSlot', 0, 0xffff);
    const master = opts.master ?? false;
    checkBoolean(master, call, 'opts.master');
    const forwardInterface = opts.forwardInterface ?? '';
    if (forwardInterface !== '') checkIfName(forwardInterface, call, 'opts.forwardInterface');
    const arpInterfaces = opts.arpInterfaces ?? [];
    if (!Array.isArray(arpInterfaces)) throw new TypeError(`${call}: opts.arpInterfaces must be an array of { name, clusterIps, mac? }`);
    const arps = arpInterfaces.map((a: ArpInterfaceOptions, i) => {
      const at = `opts.arpInterfaces[${i}]`;
      if (typeof a !== 'object' || a === null) throw new TypeError(`${call}: ${at} must be an object { name, clusterIps, mac? }`);
      checkIfName(a.name, call, `${at}.name`);
      if (!Array.isArray(a.clusterIps)) throw new TypeError(`${call}: ${at}.clusterIps must be an array of IPv4 address strings`);
      const v4 = Uint32Array.from(a.clusterIps, (ip: unknown, k) => parseIpv4(String(ip), `${call}: ${at}.clusterIps[${k}]`));
      const mac = a.mac === undefined ? new Uint8Array(0) : parseMac(a.mac, call, `${at}.mac`);
      return { name: a.name, clusterV4: v4, mac };
    });
    const clusterMac = opts.clusterMac === undefined ? new Uint8Array(0) : parseMac(opts.clusterMac, call, 'opts.clusterMac');
    if (opts.method !== 1 && arps.length > 0 && clusterMac.length === 0) {
      throw new TypeError(`${call}: opts.clusterMac is required with method ${opts.method} (ARP answers give the cluster-wide MAC)`);
    }
    const limits = { ...DEFAULT_HOLD_LIMITS, ...(opts.hold ?? {}) };
    checkInteger(limits.perUnitPackets, call, 'opts.hold.perUnitPackets', 1, 65536);
    checkInteger(limits.totalPackets, call, 'opts.hold.totalPackets', 1, 1 << 24);
    checkInteger(limits.totalBytes, call, 'opts.hold.totalBytes', 0, 0xffffffff);
    const queueMaxLen = opts.queueMaxLen ?? 4096;
    checkInteger(queueMaxLen, call, 'opts.queueMaxLen', 1, 1 << 20);
    const announceRounds = opts.announceRounds ?? 2;
    const announceIntervalMs = opts.announceIntervalMs ?? 100;
    checkInteger(announceRounds, call, 'opts.announceRounds', 1, 100);
    checkInteger(announceIntervalMs, call, 'opts.announceIntervalMs', 0, 60000);
    const onEvent = opts.onEvent ?? (() => {});
    if (typeof onEvent !== 'function') throw new TypeError(`${call}: opts.onEvent must be a function`);

    const b = opts.binding ?? loadBinding();
    const Ctor = b.PacketEngine;
    if (!b.hasEngine || !Ctor) {
      throw new NativeCallError(call, 'the addon was built without libnetfilter_queue; install libnetfilter-queue-dev (scripts/apt-packages.txt) and rebuild', {
        code: 'GWC_NO_ENGINE',
      });
    }
    const config: NativeEngineConfig = {
      queueNum: opts.queueNum,
      clusterV4: cluster.v4,
      clusterV6: cluster.v6,
      forwardInterface,
      arpInterfaces: arps,
      localSlot: opts.localSlot,
      master,
      method: opts.method,
      clusterMac,
      perUnitPackets: limits.perUnitPackets,
      totalPackets: limits.totalPackets,
      totalBytes: limits.totalBytes,
      queueMaxLen,
      announceRounds,
      announceIntervalMs,
    };
    const native = callNative(call, () =>
      new Ctor(config, (e) => {
        if (e.type === 'error') onEvent({ type: 'error', error: translateNativeError('PacketEngine', e.error) as NativeCallError });
        else onEvent(e);
      }),
    );
    return new PacketEngine(native, { queueNum: opts.queueNum, localSlot: opts.localSlot, master, method: opts.method });
  }

  get closed(): boolean {
    return this.#closed;
  }
  get localSlot(): number {
    return this.#localSlot;
  }
  get master(): boolean {
    return this.#master;
  }
  get method(): DistributionMethod {
    return this.#method;
  }

  /** Sets this member's slot and role (e.g. after an election). Takes effect from the next packet. */
  setRole(role: { localSlot?: number; master?: boolean; method?: DistributionMethod }): void {
    const call = 'PacketEngine.setRole';
    const slot = role.localSlot ?? this.#localSlot;
    const master = role.master ?? this.#master;
    const method = role.method ?? this.#method;
    checkInteger(slot, call, 'role.localSlot', 0, 0xffff);
    checkBoolean(master, call, 'role.master');
    checkMethod(method, call, 'role.method');
    this.#call(call, (n) => n.setRole(slot, master, method));
    this.#localSlot = slot;
    this.#master = master;
    this.#method = method;
  }

  /** Assigns one unit to a slot (0 = unassigned). */
  setOwner(unit: number, slot: number): void {
    const call = 'PacketEngine.setOwner';
    checkInteger(unit, call, 'unit', 0, WORK_UNITS - 1);
    checkInteger(slot, call, 'slot', 0, 0xffff);
    this.#call(call, (n) => n.setOwner(unit, slot));
  }

  setOwners(units: readonly number[] | Uint16Array, slot: number): void {
    const call = 'PacketEngine.setOwners';
    if (!(units instanceof Uint16Array) && !Array.isArray(units)) throw new TypeError(`${call}: units must be an array or Uint16Array of work units 0..1023`);
    Array.prototype.forEach.call(units, (u: unknown, i: number) => checkInteger(u, call, `units[${i}]`, 0, WORK_UNITS - 1));
    checkInteger(slot, call, 'slot', 0, 0xffff);
    const list = units instanceof Uint16Array ? units : Uint16Array.from(units);
    this.#call(call, (n) => n.setOwners(list, slot));
  }

  /** Replaces the whole table: 1024 owner slots, index = unit. */
  setTable(table: Uint16Array | readonly number[]): void {
    const call = 'PacketEngine.setTable';
    if (!(table instanceof Uint16Array) && !Array.isArray(table)) throw new TypeError(`${call}: table must be a Uint16Array or array of 1024 owner slots`);
    if (table.length !== WORK_UNITS) throw new RangeError(`${call}: table must have 1024 entries (one per work unit), got ${table.length}`);
    if (Array.isArray(table)) table.forEach((s: unknown, i: number) => checkInteger(s, call, `table[${i}]`, 0, 0xffff));
    const t = table instanceof Uint16Array ? table : Uint16Array.from(table);
    this.#call(call, (n) => n.setTable(t));
  }

  owners(): Uint16Array {
    return this.#call('PacketEngine.owners', (n) => n.owners());
  }

  /** The MAC of a member's slot, for forwarding; null forgets it. */
  setSlotMac(slot: number, mac: string | null): void {
    const call = 'PacketEngine.setSlotMac';
    checkInteger(slot, call, 'slot', 1, 0xffff);
    const bytes = mac === null ? new Uint8Array(0) : parseMac(mac, call, 'mac');
    this.#call(call, (n) => n.setSlotMac(slot, bytes));
  }

  /** Methods 2 and 3: the cluster-wide MAC given in ARP answers and announcements; null clears it. */
  setClusterMac(mac: string | null): void {
    const call = 'PacketEngine.setClusterMac';
    const bytes = mac === null ? new Uint8Array(0) : parseMac(mac, call, 'mac');
    this.#call(call, (n) => n.setClusterMac(bytes));
  }

  /** Answer ARP requests for the cluster IPs (the master only). Off at open. */
  setArpAnswering(on: boolean): void {
    checkBoolean(on, 'PacketEngine.setArpAnswering', 'on');
    this.#call('PacketEngine.setArpAnswering', (n) => n.setAnswering(on));
  }

  /** Marks a unit held: its packets are kept (master) until release() or dropHeld(). */
  hold(unit: number): void {
    checkInteger(unit, 'PacketEngine.hold', 'unit', 0, WORK_UNITS - 1);
    this.#call('PacketEngine.hold', (n) => n.hold(unit));
  }

  isHeld(unit: number): boolean {
    checkInteger(unit, 'PacketEngine.isHeld', 'unit', 0, WORK_UNITS - 1);
    return this.#call('PacketEngine.isHeld', (n) => n.isHeld(unit));
  }

  /**
   * The owner acknowledged: ends the hold and delivers the held packets oldest first, to this
   * member's stack if the unit is now its own, else to the owner's MAC (setSlotMac) on the forward
   * interface. Set the owner (setOwner) before releasing.
   */
  release(unit: number): ReleaseResult {
    checkInteger(unit, 'PacketEngine.release', 'unit', 0, WORK_UNITS - 1);
    return this.#call('PacketEngine.release', (n) => n.release(unit));
  }

  /** Ends the hold and discards the held packets; returns how many there were. */
  dropHeld(unit: number): number {
    checkInteger(unit, 'PacketEngine.dropHeld', 'unit', 0, WORK_UNITS - 1);
    return this.#call('PacketEngine.dropHeld', (n) => n.dropHeld(unit));
  }

  /** Gratuitous ARP for every cluster IP on every ARP interface, announceRounds times; an 'announced' event follows. */
  announce(): void {
    this.#call('PacketEngine.announce', (n) => n.announce());
  }

  /** Per-unit packets and IP bytes of accepted (owned) packets, and verdict counts; `reset` zeroes them after reading. */
  counters(opts: { reset?: boolean } = {}): EngineCounters {
    const reset = opts.reset ?? false;
    checkBoolean(reset, 'PacketEngine.counters', 'opts.reset');
    const { units, verdicts } = this.#call('PacketEngine.counters', (n) => n.counters(reset));
    return { packets: units.subarray(0, WORK_UNITS), bytes: units.subarray(WORK_UNITS, 2 * WORK_UNITS), verdicts };
  }

  /** Cumulative statistics (kernel* from /proc/net/netfilter/nfnetlink_queue of this namespace). */
  stats(): PacketEngineStats {
    return this.#call('PacketEngine.stats', (n) => n.stats());
  }

  /** Lets the process exit while the engine is open (it still stops on exit). */
  unref(): this {
    if (!this.#closed) this.#native.unref();
    return this;
  }
  ref(): this {
    if (!this.#closed) this.#native.ref();
    return this;
  }

  /**
   * Stateful mode (docs/state-sync.md): every packet of an owned unit is tracked by `table` and dropped
   * when the table refuses it (strict mode: mid-stream TCP without a session, or out of window). The
   * engine keeps the table alive while attached. null detaches it.
   */
  attachSessions(table: SessionTable | null): void {
    this.#call('PacketEngine.attachSessions', (n) => n.attachSessions(table === null ? null : table.native));
  }

  /**
   * The kernel fast paths (one per interface) whose flow maps get every flow this engine sees
   * established under session tracking: their further packets then pass in the kernel (UnitAction
   * PASS_TRACKED). [] stops offloading.
   */
  attachFlowOffloads(fastPaths: readonly FastPath[]): void {
    this.#call('PacketEngine.attachFlowOffloads', (n) => n.attachFlowOffloads(fastPaths.map((f) => f.native)));
  }

  /** Stops and joins the engine thread and unbinds the queue (queued packets are dropped). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    callNative('PacketEngine.close', () => this.#native.close());
  }

  #call<T>(call: string, fn: (n: NativePacketEngine) => T): T {
    if (this.#closed) throw new NativeCallError(call, `the engine of queue ${this.queueNum} is closed`, { code: 'GWC_ENGINE_CLOSED' });
    return callNative(call, () => fn(this.#native));
  }
}
