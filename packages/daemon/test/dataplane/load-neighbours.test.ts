import { describe, expect, it } from 'vitest';
import { UNIT_COUNT } from '@gwcluster/wire';
import { measureLoad, BUSIEST_UNITS_REPORTED } from '../../src/dataplane/load.js';
import { NeighbourTable } from '../../src/dataplane/neighbours.js';
import { LOCAL_SLOT } from '../../src/dataplane/packet-path.js';

describe('measureLoad', () => {
  it('weighs each served unit 1 plus its packets over ppsPerUnitWeight, busiest first', () => {
    const packets = new Float64Array(UNIT_COUNT);
    packets[1] = 500;
    packets[2] = 2000;
    packets[3] = 9999; // not served: ignored
    const served = new Set([0, 1, 2]);
    expect(measureLoad(packets, (u) => served.has(u), 1000)).toEqual({
      load: 1 + 1.5 + 3,
      busiest: [
        { unit: 2, weight: 3 },
        { unit: 1, weight: 1.5 },
      ],
    });
  });

  it('reports at most BUSIEST_UNITS_REPORTED units', () => {
    const packets = new Float64Array(UNIT_COUNT).fill(10);
    expect(measureLoad(packets, () => true, 1000).busiest).toHaveLength(BUSIEST_UNITS_REPORTED);
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
