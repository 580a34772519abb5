/**
 * Ownership as the packet path sees it: which slot owns each unit and which units are held, derived from
 * the core's data-plane view, and what the packet path was last told. Pure: no I/O, no clock. The policy
 * (policy.ts) decides when a difference between the two is applied.
 */
import { UNIT_COUNT, type MemberId, type WorkUnit } from '@gwcluster/wire';
import type { DataPlaneView } from '@gwcluster/cluster-core';
import { LOCAL_SLOT, NO_SLOT } from './packet-path.js';

/** What the data plane is told after each core step: the core's own type (CoreView.dataPlaneView()). */
export type { DataPlaneView };

/**
 * Member -> slot number of the packet path. This member is LOCAL_SLOT; other members get 2, 3, ... in the
 * order they are first seen as an owner. A slot is never taken back nor given to another member.
 */
export class SlotTable {
  private readonly slots = new Map<MemberId, number>();

  constructor(self: MemberId) {
    this.slots.set(self, LOCAL_SLOT);
  }

  /** The member's slot; `added` is true when this call handed it out. */
  slotOf(member: MemberId): { readonly slot: number; readonly added: boolean } {
    const known = this.slots.get(member);
    if (known !== undefined) return { slot: known, added: false };
    const slot = this.slots.size + 1;
    this.slots.set(member, slot);
    return { slot, added: true };
  }
}

/**
 * The slot that should own `unit` per the view: LOCAL_SLOT when this member owns it, NO_SLOT when nobody
 * does (or the table still names this member, which no longer owns it), else the owner's slot.
 */
export function targetSlot(view: DataPlaneView, unit: WorkUnit, self: MemberId, slots: SlotTable, onNewSlot: (member: MemberId, slot: number) => void): number {
  if (view.owned.has(unit)) return LOCAL_SLOT;
  const owner = view.owners[unit] ?? null;
  if (owner === null || owner === self) return NO_SLOT;
  const { slot, added } = slots.slotOf(owner);
  if (added) onNewSlot(owner, slot);
  return slot;
}

/** Whether the unit's packets should be held: only the master holds (unassigned or unacknowledged units). */
export function targetHeld(view: DataPlaneView, unit: WorkUnit): boolean {
  return view.master && view.holding.has(unit);
}

/** What the packet path was last told, per unit. */
export class AppliedOwnership {
  readonly slot = new Uint16Array(UNIT_COUNT);
  readonly held = new Uint8Array(UNIT_COUNT);

  /** This member serves the unit (accepts its packets): its own units and those still draining. */
  serves(unit: WorkUnit): boolean {
    return this.slot[unit] === LOCAL_SLOT;
  }
}
