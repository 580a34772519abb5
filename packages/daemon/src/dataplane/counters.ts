/**
 * Traffic counters of the data plane for metrics (TrafficCounters): cumulative per-unit packets and bytes
 * this member accepted, the hold queue and drops by reason, from the packet path's counters and stats.
 */
import { UNIT_COUNT } from '@gwcluster/wire';
import type { TrafficCounters } from '../operator/providers.js';
import type { UnitCounts } from './packet-path.js';

export class TrafficTotals implements TrafficCounters {
  private readonly packets = new Float64Array(UNIT_COUNT);
  private readonly bytes = new Float64Array(UNIT_COUNT);

  /** @param stats the packet path's current statistics ({} while it is not open) */
  constructor(private readonly stats: () => Record<string, number | bigint>) {}

  /** Adds one reading of the packet path's per-unit counters (taken with reset). */
  add(packets: UnitCounts, bytes: UnitCounts): void {
    for (let u = 0; u < UNIT_COUNT; u++) {
      this.packets[u]! += Number(packets[u] ?? 0);
      this.bytes[u]! += Number(bytes[u] ?? 0);
    }
  }

  unitPackets(): ArrayLike<number> {
    return this.packets;
  }

  unitBytes(): ArrayLike<number> {
    return this.bytes;
  }

  /** The packet engine counts drops per reason, not per unit. */
  unitDrops(): ArrayLike<number> {
    return new Float64Array(UNIT_COUNT);
  }

  holdQueue(): { readonly packets: number; readonly bytes: number } {
    const s = this.stats();
    return { packets: Number(s.heldPackets ?? 0), bytes: Number(s.heldBytes ?? 0) };
  }

  drops(): Readonly<Record<string, number>> {
    const s = this.stats();
    const n = (k: string) => Number(s[k] ?? 0);
    const verdicts = (s.verdicts ?? {}) as unknown as Record<string, number>;
    return {
      'not-owned': Number(verdicts.dropped ?? 0) - n('sessionDrops'),
      session: n('sessionDrops'),
      truncated: n('truncated'),
      malformed: n('malformed'),
      'hold-overflow': n('holdDrops'),
      'kernel-queue': n('kernelQueueDropped'),
      'forward-no-mac': n('forwardNoMac'),
    };
  }
}
