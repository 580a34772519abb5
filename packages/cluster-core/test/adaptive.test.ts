import { describe, expect, it } from 'vitest';
import { lostBetween, updateLoss, watchdogMs, watchdogPeriods } from '../src/adaptive.js';

describe('adaptive keepalive interval (digest section 1)', () => {
  it('counts the keepalives lost between two sequence numbers', () => {
    expect(lostBetween(10, 11)).toBe(0);
    expect(lostBetween(10, 14)).toBe(3);
    expect(lostBetween(10, 9)).toBe(0);
  });

  it('updates P with the 127/128 filter', () => {
    expect(updateLoss(0, 1)).toBeCloseTo(1 / 128, 12);
    expect(updateLoss(0.5, 0)).toBeCloseTo(0.5 * (127 / 128), 12);
    expect(updateLoss(0.25, 3)).toBeCloseTo(0.25 * (127 / 128) + 3 / 128, 12);
  });

  it('picks the smallest n >= 2 with n * P^n < 1/K, capped at 20', () => {
    const k = 3600;
    // Brute force over the definition for many P, independent of the implementation's loop.
    for (let i = 0; i <= 1000; i++) {
      const p = i / 1000;
      let expected = 20;
      for (let n = 2; n <= 20; n++) {
        if (n * p ** n < 1 / k) {
          expected = n;
          break;
        }
      }
      expect(watchdogPeriods(p, k, 20)).toBe(expected);
    }
    expect(watchdogPeriods(0, k, 20)).toBe(2);
    expect(watchdogPeriods(0.05, k, 20)).toBe(4); // 3 * 0.05^3 = 3.75e-4 > 2.78e-4; 4 * 0.05^4 = 2.5e-5
    expect(watchdogPeriods(0.2, k, 20)).toBe(7);
    expect(watchdogPeriods(0.99, k, 20)).toBe(20);
  });

  it('never goes below the floor minN (default 6 with K = 9000 and T = 40 ms)', () => {
    expect(watchdogPeriods(0, 9000, 20, 6)).toBe(6);
    expect(watchdogPeriods(0.05, 9000, 20, 6)).toBe(6); // the formula alone gives 4
    expect(watchdogPeriods(0.2, 9000, 20, 6)).toBe(7); // 6 * 0.2^6 = 3.8e-4 > 1.1e-4; 7 * 0.2^7 = 9.0e-5
    expect(watchdogMs(6, 40)).toBe(260);
  });

  it('declares death after n missed periods: (n + 0.5) * T', () => {
    expect(watchdogMs(2, 100)).toBe(250);
    expect(watchdogMs(20, 100)).toBe(2050);
  });
});
