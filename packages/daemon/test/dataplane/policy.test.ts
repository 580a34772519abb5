import { describe, expect, it } from 'vitest';
import { UNIT_COUNT, type MemberId, type WorkUnit } from '@gwcluster/wire';
import { DataPlanePolicy, dataPlanePolicyConfig, type DataPlaneEffect } from '../../src/dataplane/policy.js';
import type { DataPlaneView } from '../../src/dataplane/ownership.js';
import { LOCAL_SLOT, NO_SLOT } from '../../src/dataplane/packet-path.js';

const A = '192.0.2.11';
const B = '192.0.2.12';
const C = '192.0.2.13';

/**
 * A view where `owners` lists the units with an owner (all others unassigned). Members: `members`, by
 * default this member and the owners (every member gets a slot once it is a member).
 */
function view(self: MemberId, opts: { master?: boolean; owners?: Record<number, MemberId>; holding?: WorkUnit[]; members?: MemberId[] }): DataPlaneView {
  const owners: (MemberId | null)[] = new Array(UNIT_COUNT).fill(null);
  for (const [u, m] of Object.entries(opts.owners ?? {})) owners[Number(u)] = m;
  const owned = new Set<WorkUnit>();
  owners.forEach((m, u) => m === self && owned.add(u));
  const members = opts.members ?? [...new Set([self, ...Object.values(opts.owners ?? {})])];
  return { master: opts.master ?? false, owned, owners, holding: new Set(opts.holding ?? []), members };
}

/** Effects without the wake requests (checked separately). */
const engineCalls = (effects: DataPlaneEffect[]) => effects.filter((e) => e.type !== 'wake');
const wakes = (effects: DataPlaneEffect[]) => effects.filter((e) => e.type === 'wake').map((e) => (e as { at: number }).at);

describe('DataPlanePolicy', () => {
  it('applies a gained unit at once and gives other owners slots in the order first seen', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    const out = p.step({ type: 'view', now: 0, view: view(A, { owners: { 5: A, 7: C, 9: B } }) });
    expect(out).toEqual([
      { type: 'set-owner', unit: 5, slot: LOCAL_SLOT },
      { type: 'new-slot', member: C, slot: 2 },
      { type: 'set-owner', unit: 7, slot: 2 },
      { type: 'new-slot', member: B, slot: 3 },
      { type: 'set-owner', unit: 9, slot: 3 },
    ]);
    expect(p.applied.serves(5)).toBe(true);
    expect(p.step({ type: 'view', now: 1, view: view(A, { owners: { 5: A, 7: C, 9: B } }) })).toEqual([]);
  });

  it('gives a member its slot once it is a member, before it owns a unit (first-packet assignment forwards at once)', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, true));
    const out = p.step({ type: 'view', now: 0, view: view(A, { master: true, owners: { 5: A }, members: [A, B, C] }) });
    expect(engineCalls(out).filter((e) => e.type === 'new-slot')).toEqual([
      { type: 'new-slot', member: B, slot: 2 },
      { type: 'new-slot', member: C, slot: 3 },
    ]);
    // C's first unit uses the slot it already has: no new slot, just the owner.
    const next = p.step({ type: 'view', now: 1, view: view(A, { master: true, owners: { 5: A, 9: C }, members: [A, B, C] }) });
    expect(engineCalls(next)).toEqual([{ type: 'set-owner', unit: 9, slot: 3 }]);
  });

  it('keeps serving a unit it lost for the 50 ms drain, then hands it to the new owner', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    p.step({ type: 'view', now: 0, view: view(A, { owners: { 5: A } }) });
    const lost = p.step({ type: 'view', now: 100, view: view(A, { owners: { 5: B } }) });
    expect(engineCalls(lost)).toEqual([{ type: 'new-slot', member: B, slot: 2 }]);
    expect(wakes(lost)).toEqual([150]);
    expect(p.applied.serves(5)).toBe(true);
    // Views and ticks before the deadline change nothing.
    expect(p.step({ type: 'view', now: 120, view: view(A, { owners: { 5: B } }) })).toEqual([]);
    expect(p.step({ type: 'tick', now: 149 })).toEqual([{ type: 'wake', at: 150 }]);
    expect(p.step({ type: 'tick', now: 150 })).toEqual([{ type: 'set-owner', unit: 5, slot: 2 }]);
    expect(p.applied.serves(5)).toBe(false);
    expect(p.step({ type: 'tick', now: 300 })).toEqual([]);
  });

  it('drains to the owner of the moment the drain ends (the unit may change hands meanwhile)', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    p.step({ type: 'view', now: 0, view: view(A, { owners: { 5: A } }) });
    p.step({ type: 'view', now: 10, view: view(A, { owners: { 5: B } }) });
    p.step({ type: 'view', now: 30, view: view(A, { owners: {} }) });
    expect(p.step({ type: 'tick', now: 60 })).toEqual([{ type: 'set-owner', unit: 5, slot: NO_SLOT }]);
  });

  it('keeps a unit that comes back while draining, without touching the packet path', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    p.step({ type: 'view', now: 0, view: view(A, { owners: { 5: A } }) });
    p.step({ type: 'view', now: 10, view: view(A, { owners: { 5: B } }) });
    expect(p.step({ type: 'view', now: 20, view: view(A, { owners: { 5: A } }) })).toEqual([]);
    expect(p.step({ type: 'tick', now: 60 })).toEqual([]);
    expect(p.applied.serves(5)).toBe(true);
  });

  it('moves a unit off the master at once (the master holds, it does not drain)', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    expect(p.step({ type: 'view', now: 0, view: view(A, { master: true, owners: { 5: A } }) })).toEqual([
      { type: 'set-role', master: true },
      { type: 'set-owner', unit: 5, slot: LOCAL_SLOT },
    ]);
    expect(p.step({ type: 'view', now: 10, view: view(A, { master: true, owners: { 5: B }, holding: [5] }) })).toEqual([
      { type: 'new-slot', member: B, slot: 2 },
      { type: 'set-owner', unit: 5, slot: 2 },
      { type: 'hold', unit: 5 },
    ]);
  });

  it('master: holds units until acknowledged, then releases them after every owner change, in unit order', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    const first = p.step({ type: 'view', now: 0, view: view(A, { master: true, holding: [9, 3, 4] }) });
    expect(first).toEqual([{ type: 'set-role', master: true }, { type: 'hold', unit: 3 }, { type: 'hold', unit: 4 }, { type: 'hold', unit: 9 }]);
    // Assigned, not yet acknowledged: still held.
    const assigned = p.step({ type: 'view', now: 10, view: view(A, { master: true, owners: { 3: B, 4: A, 9: C }, holding: [3, 4, 9] }) });
    expect(assigned).toEqual([
      { type: 'new-slot', member: B, slot: 2 },
      { type: 'set-owner', unit: 3, slot: 2 },
      { type: 'set-owner', unit: 4, slot: LOCAL_SLOT },
      { type: 'new-slot', member: C, slot: 3 },
      { type: 'set-owner', unit: 9, slot: 3 },
    ]);
    // WORK ACK of 9 and 3 (not 4).
    expect(p.step({ type: 'view', now: 20, view: view(A, { master: true, owners: { 3: B, 4: A, 9: C }, holding: [4] }) })).toEqual([
      { type: 'release', unit: 3 },
      { type: 'release', unit: 9 },
    ]);
    expect(p.counters).toMatchObject({ holds: 3, releases: 2 });
  });

  it('master: a unit acknowledged and moved in one view is set before any release', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    p.step({ type: 'view', now: 0, view: view(A, { master: true, holding: [1, 2] }) });
    expect(p.step({ type: 'view', now: 5, view: view(A, { master: true, owners: { 1: B, 2: A } }) })).toEqual([
      { type: 'new-slot', member: B, slot: 2 },
      { type: 'set-owner', unit: 1, slot: 2 },
      { type: 'set-owner', unit: 2, slot: LOCAL_SLOT },
      { type: 'release', unit: 1 },
      { type: 'release', unit: 2 },
    ]);
  });

  it('master: a unit no longer held but without an owner is not released (its packets stay held)', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    p.step({ type: 'view', now: 0, view: view(A, { master: true, holding: [1] }) });
    expect(p.step({ type: 'view', now: 5, view: view(A, { master: false }) })).toEqual([{ type: 'set-role', master: false }]);
  });

  it('hands sessions over after the drain ended and answers the core when they are acknowledged', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, true));
    p.step({ type: 'view', now: 0, view: view(A, { owners: { 5: A, 6: A } }) });
    // WORK DE-ASSIGN: the core emits the hand-over, then the view without the units.
    expect(p.step({ type: 'handover', now: 1000, requestId: 7, units: [5, 6], to: B })).toEqual([{ type: 'wake', at: 1060 }]);
    expect(wakes(p.step({ type: 'view', now: 1000, view: view(A, { owners: { 5: B, 6: B } }) }))).toEqual([1050]);
    expect(p.step({ type: 'tick', now: 1050 })).toEqual([
      { type: 'set-owner', unit: 5, slot: 2 },
      { type: 'set-owner', unit: 6, slot: 2 },
      { type: 'wake', at: 1060 },
    ]);
    expect(p.step({ type: 'tick', now: 1060 })).toEqual([{ type: 'hand-over-sessions', requestId: 7, units: [5, 6], to: B }]);
    expect(p.step({ type: 'sessions-handed-over', now: 1200, requestId: 7, complete: false })).toEqual([{ type: 'handover-done', requestId: 7, complete: false }]);
  });

  it('without session tracking a hand-over is done at once', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, false));
    expect(p.step({ type: 'handover', now: 0, requestId: 3, units: [1], to: B })).toEqual([{ type: 'handover-done', requestId: 3, complete: true }]);
  });

  it('starts hand-overs in the order asked, each when due', () => {
    const p = new DataPlanePolicy(dataPlanePolicyConfig(A, true));
    p.step({ type: 'handover', now: 0, requestId: 1, units: [1], to: B });
    expect(p.step({ type: 'handover', now: 30, requestId: 2, units: [2], to: C })).toEqual([]);
    expect(p.step({ type: 'tick', now: 60 })).toEqual([{ type: 'hand-over-sessions', requestId: 1, units: [1], to: B }, { type: 'wake', at: 90 }]);
    expect(p.step({ type: 'tick', now: 200 })).toEqual([{ type: 'hand-over-sessions', requestId: 2, units: [2], to: C }]);
  });
});
