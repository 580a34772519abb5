/**
 * Which packets of a unit the kernel fast path decides, and which it hands up to the packet engine: a
 * pure rule over the same state the engine's Figure 9 verdict reads (owner slot, this member's slot and
 * role, holds), plus whether session tracking needs to see the unit's packets in user space.
 *
 * The kernel may decide only what the engine would decide the same way without side effects:
 *   - PASS: this member's unit, not held, and no session table tracks it (the engine would accept it);
 *   - PASS_TRACKED: this member's unit, not held, with a session table and the flow offload: the kernel
 *     passes the packets of the flows the engine offloaded (sessions it saw established) and hands up
 *     the rest (new and unknown flows, SYN/FIN/RST segments), which the table tracks as before;
 *   - DROP: a unit the engine would drop without looking further: another member's or nobody's unit at a
 *     non-master, and another member's unit at the master of methods 2 and 3 (the owner received the
 *     packet too);
 *   - REDIRECT: another member's unit at the master of method 1, when the kernel knows the owner's MAC
 *     and the forward interface (the engine's forwarding, done in the kernel);
 *   - TO_USER for the rest: held units (the engine keeps them and releases them in order), nobody's unit
 *     at the master (the engine holds the first packet and asks for an owner), and other members' units
 *     at the master of method 1 whose owner's MAC the kernel does not know (the engine forwards them).
 */
import { UnitAction } from '@gwcluster/native-addon';
import { NO_SLOT } from './packet-path.js';

export interface UnitActionInput {
  /** The unit's owner slot in the engine's table (NO_SLOT: nobody). */
  readonly owner: number;
  readonly localSlot: number;
  readonly master: boolean;
  /** Distribution method: 1 master-forward, 2 unicast-mac, 3 multicast-mac. */
  readonly method: 1 | 2 | 3;
  /** The master holds the unit's packets (PacketPath.hold until release). */
  readonly held: boolean;
  /**
   * Session tracking of this member's units: 'none' (no table, or a loose table without the flow offload:
   * a loose survivor picks sessions up mid-stream), 'offload' (a table, and the engine offloads
   * established flows to the kernel), 'user' (a strict table without the offload: every packet goes up).
   */
  readonly tracking: 'none' | 'offload' | 'user';
  /** The kernel can send the owner's frames itself (forward interface set, the owner slot's MAC known). */
  readonly ownerReachable: boolean;
}

export function kernelUnitAction(s: UnitActionInput): UnitAction {
  if (s.held) return UnitAction.TO_USER;
  if (s.owner !== NO_SLOT && s.owner === s.localSlot) {
    return s.tracking === 'offload' ? UnitAction.PASS_TRACKED : s.tracking === 'user' ? UnitAction.TO_USER : UnitAction.PASS;
  }
  if (!s.master) return UnitAction.DROP;
  if (s.owner === NO_SLOT) return UnitAction.TO_USER;
  if (s.method !== 1) return UnitAction.DROP;
  return s.ownerReachable ? UnitAction.REDIRECT : UnitAction.TO_USER;
}
