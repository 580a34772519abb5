/**
 * The kernel packet path (`dataplane.path: kernel`): a tc BPF program (native-addon FastPath) on every
 * data-plane interface decides the packets it can (kernel-action.ts), and the NFQUEUE packet engine
 * (nfqueue-path.ts) decides the rest exactly as on the nfqueue path. Both read the same ownership: every
 * PacketPath call goes to the engine, and the unit's kernel action is recomputed and written.
 *
 * Where packets go (docs/dataplane.md):
 *   - this member's units: passed in the kernel with KERNEL_PASS_MARK; the netfilter rule returns such
 *     packets before its NFQUEUE rule (netfilter.ts, plan.passMark);
 *   - other members' (and, at a non-master, nobody's) units: dropped in the kernel;
 *   - the rest (held, unassigned at the master, method 1 forwarding, strict session tracking): passed
 *     unmarked, so the NFQUEUE rule queues them to the engine.
 * The program is attached in tcx mode: when the process dies the kernel detaches it, nothing is marked
 * any more, and the NFQUEUE rule (with no engine reading) drops every packet, as on the nfqueue path.
 *
 * Ordering (packet-path.ts): hold() makes the unit TO_USER in the kernel before the engine holds it;
 * release() lets the engine deliver the held packets before the kernel decides the unit's new packets,
 * so new packets never overtake held ones. setOwner() of a held unit changes no kernel action.
 *
 * Session tracking (docs/dataplane.md, "Flow offload"): with a session table attached, this member's
 * units are PASS_TRACKED. The engine tracks every new flow, SYN, FIN and RST as before and, once a
 * session is established, offloads the flow into each interface's flow map; the kernel then passes the
 * flow's packets itself, and every FLOW_SYNC_MS this path folds what the kernel saw (last seen, sequence
 * end, ack, window) into the table, which replicates it lazily like any sequence movement. Flow entries
 * carry the unit's generation: a unit that leaves and comes back (or is held and released) starts with
 * no offloaded flow, so the engine sees each flow's first packet of a new term of ownership.
 */
import { FastPath, fastPathAvailable, FASTPATH_STAT_NAMES, UnitAction, type FastPathOptions, type SessionTable } from '@gwcluster/native-addon';
import { UNIT_COUNT } from '@gwcluster/wire';
import type { KernelSetup } from './data-plane.js';
import { kernelUnitAction } from './kernel-action.js';
import { nfqueuePacketPath } from './nfqueue-path.js';
import { ownAndBroadcastAddresses, setupNetfilter, teardownNetfilter } from './netfilter.js';
import { type PacketPath, type PacketPathFactory, type PacketPathOptions } from './packet-path.js';

/**
 * skb->mark bit of packets the program passed (this member's units). Packets keep it through the stack:
 * a host that routes by fwmark must not use this bit.
 */
export const KERNEL_PASS_MARK = 0x10000000;

/** How often the kernel's view of offloaded flows is folded into the session table, ms. */
export const FLOW_SYNC_MS = 250;

/** The part of FastPath the kernel path uses (tests inject a fake; a fake cannot offload flows). */
export type UnitDecider = Pick<FastPath, 'attach' | 'setUnitActions' | 'unitCounters' | 'stats' | 'close'> &
  Partial<Pick<FastPath, 'setForwardInterface' | 'setSlotMac'>>;

export interface KernelPathDeps {
  /** The user-space path for what the kernel hands up. Default: the NFQUEUE packet engine. */
  readonly openEngine?: PacketPathFactory;
  /** Loads the BPF program (not yet attached). Default: a native FastPath. */
  readonly openDecider?: (opts: FastPathOptions) => UnitDecider;
}

/** The kernel side of the kernel path: netfilter.ts with the pass-mark rule; bypass includes subnet broadcasts. */
export const kernelPathSetup: KernelSetup = {
  ownAddresses: ownAndBroadcastAddresses,
  setup: (plan) => setupNetfilter({ ...plan, passMark: KERNEL_PASS_MARK }),
  teardown: (plan) => teardownNetfilter({ ...plan, passMark: KERNEL_PASS_MARK }),
};

function openNativeDecider(opts: FastPathOptions): UnitDecider {
  if (!fastPathAvailable()) {
    throw new Error('dataplane.path kernel: the native addon was built without the kernel fast path (needs clang and libbpf-dev at build time: run scripts/setup.sh), or set dataplane.path to nfqueue');
  }
  return new FastPath(opts);
}

export function kernelPacketPathFactory(deps: KernelPathDeps = {}): PacketPathFactory {
  const openEngine = deps.openEngine ?? nfqueuePacketPath;
  const openDecider = deps.openDecider ?? openNativeDecider;
  return (opts) => new KernelPacketPath(opts, openEngine(opts), openDecider);
}

export const kernelPacketPath: PacketPathFactory = kernelPacketPathFactory();

/**
 * `dataplane.path: auto`: the kernel path where it loads (addon built with the fast path, Linux 6.6+
 * tcx, CAP_BPF and CAP_NET_ADMIN), else the NFQUEUE path, with `onFallback(why)` called once. Used with
 * kernelPathSetup either way: with no program marking packets, its rules queue every packet, as the
 * NFQUEUE path's do.
 */
export function autoPacketPathFactory(onFallback: (why: string) => void, deps: KernelPathDeps = {}): PacketPathFactory {
  const kernel = kernelPacketPathFactory(deps);
  const fallback = deps.openEngine ?? nfqueuePacketPath;
  return (opts) => {
    if (!deps.openDecider && !fastPathAvailable()) {
      onFallback('the native addon was built without the kernel fast path (needs clang and libbpf-dev at build time: run scripts/setup.sh)');
      return fallback(opts);
    }
    try {
      return kernel(opts);
    } catch (e) {
      onFallback((e as Error).message);
      return fallback(opts);
    }
  };
}

class KernelPacketPath implements PacketPath {
  private readonly deciders: UnitDecider[] = [];
  private readonly owner = new Uint16Array(UNIT_COUNT);
  private readonly held = new Uint8Array(UNIT_COUNT);
  /** The action last written to the kernel per unit (every unit starts TO_USER). */
  private readonly written = new Uint8Array(UNIT_COUNT).fill(UnitAction.TO_USER);
  private localSlot: number;
  private master = false;
  /** Every decider sends frames out of the forward interface (method 1 forwarding in the kernel). */
  private redirecting = false;
  /** Slots whose MAC every decider knows. */
  private readonly slotMacs = new Set<number>();
  private tracking: 'none' | 'offload' | 'user' = 'none';
  private table: SessionTable | null = null;
  private flowTimer: NodeJS.Timeout | null = null;
  private readonly flowTotals = { syncs: 0, removed: 0, errors: 0, syncFailures: 0 };
  private writeErrors = 0;
  private closed = false;

  constructor(
    private readonly opts: PacketPathOptions,
    private readonly engine: PacketPath,
    openDecider: (o: FastPathOptions) => UnitDecider,
  ) {
    this.localSlot = opts.localSlot;
    try {
      for (const ifname of opts.interfaces) {
        const decider = openDecider({ clusterIps: [...opts.clusterIps], bypassIps: [...opts.bypassAddresses], passMark: KERNEL_PASS_MARK });
        this.deciders.push(decider);
        try {
          decider.attach(ifname, { mode: 'tcx' });
        } catch (e) {
          throw new Error(`dataplane.path kernel: cannot attach the BPF program to ${ifname} in tcx mode (needs Linux 6.6+): ${(e as Error).message}`);
        }
      }
      if (opts.method === 1 && opts.forwardInterface) {
        try {
          for (const d of this.deciders) {
            if (!d.setForwardInterface) throw new Error('the decider cannot redirect');
            d.setForwardInterface(opts.forwardInterface);
          }
          this.redirecting = true;
        } catch (e) {
          // The engine forwards instead (every other member's unit stays TO_USER at the master).
          const error = new Error(`kernel path: forwarding stays in user space (${opts.forwardInterface}): ${(e as Error).message}`);
          queueMicrotask(() => this.opts.onError(error));
        }
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  setRole(role: { localSlot: number; master: boolean }): void {
    this.engine.setRole(role);
    this.localSlot = role.localSlot;
    this.master = role.master;
    this.decideAll();
  }

  setOwner(unit: number, slot: number): void {
    this.engine.setOwner(unit, slot);
    this.owner[unit] = slot;
    this.decide([unit]);
  }

  setSlotMac(slot: number, mac: string): void {
    this.engine.setSlotMac(slot, mac);
    if (!this.redirecting) return;
    try {
      for (const d of this.deciders) d.setSlotMac!(slot, mac);
      this.slotMacs.add(slot);
    } catch (e) {
      this.slotMacs.delete(slot);
      this.writeErrors++;
      const error = new Error(`kernel path: cannot give the kernel slot ${slot}'s MAC ${mac}: ${(e as Error).message}`);
      queueMicrotask(() => this.opts.onError(error));
    }
    const units: number[] = [];
    for (let u = 0; u < UNIT_COUNT; u++) if (this.owner[u] === slot) units.push(u);
    this.decide(units);
  }

  hold(unit: number): void {
    this.held[unit] = 1;
    this.decide([unit]);
    this.engine.hold(unit);
  }

  release(unit: number): void {
    this.engine.release(unit);
    this.held[unit] = 0;
    this.decide([unit]);
  }

  setArpAnswering(on: boolean): void {
    this.engine.setArpAnswering(on);
  }

  announce(): void {
    this.engine.announce();
  }

  attachSessions(table: SessionTable | null): void {
    const offloaders = this.offloaders();
    const canOffload = offloaders.length === this.deciders.length && offloaders.length > 0 && this.engine.attachFlowOffloads !== undefined;
    if (table === null || !canOffload) this.engine.attachFlowOffloads?.([]);
    this.engine.attachSessions(table);
    this.table = table;
    this.tracking = table === null ? 'none' : canOffload ? 'offload' : table.mode === 'strict' ? 'user' : 'none';
    if (this.tracking === 'offload') {
      this.engine.attachFlowOffloads!(offloaders);
      if (!this.flowTimer) {
        this.flowTimer = setInterval(() => this.syncFlows(), FLOW_SYNC_MS);
        this.flowTimer.unref();
      }
    } else if (this.flowTimer) {
      clearInterval(this.flowTimer);
      this.flowTimer = null;
    }
    this.decideAll();
  }

  /** The deciders that can take offloaded flows (native fast paths). */
  private offloaders(): FastPath[] {
    return this.deciders.filter((d): d is FastPath => d instanceof FastPath);
  }

  syncSessions(): void {
    if (this.tracking === 'offload') this.syncFlows();
  }

  /** Folds the kernel's view of the offloaded flows into the session table (FLOW_SYNC_MS). */
  private syncFlows(): void {
    if (this.closed || !this.table) return;
    for (const d of this.offloaders()) {
      try {
        const r = d.syncFlows(this.table);
        this.flowTotals.removed += r.removed;
        this.flowTotals.errors += r.errors;
      } catch (e) {
        this.flowTotals.syncFailures++;
        if (this.flowTotals.syncFailures === 1 || this.flowTotals.syncFailures % 100 === 0) {
          this.opts.onError(new Error(`kernel path: cannot read the offloaded flows (${this.flowTotals.syncFailures} times so far): ${(e as Error).message}`));
        }
      }
    }
    this.flowTotals.syncs++;
  }

  counters(opts: { reset: boolean }): { packets: Float64Array; bytes: Float64Array } {
    const user = this.engine.counters(opts);
    const packets = Float64Array.from(user.packets, Number);
    const bytes = Float64Array.from(user.bytes, Number);
    for (const d of this.deciders) {
      const k = d.unitCounters(opts);
      for (let u = 0; u < UNIT_COUNT; u++) {
        packets[u]! += Number(k.packets[u]!);
        bytes[u]! += Number(k.bytes[u]!);
      }
    }
    return { packets, bytes };
  }

  /** The engine's statistics, and the program's (FASTPATH_STAT_NAMES, summed over interfaces) as `kernel.<name>`. */
  stats(): Record<string, number | bigint> {
    const out: Record<string, number | bigint> = {
      ...this.engine.stats(),
      'kernel.writeErrors': this.writeErrors,
      'kernel.flowSyncs': this.flowTotals.syncs,
      'kernel.flowSyncRemoved': this.flowTotals.removed,
      'kernel.flowSyncErrors': this.flowTotals.errors + this.flowTotals.syncFailures,
    };
    let offloaded = 0;
    let offloadErrors = 0;
    for (const d of this.offloaders()) {
      try {
        const f = d.flowStats();
        offloaded += f.offloaded;
        offloadErrors += f.offloadErrors;
      } catch {
        // closed
      }
    }
    out['kernel.flowsOffloaded'] = offloaded;
    out['kernel.flowOffloadErrors'] = offloadErrors;
    for (const name of FASTPATH_STAT_NAMES) out[`kernel.${name}`] = 0;
    for (const d of this.deciders) {
      const s = d.stats();
      for (const name of FASTPATH_STAT_NAMES) out[`kernel.${name}`] = Number(out[`kernel.${name}`]) + Number(s[name]);
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.flowTimer) clearInterval(this.flowTimer);
    this.flowTimer = null;
    // Detach first: the packets then go to the queue, which the engine serves until it closes too.
    for (const d of this.deciders) d.close();
    this.engine.close();
  }

  private decideAll(): void {
    const all: number[] = [];
    for (let u = 0; u < UNIT_COUNT; u++) all.push(u);
    this.decide(all);
  }

  /** Writes the kernel action of each unit whose action changed, grouped by (action, owner). */
  private decide(units: readonly number[]): void {
    if (this.closed) return;
    const groups = new Map<number, number[]>();
    for (const u of units) {
      const action = kernelUnitAction({
        owner: this.owner[u]!,
        localSlot: this.localSlot,
        master: this.master,
        method: this.opts.method,
        held: this.held[u] === 1,
        tracking: this.tracking,
        ownerReachable: this.redirecting && this.slotMacs.has(this.owner[u]!),
      });
      if (action === this.written[u]) continue;
      const key = action * 0x10000 + this.owner[u]!;
      const list = groups.get(key);
      if (list) list.push(u);
      else groups.set(key, [u]);
    }
    for (const [key, list] of groups) {
      const action = Math.floor(key / 0x10000) as UnitAction;
      const owner = key % 0x10000;
      try {
        for (const d of this.deciders) d.setUnitActions(list, action, owner);
        for (const u of list) this.written[u] = action;
      } catch (e) {
        // Not recorded as written: the next change of these units writes them again.
        this.writeErrors++;
        const error = new Error(`kernel path: cannot write the kernel action of ${list.length} unit(s) (first ${list[0]}): ${(e as Error).message}`);
        queueMicrotask(() => this.opts.onError(error));
      }
    }
  }
}
