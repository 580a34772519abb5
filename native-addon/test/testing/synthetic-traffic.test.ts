// The synthetic traffic generator is a function of its seed: the parity tests and the benchmarks
// name a seed to reproduce a batch.
import { describe, expect, it } from 'vitest';
import { classifyBatchReference, generateBatch, SYNTHETIC_CLUSTER_V4, SYNTHETIC_CLUSTER_V6 } from '../../src/index.js';

describe('generateBatch', () => {
  const opts = { frames: true, truncate: 0.1, mutate: 0.1 };

  it('gives the same batch for the same seed and another for another seed', () => {
    const a = generateBatch(7, 2000, opts);
    const b = generateBatch(7, 2000, opts);
    const c = generateBatch(8, 2000, opts);
    expect(Buffer.compare(a.packets, b.packets)).toBe(0);
    expect(a.offsets).toEqual(b.offsets);
    expect(Buffer.compare(a.packets, c.packets)).not.toBe(0);
  });

  it('spreads packets over the work units of the cluster IPs', () => {
    const { packets, offsets, count } = generateBatch(1, 20_000, { frames: false, truncate: 0, mutate: 0 });
    expect(count).toBe(20_000);
    const units = classifyBatchReference(packets, offsets, [...SYNTHETIC_CLUSTER_V4, ...SYNTHETIC_CLUSTER_V6]);
    expect(new Set(units).size).toBeGreaterThan(900);
  });
});
