import { describe, expect, it } from 'vitest';
import { KeyedRateLimit, SecurityConfigError, TokenBucket } from '../src/index.js';

describe('TokenBucket', () => {
  it('passes a burst, then perSecond, and never holds more than burst', () => {
    const b = new TokenBucket({ perSecond: 10, burst: 3 });
    expect([0, 0, 0, 0].map(() => b.take(1000))).toEqual([true, true, true, false]);
    expect(b.take(1099)).toBe(false);
    expect(b.take(1100)).toBe(true);
    expect([1, 2, 3, 4].map(() => b.take(100_000))).toEqual([true, true, true, false]);
  });

  it('does not refill when the clock steps back', () => {
    const b = new TokenBucket({ perSecond: 1, burst: 1 });
    expect(b.take(5000)).toBe(true);
    expect(b.take(1000)).toBe(false);
    expect(b.take(5500)).toBe(false);
    expect(b.take(6000)).toBe(true);
  });

  it('refuses nonsense options', () => {
    expect(() => new TokenBucket({ perSecond: 0, burst: 1 })).toThrow(SecurityConfigError);
    expect(() => new KeyedRateLimit({ perSecond: 1, burst: 1, maxKeys: 0 })).toThrow(SecurityConfigError);
  });
});

describe('KeyedRateLimit', () => {
  it('gives each key its own bucket, bounded by the overall one, and counts refusals', () => {
    const r = new KeyedRateLimit({ perSecond: 1, burst: 2, overall: { perSecond: 1, burst: 3 } });
    expect(['a', 'a', 'a', 'b', 'b'].map((k) => r.take(k, 0))).toEqual([true, true, false, true, false]);
    expect(r.refused).toBe(2);
  });

  it('keeps at most maxKeys buckets (an evicted key starts full again)', () => {
    const r = new KeyedRateLimit({ perSecond: 1, burst: 1, maxKeys: 2 });
    expect(r.take('a', 0)).toBe(true);
    expect(r.take('a', 0)).toBe(false);
    r.take('b', 0);
    r.take('c', 0); // evicts a
    expect(r.take('a', 0)).toBe(true);
  });
});
