import { describe, expect, it } from 'vitest';
import { LogThrottle, tickPeriodMs } from '../../src/control/timing.js';

describe('driver timing', () => {
  it('ticks every tenth of the keepalive period, never more often than every 5 ms', () => {
    expect(tickPeriodMs(100)).toBe(10);
    expect(tickPeriodMs(1005)).toBe(100);
    expect(tickPeriodMs(20)).toBe(2);
    expect(tickPeriodMs(10)).toBe(2);
  });

  it('lets one line per key through per period', () => {
    const t = new LogThrottle(5000);
    expect(t.allow('bad-signature', 0)).toBe(true);
    expect(t.allow('bad-signature', 4999)).toBe(false);
    expect(t.allow('replayed', 4999)).toBe(true);
    expect(t.allow('bad-signature', 5000)).toBe(true);
  });
});
