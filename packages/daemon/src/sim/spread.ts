/**
 * Work follows traffic, in virtual time: three (or more) members' cores in cluster-core's SimNetwork,
 * flows whose packets land on work units, and the data plane's part played by the same pure pieces a
 * running member uses: a packet of a unit nobody owns asks the master for an owner (`unit-needs-owner`,
 * as the packet engine does), and every second each member reports the load measure of what it served
 * (dataplane/load.ts, the function data-plane.ts calls). The result is which member carries which flow
 * and how many bytes, and how many flows changed member on the way.
 *
 * Pure (no socket, timer, file or native binding): used by the tests (test/sim/spread.test.ts) and by
 * `npm run bench` (its spread section), which computes each flow's unit with the filter reference.
 */
import { SimNetwork } from '@gwcluster/cluster-core';
import { UNIT_COUNT, type MemberId, type WorkUnit } from '@gwcluster/wire';
import { measureLoad, type LoadScale } from '../dataplane/load.js';

/** One flow: its work unit and its steady rate. */
export interface SpreadFlow {
  readonly unit: WorkUnit;
  readonly pps: number;
  readonly bytesPerSecond: number;
}

export interface SpreadOptions {
  readonly members: number;
  readonly unitAssignment: 'at-once' | 'first-packet';
  readonly flows: readonly SpreadFlow[];
  /** Flows start one after another over this many ms (in the given order). Default 1000. */
  readonly startOverMs?: number;
  /** Virtual seconds of traffic after the last flow started. Default 20 (ten rebalance rounds). */
  readonly seconds?: number;
  readonly scale?: LoadScale;
  readonly seed?: number;
  /** Rebalance hysteresis (cluster.rebalanceThreshold). Default the core's (0.05). */
  readonly rebalanceThreshold?: number;
}

export interface MemberShare {
  readonly member: MemberId;
  readonly flows: number;
  readonly bytesPerSecond: number;
  /** Units this member owns that carry at least one flow. */
  readonly busyUnits: number;
  /** Indexes (into SpreadOptions.flows) of the flows it carries. */
  readonly flowIndexes: readonly number[];
}

export interface SpreadResult {
  readonly shares: readonly MemberShare[];
  /** Flows whose member at the end differs from the first member that carried them. */
  readonly flowsMoved: number;
  /** Flows whose unit had no owner when the run ended (their packets would still be held). */
  readonly unowned: number;
}

export const DEFAULT_LOAD_SCALE: LoadScale = { ppsPerUnitWeight: 1000, bytesPerUnitWeight: 1_000_000 };

const memberIp = (i: number): MemberId => `192.0.2.${11 + i}`;

export function runSpread(o: SpreadOptions): SpreadResult {
  const scale = o.scale ?? DEFAULT_LOAD_SCALE;
  const net = new SimNetwork({
    seed: o.seed ?? 1,
    coreOverrides: { unitAssignment: o.unitAssignment, ...(o.rebalanceThreshold !== undefined ? { rebalanceThreshold: o.rebalanceThreshold } : {}) },
  });
  const ids = Array.from({ length: o.members }, (_, i) => memberIp(i));
  for (const id of ids) net.add(id);
  for (const id of ids) net.start(id);
  const formed = () => {
    const m = net.masters();
    return m.length === 1 && m[0]!.member.status(net.now).members.length === o.members && m[0]!.member.status(net.now).movingUnits === 0;
  };
  if (net.runUntil(formed, 20_000) === null) throw new Error('the simulated cluster did not form');
  // Past the new master's grace period, so units are handed out (at once, or on their first packet).
  net.run(net.masters()[0]!.member.config.reclaimGraceMs + 500);
  if (o.unitAssignment === 'at-once' && net.runUntil(() => net.converged(o.members), 10_000) === null) throw new Error('the table did not fill');

  const packets = new Map<MemberId, Float64Array>(ids.map((id) => [id, new Float64Array(UNIT_COUNT)]));
  const bytes = new Map<MemberId, Float64Array>(ids.map((id) => [id, new Float64Array(UNIT_COUNT)]));
  const ownerOf = (u: WorkUnit): MemberId | undefined => ids.find((id) => net.node(id).member.owned.has(u));
  const master = () => net.masters()[0]!.id;
  const started: boolean[] = o.flows.map(() => false);
  const firstCarrier: (MemberId | undefined)[] = o.flows.map(() => undefined);
  const startOver = o.startOverMs ?? 1000;
  const step = 10;
  const end = net.now + startOver + (o.seconds ?? 20) * 1000;
  let nextReport = net.now + 1000;
  const t0 = net.now;
  while (net.now < end) {
    // Flows due to start send their first packet: a unit nobody owns asks the master for an owner.
    o.flows.forEach((f, i) => {
      if (started[i] || net.now - t0 < (o.flows.length > 1 ? (i * startOver) / o.flows.length : 0)) return;
      started[i] = true;
      const table = net.node(master()).member.status(net.now).owners;
      if (table[f.unit] === null || table[f.unit] === undefined) net.event(master(), { type: 'unit-needs-owner', unit: f.unit });
    });
    // Traffic of this step goes to whoever serves the unit now (held packets are counted when released).
    o.flows.forEach((f, i) => {
      if (!started[i]) return;
      const owner = ownerOf(f.unit);
      if (owner === undefined) return;
      firstCarrier[i] ??= owner;
      packets.get(owner)![f.unit]! += (f.pps * step) / 1000;
      bytes.get(owner)![f.unit]! += (f.bytesPerSecond * step) / 1000;
    });
    net.run(step);
    if (net.now >= nextReport) {
      nextReport += 1000;
      for (const id of ids) {
        const node = net.node(id);
        const m = measureLoad(packets.get(id)!, bytes.get(id)!, (u) => node.member.owned.has(u), scale);
        net.event(id, { type: 'load-report', load: m.load, busiestUnits: m.busiest });
        packets.get(id)!.fill(0);
        bytes.get(id)!.fill(0);
      }
    }
  }
  const shares = ids.map((id) => {
    const owned = net.node(id).member.owned;
    const flowIndexes = o.flows.flatMap((f, i) => (owned.has(f.unit) ? [i] : []));
    return {
      member: id,
      flows: flowIndexes.length,
      bytesPerSecond: flowIndexes.reduce((a, i) => a + o.flows[i]!.bytesPerSecond, 0),
      busyUnits: new Set(flowIndexes.map((i) => o.flows[i]!.unit)).size,
      flowIndexes,
    };
  });
  let flowsMoved = 0;
  let unowned = 0;
  o.flows.forEach((f, i) => {
    const now = ownerOf(f.unit);
    if (now === undefined) unowned++;
    else if (firstCarrier[i] !== undefined && firstCarrier[i] !== now) flowsMoved++;
  });
  return { shares, flowsMoved, unowned };
}

/** Largest deviation from the mean, as a fraction of the mean (0 when the mean is 0). */
export function spreadOf(values: readonly number[]): number {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return mean === 0 ? 0 : Math.max(...values.map((v) => Math.abs(v - mean))) / mean;
}
