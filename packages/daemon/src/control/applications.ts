/**
 * Applications running on the cluster (IPsec, L2TP, ...) take part in membership: the master asks each
 * one to approve a joiner (Figure 8F) and every member tells each one who joined and left (Figure 8G).
 */
import type { MemberId } from '@gwcluster/wire';
import type { ApplicationConfig } from '../config/config.js';

export type JoinVerdict = { readonly accept: true } | { readonly accept: false; readonly reason: string };

export interface ClusterApplication {
  readonly name: string;
  /**
   * Called on the master for each joiner, one call per joiner at a time. May be async; must settle within
   * the cluster's application timeout (3 s), else the joiner is refused. A throw counts as a refusal.
   */
  approveJoin?(joiner: MemberId): JoinVerdict | Promise<JoinVerdict>;
  /** Called on every member, in order, after each membership change. Must not block. */
  membersChanged?(change: { readonly joined: readonly MemberId[]; readonly left: readonly MemberId[] }): void;
}

/** A test application: refuses the listed members with a fixed reason; remembers what it was told. */
export class DenyListApplication implements ClusterApplication {
  readonly name = 'deny-list';
  readonly seen: { joined: readonly MemberId[]; left: readonly MemberId[] }[] = [];
  constructor(
    private readonly deny: ReadonlySet<MemberId>,
    private readonly reason: string,
  ) {}

  approveJoin(joiner: MemberId): JoinVerdict {
    return this.deny.has(joiner) ? { accept: false, reason: `${this.name}: ${this.reason}` } : { accept: true };
  }

  membersChanged(change: { joined: readonly MemberId[]; left: readonly MemberId[] }): void {
    this.seen.push(change);
  }
}

export function applicationsFromConfig(configs: readonly ApplicationConfig[]): ClusterApplication[] {
  return configs.map((c) => {
    switch (c.name) {
      case 'deny-list':
        return new DenyListApplication(new Set(c.deny ?? []), c.reason ?? 'member is on the deny list');
    }
  });
}

/** Asks every application in turn; the first refusal wins. */
export async function approveJoin(apps: readonly ClusterApplication[], joiner: MemberId): Promise<JoinVerdict> {
  for (const app of apps) {
    if (!app.approveJoin) continue;
    try {
      const v = await app.approveJoin(joiner);
      if (!v.accept) return v;
    } catch (e) {
      return { accept: false, reason: `${app.name} failed while approving: ${(e as Error).message}` };
    }
  }
  return { accept: true };
}
