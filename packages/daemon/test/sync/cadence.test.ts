import { describe, expect, it } from 'vitest';
import { SyncCadence, URGENT_EVERY_MS } from '../../src/sync/cadence.js';

describe('SyncCadence', () => {
  it('runs the lazy pass and expiry every second of 10 ms ticks', () => {
    const c = new SyncCadence();
    const t0 = 1_700_000_000_000;
    let lazy = 0;
    let expire = 0;
    for (let t = t0; t < t0 + 2000; t += URGENT_EVERY_MS) {
      const due = c.due(t);
      if (due.lazy) lazy++;
      if (due.expire) expire++;
    }
    expect(lazy).toBe(2);
    expect(expire).toBe(2);
  });

  it('runs both passes on the first tick', () => {
    expect(new SyncCadence().due(5000)).toEqual({ lazy: true, expire: true });
  });
});
