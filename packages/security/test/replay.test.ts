import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../src/index.js';

function accept(w: ReplayWindow, incarnation: number, seq: number): boolean {
  const v = w.check(incarnation, seq);
  if (v.ok) w.commit(incarnation, seq);
  return v.ok;
}

describe('ReplayWindow (RFC 4303 3.4.3)', () => {
  it('accepts increasing seqs and rejects duplicates', () => {
    const w = new ReplayWindow(64);
    expect([1, 2, 3].map((s) => accept(w, 1, s))).toEqual([true, true, true]);
    expect(accept(w, 1, 2)).toBe(false);
    expect(w.check(1, 3)).toEqual({ ok: false, reason: 'seq 3 of incarnation 1 was already received' });
  });

  it('accepts reordering inside the window exactly once, and nothing at or below highest - size', () => {
    const w = new ReplayWindow(8);
    expect(accept(w, 1, 20)).toBe(true);
    expect(accept(w, 1, 12)).toBe(false); // 20 - 8
    expect(w.check(1, 12).ok).toBe(false);
    expect((w.check(1, 12) as { reason: string }).reason).toContain('older than the 8-message window');
    for (const s of [13, 19, 15, 14, 16, 18, 17]) expect(accept(w, 1, s)).toBe(true);
    for (const s of [13, 14, 15, 16, 17, 18, 19, 20]) expect(accept(w, 1, s)).toBe(false);
  });

  it('forgets marks of seqs that slid out, so slot reuse does not reject new seqs', () => {
    const w = new ReplayWindow(4);
    expect(accept(w, 1, 1)).toBe(true);
    expect(accept(w, 1, 2)).toBe(true);
    // Jump by less than the window: slots of 3 and 4 must be clear (they held nothing), 5 reuses 1's slot.
    expect(accept(w, 1, 5)).toBe(true);
    expect(accept(w, 1, 3)).toBe(true);
    expect(accept(w, 1, 4)).toBe(true);
    expect(accept(w, 1, 2)).toBe(false); // 5 - 4 = 1 < 2 <= 5, already seen
    // Jump by more than the window clears everything.
    expect(accept(w, 1, 100)).toBe(true);
    expect(accept(w, 1, 97)).toBe(true);
    expect(accept(w, 1, 96)).toBe(false);
  });

  it('rejects older incarnations and resets on a newer one', () => {
    const w = new ReplayWindow(64);
    expect(accept(w, 5, 100)).toBe(true);
    expect(accept(w, 4, 101)).toBe(false);
    expect((w.check(4, 101) as { reason: string }).reason).toContain('incarnation 4 is older than 5');
    expect(accept(w, 6, 1)).toBe(true);
    expect(w.newestIncarnation).toBe(6);
    expect(w.highestSeq).toBe(1);
    expect(accept(w, 5, 200)).toBe(false);
  });

  it('never accepts seq 0', () => {
    const w = new ReplayWindow(64);
    expect(w.check(1, 0).ok).toBe(false);
  });

  it('check() alone changes nothing', () => {
    const w = new ReplayWindow(64);
    expect(w.check(1, 1).ok).toBe(true);
    expect(w.check(1, 1).ok).toBe(true);
    expect(w.highestSeq).toBe(0);
  });
});
