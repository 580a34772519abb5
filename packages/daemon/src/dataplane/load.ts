/**
 * The load measure a member reports to the master every second (architecture.md, load measure): each
 * unit this member serves weighs 1 plus its packets in the last second over `ppsPerUnitWeight` plus its
 * IP bytes in the last second over `bytesPerUnitWeight`. Pure.
 */
import { UNIT_COUNT, type UnitLoad, type WorkUnit } from '@gwcluster/wire';
import type { UnitCounts } from './packet-path.js';

/** Units reported by weight, heaviest first, at most (the master moves busy units first). */
export const BUSIEST_UNITS_REPORTED = 32;

export interface LoadMeasure {
  /** Sum of the weights of the served units. */
  readonly load: number;
  /** Served units heavier than 1 (they saw packets), heaviest first, at most BUSIEST_UNITS_REPORTED. */
  readonly busiest: readonly UnitLoad[];
}

/** What one unit-equivalent of traffic is (dataplane.ppsPerUnitWeight, dataplane.bytesPerUnitWeight). */
export interface LoadScale {
  readonly ppsPerUnitWeight: number;
  readonly bytesPerUnitWeight: number;
}

/**
 * `packets`, `bytes`: per-unit packets and IP bytes over the last second; `serves(unit)`: this member
 * accepts the unit's packets.
 */
export function measureLoad(packets: UnitCounts, bytes: UnitCounts, serves: (unit: WorkUnit) => boolean, scale: LoadScale): LoadMeasure {
  const weights: UnitLoad[] = [];
  let load = 0;
  for (let u = 0; u < UNIT_COUNT; u++) {
    if (!serves(u)) continue;
    const w = 1 + Number(packets[u] ?? 0) / scale.ppsPerUnitWeight + Number(bytes[u] ?? 0) / scale.bytesPerUnitWeight;
    load += w;
    if (w > 1) weights.push({ unit: u, weight: w });
  }
  weights.sort((a, b) => b.weight - a.weight || a.unit - b.unit);
  return { load, busiest: weights.slice(0, BUSIEST_UNITS_REPORTED) };
}
