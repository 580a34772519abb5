// FastPath: the kernel fast path (README.md beside this file) behind a typed face. A tc ingress BPF
// program computes each packet's work unit exactly as the filter (filter.cc, reference.ts) and applies
// the action user space set for the unit: pass (this member's), drop (another member's) or hand up to
// user space (a mark the NFQUEUE rule matches). This object loads the program, owns its maps (the only
// writer of policy), attaches it to one interface's ingress and detaches it. Off unless someone makes one.
import { fileURLToPath } from 'node:url';
import { loadBinding, FASTPATH_OBJECT_URL, type FilterBinding, type NativeDetailedBatch, type NativeFastPath } from '../common/binding.js';
import { parseClusterIps, type ClusterIpsInput } from '../common/addresses.js';
import { callNative, checkBoolean, checkInteger, checkOffsets, NativeCallError } from '../common/errors.js';
import { WORK_UNITS } from '../filter/reference.js';
import { SessionTable } from '../sessions/sessions.js';

/** FastPath.syncFlows: entries read, entries with kernel-passed packets, entries deleted, refused calls. */
export interface FlowSyncResult {
  entries: number;
  refreshed: number;
  removed: number;
  errors: number;
}

/** What the kernel does with the packets of a unit (fastpath_consts.h GWC_ACTION_*). */
export const UnitAction = {
  /** Pass to the stack with the user mark: NFQUEUE (the packet engine) decides. Every unit's start value. */
  TO_USER: 0,
  /** This member's unit: pass to the stack (with the pass mark, if set), counted per unit in the kernel. */
  PASS: 1,
  /** Another member's unit: drop silently in the kernel. */
  DROP: 2,
  /**
   * This member's unit under session tracking: routed IPv4 TCP (without SYN, FIN, RST) and UDP of the
   * flows the packet engine offloaded (PacketEngine.attachFlowOffloads) pass like PASS; everything else
   * goes up like TO_USER. Packets for a cluster IP itself pass like PASS.
   */
  PASS_TRACKED: 3,
  /**
   * Another member's unit at the master of method 1: the frame is sent to the owner's MAC (setSlotMac of
   * the unit's owner slot) out of the forward interface (setForwardInterface). Without either: TO_USER.
   */
  REDIRECT: 4,
} as const;
export type UnitAction = (typeof UnitAction)[keyof typeof UnitAction];

/** Names of the kernel's cumulative packet counters, in fastpath_consts.h GWC_STAT_* order. */
export const FASTPATH_STAT_NAMES = [
  'passed', // owned unit, passed in the kernel
  'dropped', // another member's unit, dropped in the kernel
  'toUser', // marked for user space
  'invalid', // truncated or malformed IP, dropped (the packet engine's INVALID)
  'bypass', // to the member's own addresses, broadcast or multicast: untouched
  'notIp', // ARP, other EtherTypes, runt or over-tagged frames: untouched
  'ipv6Undecided', // IPv6 while decideIpv6 is off: untouched
  'cluster', // classified to a cluster IP
  'forwarded', // classified as forwarded
  'fragments',
  'l2tp',
  'l2tpFallback',
  'flowHit', // PASS_TRACKED: a packet of an offloaded flow, passed (also counted in 'passed')
  'flowMiss', // PASS_TRACKED: not offloaded (or SYN/FIN/RST), up to the engine (also counted in 'toUser')
  'redirected', // REDIRECT: sent to the owner's MAC in the kernel
] as const;
export type FastPathStatName = (typeof FASTPATH_STAT_NAMES)[number];
export type FastPathStats = Record<FastPathStatName, bigint>;

/** 'tcx': a bpf_link (Linux 6.6+), detached by the kernel when this process ends; 'cls_bpf': a
 * direct-action filter on the clsact qdisc, which outlives the process until detach(). */
export type FastPathAttachMode = 'tcx' | 'cls_bpf';

export interface FastPathOptions {
  /** Destinations that are "a cluster IP" (the work-set filter). */
  clusterIps: ClusterIpsInput;
  /** Destinations never decided (the member's own addresses, subnet broadcasts). Default none. */
  bypassIps?: ClusterIpsInput;
  /** Packets start with an Ethernet header (default true); false for L3 devices (tun, WireGuard). */
  frames?: boolean;
  /** Decide IPv6 packets too; by default they pass untouched (today's NFQUEUE rule is IPv4 only). */
  decideIpv6?: boolean;
  /** Bits OR-ed into skb->mark of TO_USER packets, 0..2^32-1. Default 0 (no mark). */
  userMark?: number;
  /**
   * Bits OR-ed into skb->mark of PASS packets, 0..2^32-1. Default 0 (no mark). A rule that lets only
   * these through and queues everything else keeps the NFQUEUE fail-safe when the program is gone.
   */
  passMark?: number;
  /** The BPF object; default the one built beside the addon. */
  objectPath?: string;
  binding?: FilterBinding;
}

/** Per-packet kernel outcome of classifyInKernel: the filter's fields plus the program's tc verdict. */
export type KernelDetailedBatch = NativeDetailedBatch & {
  /** TC_ACT_OK (0) or TC_ACT_SHOT (2) per packet. */
  verdicts: Uint8Array;
};

const CONFIG_FRAMES = 0x1;
const CONFIG_DECIDE_IPV6 = 0x2;

/** True when the addon was built with the fast path (clang and libbpf present at build time). */
export function fastPathAvailable(binding?: FilterBinding): boolean {
  const b = binding ?? loadBinding();
  return b.hasFastPath === true && b.FastPath !== undefined;
}

export class FastPath {
  #native: NativeFastPath | null;
  #config: { flags: number; userMark: number; passMark: number };

  /** Loads the program (the kernel's verifier runs here). Throws NativeCallError (syscall, errno) on refusal. */
  constructor(opts: FastPathOptions) {
    const call = 'FastPath';
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${call}: opts must be an object { clusterIps, ... }`);
    const b = opts.binding ?? loadBinding();
    if (!fastPathAvailable(b)) {
      throw new NativeCallError(call, 'the addon was built without the kernel fast path (needs clang and libbpf-dev at build time; scripts/setup.sh installs them)', {
        code: 'GWC_FASTPATH_NOT_BUILT',
      });
    }
    const frames = opts.frames ?? true;
    checkBoolean(frames, call, 'opts.frames');
    const decideIpv6 = opts.decideIpv6 ?? false;
    checkBoolean(decideIpv6, call, 'opts.decideIpv6');
    const userMark = opts.userMark ?? 0;
    checkInteger(userMark, call, 'opts.userMark', 0, 0xffffffff);
    const passMark = opts.passMark ?? 0;
    checkInteger(passMark, call, 'opts.passMark', 0, 0xffffffff);
    const objectPath = opts.objectPath ?? fileURLToPath(FASTPATH_OBJECT_URL);
    if (typeof objectPath !== 'string') throw new TypeError(`${call}: opts.objectPath must be a string`);
    const cluster = parseClusterIps(opts.clusterIps, `${call}: opts.clusterIps`);
    const bypass = parseClusterIps(opts.bypassIps ?? [], `${call}: opts.bypassIps`);
    const Ctor = b.FastPath!;
    const native = callNative(call, () => new Ctor(objectPath));
    this.#native = native;
    this.#config = { flags: (frames ? CONFIG_FRAMES : 0) | (decideIpv6 ? CONFIG_DECIDE_IPV6 : 0), userMark, passMark };
    try {
      callNative(call, () => native.setConfig(this.#config.flags, 0, userMark, passMark));
      callNative(call, () => native.setClusterIps(cluster.v4, cluster.v6));
      callNative(call, () => native.setBypassIps(bypass.v4, bypass.v6));
    } catch (e) {
      native.close();
      this.#native = null;
      throw e;
    }
  }

  #open(call: string): NativeFastPath {
    if (!this.#native) throw new NativeCallError(call, 'the fast path is closed', { code: 'GWC_FASTPATH_CLOSED' });
    return this.#native;
  }

  /** Starts deciding the packets arriving on `ifname` (this process's network namespace). */
  attach(ifname: string, opts: { mode?: FastPathAttachMode } = {}): void {
    const call = 'FastPath.attach';
    if (typeof ifname !== 'string' || ifname.length === 0 || ifname.length > 15) {
      throw new TypeError(`${call}: ifname must be an interface name of 1..15 characters, got ${JSON.stringify(ifname)}`);
    }
    const mode = opts.mode ?? 'tcx';
    if (mode !== 'tcx' && mode !== 'cls_bpf') throw new TypeError(`${call}: opts.mode must be 'tcx' or 'cls_bpf', got ${JSON.stringify(mode)}`);
    const n = this.#open(call);
    callNative(call, () => n.attach(ifname, mode === 'tcx' ? 0 : 1));
  }

  /** Stops deciding; packets go their way as before attach(). Idempotent. */
  detach(): void {
    const n = this.#open('FastPath.detach');
    callNative('FastPath.detach', () => n.detach());
  }

  get attached(): boolean {
    return this.#native?.attached() ?? false;
  }

  /** The kernel's action for every unit in `units` from its next packet on. ownerSlot: the owner in the ownership table. */
  setUnitActions(units: Iterable<number>, action: UnitAction, ownerSlot = 0): void {
    const call = 'FastPath.setUnitActions';
    checkInteger(action, call, 'action', 0, 4);
    checkInteger(ownerSlot, call, 'ownerSlot', 0, 0xffff);
    const list = units instanceof Uint16Array ? units : Uint16Array.from(units, (u, i) => (checkInteger(u, call, `units[${i}]`, 0, WORK_UNITS - 1), u));
    const n = this.#open(call);
    callNative(call, () => n.setUnitPolicies(list, action, ownerSlot));
  }

  setUnitAction(unit: number, action: UnitAction, ownerSlot = 0): void {
    checkInteger(unit, 'FastPath.setUnitAction', 'unit', 0, WORK_UNITS - 1);
    this.setUnitActions([unit], action, ownerSlot);
  }

  setClusterIps(ips: ClusterIpsInput): void {
    const call = 'FastPath.setClusterIps';
    const c = parseClusterIps(ips, `${call}: ips`);
    const n = this.#open(call);
    callNative(call, () => n.setClusterIps(c.v4, c.v6));
  }

  setBypassIps(ips: ClusterIpsInput): void {
    const call = 'FastPath.setBypassIps';
    const c = parseClusterIps(ips, `${call}: ips`);
    const n = this.#open(call);
    callNative(call, () => n.setBypassIps(c.v4, c.v6));
  }

  /** Packets and IP bytes passed in the kernel per unit since the last reset (index = unit). */
  unitCounters(opts: { reset: boolean }): { packets: BigUint64Array; bytes: BigUint64Array } {
    const call = 'FastPath.unitCounters';
    checkBoolean(opts?.reset, call, 'opts.reset');
    const n = this.#open(call);
    const all = callNative(call, () => n.unitCounters(opts.reset));
    return { packets: all.subarray(0, WORK_UNITS), bytes: all.subarray(WORK_UNITS) };
  }

  /** Cumulative packet counters of the program (FASTPATH_STAT_NAMES). */
  stats(): FastPathStats {
    const call = 'FastPath.stats';
    const n = this.#open(call);
    const v = callNative(call, () => n.stats());
    return Object.fromEntries(FASTPATH_STAT_NAMES.map((name, i) => [name, v[i]!])) as FastPathStats;
  }

  /**
   * Runs the program on each packet of the batch through BPF_PROG_TEST_RUN (no interface involved) and
   * returns what it computed: the parity tests compare this with classifyBatchDetailed. Only while detached.
   */
  classifyInKernel(packets: Uint8Array, offsets: Uint32Array, opts: { frames: boolean }): KernelDetailedBatch {
    const call = 'FastPath.classifyInKernel';
    checkOffsets(packets, offsets, call);
    checkBoolean(opts?.frames, call, 'opts.frames');
    const n = this.#open(call);
    return callNative(call, () => n.classifyInKernel(packets, offsets, opts.frames));
  }

  /** Average nanoseconds per run of the program over `repeat` runs on one packet (the kernel's clock). */
  runDuration(packet: Uint8Array, opts: { frames: boolean; repeat: number }): number {
    const call = 'FastPath.runDuration';
    checkBoolean(opts?.frames, call, 'opts.frames');
    checkInteger(opts.repeat, call, 'opts.repeat', 1, 100_000_000);
    const n = this.#open(call);
    return callNative(call, () => n.testRunDuration(packet, opts.frames, opts.repeat));
  }

  /**
   * Folds what the kernel passed of the offloaded flows into their sessions in `table` (last seen,
   * sequence, ack, window: lazily replicated), and deletes the flow entries whose session is gone or no
   * longer established, so that their packets go up to the engine again. Call every few hundred ms.
   */
  syncFlows(table: SessionTable): FlowSyncResult {
    const call = 'FastPath.syncFlows';
    if (!(table instanceof SessionTable)) throw new TypeError(`${call}: table must be a SessionTable`);
    const n = this.#open(call);
    return callNative(call, () => n.syncFlows(table.native));
  }

  /** Flows the packet engine offloaded into this path's flow map, and the insertions the kernel refused. */
  flowStats(): { offloaded: number; offloadErrors: number } {
    const call = 'FastPath.flowStats';
    const n = this.#open(call);
    return callNative(call, () => n.flowStats());
  }

  /** REDIRECT frames leave through `ifname` (its index and MAC are read now); '' for none. */
  setForwardInterface(ifname: string): void {
    const call = 'FastPath.setForwardInterface';
    if (typeof ifname !== 'string' || ifname.length > 15) throw new TypeError(`${call}: ifname must be an interface name of at most 15 characters, or ''`);
    const n = this.#open(call);
    callNative(call, () => n.setForwardInterface(ifname));
  }

  /** The MAC ("aa:bb:cc:dd:ee:ff") of the member in packet-path slot `slot`, or null to forget it. */
  setSlotMac(slot: number, mac: string | null): void {
    const call = 'FastPath.setSlotMac';
    checkInteger(slot, call, 'slot', 0, 0xffff);
    let bytes: Uint8Array | null = null;
    if (mac !== null) {
      if (typeof mac !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw new TypeError(`${call}: mac must be "aa:bb:cc:dd:ee:ff" or null, got ${JSON.stringify(mac)}`);
      bytes = Uint8Array.from(mac.split(':'), (h) => parseInt(h, 16));
    }
    const n = this.#open(call);
    callNative(call, () => n.setSlotMac(slot, bytes));
  }

  /**
   * Offloads the flow of `ipPacket` (an IPv4 TCP segment without SYN/FIN/RST, or UDP; from its IP
   * header) in `unit`'s current generation: what the packet engine does once it saw the session
   * established. For tests and tools; the engine does it by itself.
   */
  offloadPacket(ipPacket: Uint8Array, unit: number): void {
    const call = 'FastPath.offloadPacket';
    if (!(ipPacket instanceof Uint8Array)) throw new TypeError(`${call}: ipPacket must be a Uint8Array`);
    checkInteger(unit, call, 'unit', 0, WORK_UNITS - 1);
    const n = this.#open(call);
    callNative(call, () => n.offloadPacket(ipPacket, unit));
  }

  /**
   * Runs the program once on `packet` as configured (policies, offloaded flows, marks) through
   * BPF_PROG_TEST_RUN: its tc verdict (0 pass, 2 drop) and the skb mark it left. Only while detached.
   */
  runOnce(packet: Uint8Array, opts: { frames: boolean }): { verdict: number; mark: number } {
    const call = 'FastPath.runOnce';
    if (!(packet instanceof Uint8Array)) throw new TypeError(`${call}: packet must be a Uint8Array`);
    checkBoolean(opts?.frames, call, 'opts.frames');
    const n = this.#open(call);
    return callNative(call, () => n.runOnce(packet, opts.frames));
  }

  /** The native object, for PacketEngine.attachFlowOffloads. Throws when closed. */
  get native(): NativeFastPath {
    return this.#open('FastPath.native');
  }

  /** Detaches and unloads the program and its maps. Idempotent. */
  close(): void {
    this.#native?.close();
    this.#native = null;
  }
}
