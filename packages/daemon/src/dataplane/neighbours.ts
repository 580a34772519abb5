/**
 * Neighbour (MAC) learning for the packet path's slots: the master forwards a unit's packets to its
 * owner's MAC, which comes from the kernel's neighbour table on the forward interface (the members talk
 * over the cluster interface, so the entry exists once they did). Looked up when a member gets a slot and
 * again on every refresh (a member replaced on the same address gets a new MAC).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { MemberId } from '@gwcluster/wire';
import { LOCAL_SLOT } from './packet-path.js';

const run = promisify(execFile);

/** The kernel's neighbour entry for an address (MAC), or null (none, FAILED, or `ip` failed). */
export async function neighbourMac(ip: string, dev: string): Promise<string | null> {
  let out: string;
  try {
    ({ stdout: out } = await run('ip', ['-j', 'neigh', 'show', ip, 'dev', dev], { timeout: 10_000 }));
  } catch {
    return null;
  }
  if (!out) return null;
  const parsed = JSON.parse(out) as { lladdr?: string; state?: string[] }[];
  return parsed.find((n) => n.lladdr && !(n.state ?? []).includes('FAILED'))?.lladdr ?? null;
}

export interface NeighbourTableOptions {
  /** The forward interface (where the neighbour entries are). */
  readonly device: string;
  /** Tells the packet path a slot's MAC; called only when it changed. */
  readonly setSlotMac: (slot: number, mac: string) => void;
  /** Default: neighbourMac (the kernel's table). */
  readonly lookup?: (ip: string, dev: string) => Promise<string | null>;
}

export class NeighbourTable {
  private readonly members = new Map<MemberId, number>();
  private readonly macs = new Map<number, string>();
  readonly counters = { macMisses: 0 };

  constructor(private readonly opts: NeighbourTableOptions) {}

  /** A member got a slot: remember it and learn its MAC (this member's own slot needs none). */
  add(member: MemberId, slot: number): void {
    this.members.set(member, slot);
    void this.learn(member, slot);
  }

  /** Looks every known member up again, one after the other. */
  async refresh(): Promise<void> {
    for (const [member, slot] of this.members) await this.learn(member, slot);
  }

  private async learn(member: MemberId, slot: number): Promise<void> {
    if (slot === LOCAL_SLOT) return;
    const mac = await (this.opts.lookup ?? neighbourMac)(member, this.opts.device);
    if (!mac) {
      this.counters.macMisses++;
      return;
    }
    if (this.macs.get(slot) !== mac) {
      this.macs.set(slot, mac);
      this.opts.setSlotMac(slot, mac);
    }
  }
}
