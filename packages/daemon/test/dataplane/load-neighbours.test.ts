import { describe, expect, it } from 'vitest';
import { UNIT_COUNT } from '@gwcluster/wire';
import { measureLoad, BUSIEST_UNITS_REPORTED } from '../../src/dataplane/load.js';
import { NeighbourTable } from '../../src/dataplane/neighbours.js';
import { LOCAL_SLOT } from '../../src/dataplane/packet-path.js';

describe('measureLoad', () => {
  const scale = { ppsPerUnitWeight: 1000, bytesPerUnitWeight: 1_000_000 };
  const none = new Float64Array(UNIT_COUNT);

  it('weighs each served unit 1 plus its packets over ppsPerUnitWeight, busiest first', () => {
    const packets = new Float64Array(UNIT_COUNT);
    packets[1] = 500;
    packets[2] = 2000;
    packets[3] = 9999; // not served: ignored
    const served = new Set([0, 1, 2]);
    expect(measureLoad(packets, none, (u) => served.has(u), scale)).toEqual({
      load: 1 + 1.5 + 3,
      busiest: [
        { unit: 2, weight: 3 },
        { unit: 1, weight: 1.5 },
      ],
    });
  });

  it('adds the bytes over bytesPerUnitWeight: an elephant of few big packets outweighs many small ones', () => {
    const packets = new Float64Array(UNIT_COUNT);
    const bytes = new Float64Array(UNIT_COUNT);
    packets[5] = 1000; // 1000 packets of 64 bytes
    bytes[5] = 64_000;
    packets[6] = 1000; // 1000 packets of 1500 bytes
    bytes[6] = 1_500_000;
    const m = measureLoad(packets, bytes, () => true, scale);
    expect(m.busiest).toEqual([
      { unit: 6, weight: 1 + 1 + 1.5 },
      { unit: 5, weight: 1 + 1 + 0.064 },
    ]);
    expect(m.load).toBeCloseTo(1022 + 3.5 + 2.064, 9);
  });

  it('reports at most BUSIEST_UNITS_REPORTED units', () => {
    const packets = new Float64Array(UNIT_COUNT).fill(10);
    expect(measureLoad(packets, none, () => true, scale).busiest).toHaveLength(BUSIEST_UNITS_REPORTED);
  });
});

describe('NeighbourTable', () => {
  it('tells the packet path a slot MAC once per change and counts misses', async () => {
    const macs: Record<string, string | null> = { '192.0.2.12': null };
    const set: [number, string][] = [];
    const t = new NeighbourTable({ device: 'eth1', setSlotMac: (s, m) => set.push([s, m]), lookup: async (ip) => macs[ip] ?? null });
    t.add('192.0.2.11', LOCAL_SLOT);
    t.add('192.0.2.12', 2);
    await t.refresh();
    expect(set).toEqual([]);
    expect(t.counters.macMisses).toBe(2);
    macs['192.0.2.12'] = '02:00:00:00:00:12';
    await t.refresh();
    await t.refresh();
    expect(set).toEqual([[2, '02:00:00:00:00:12']]);
  });
});
