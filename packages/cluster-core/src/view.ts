/**
 * What outside code may read of a member: the status view (for operators, metrics and tests) and the
 * data-plane view (what the packet path must serve and hold after each step). Both are computed from the
 * core's private state on request; nothing here can change it.
 */
import { UNIT_COUNT, type MemberId, type WorkUnit } from '@gwcluster/wire';
import type { CoreConfig } from './config.js';
import type { Role } from './events.js';
import type { MemberCore } from './roles/shared.js';

export interface MemberView {
  readonly id: MemberId;
  readonly role: 'master' | 'member';
  readonly loss: number;
  readonly watchdogPeriods: number;
  readonly load: number;
  readonly lastHeardMsAgo: number | null;
  readonly units: number;
  readonly draining: boolean;
  /** The software release it announced; absent when it did not (a member that predates the field). */
  readonly version?: string;
}

export interface ClusterStatus {
  readonly self: MemberId;
  readonly role: Role;
  readonly master: MemberId | null;
  readonly epoch: number;
  readonly configVersion: number;
  readonly keepalivePeriodMs: number;
  readonly members: readonly MemberView[];
  /** owners[unit], as this member knows it (the master's own table, or the last MASTER KEEPALIVE's). */
  readonly owners: readonly (MemberId | null)[];
  readonly tableVersion: number;
  readonly ownedUnits: readonly WorkUnit[];
  /** Units with an assign or de-assign in flight (master only). */
  readonly movingUnits: number;
  readonly counters: Readonly<Record<string, number>>;
  /** The address pool and takeovers as known here, and what this member answers for. */
  readonly addresses: AddressesView;
}

export interface AddressesView {
  /** Each pool address and its owner (null: not placed yet), in the configuration's order. */
  readonly pool: readonly { readonly address: string; readonly owner: MemberId | null }[];
  /** Dead members' own addresses and who answers for each. */
  readonly takeovers: readonly { readonly member: MemberId; readonly holder: MemberId }[];
  /** The addresses this member answers for besides its own. */
  readonly held: readonly string[];
}

/** What the data plane needs after each step. */
export interface DataPlaneView {
  readonly master: boolean;
  /** This member's units. */
  readonly owned: ReadonlySet<WorkUnit>;
  /** owners[unit] as known here. */
  readonly owners: readonly (MemberId | null)[];
  /** Master: units whose packets must be held (Figure 9); empty on other members. */
  readonly holding: ReadonlySet<WorkUnit>;
  /** The members as known here (this one included); empty while not in a cluster. */
  readonly members: readonly MemberId[];
}

/**
 * The read-only face of a ClusterMember. Values are current as of the last step(); objects returned
 * are snapshots or read-only views, and the caller must not cast them to mutate.
 */
export interface CoreView {
  readonly self: MemberId;
  readonly role: Role;
  /** The configuration in force (timings replaced by a propagated configuration included). */
  readonly config: CoreConfig;
  /** The cluster configuration version this member runs now. */
  readonly configVersion: number;
  /** The master as known here: this member when master, its master when member, else null. */
  readonly master: MemberId | null;
  /** Epoch of the current term as known here (the highest seen while out of a cluster). */
  readonly epoch: number;
  /** Units this member serves. */
  readonly owned: ReadonlySet<WorkUnit>;
  /** Members only: this member's estimate P of the master's lost keepalives, 0..1; null in any other role. */
  readonly masterLoss: number | null;
  /** This member holds every other member's session state (always true without state sync). */
  readonly syncReady: boolean;
  /** Protocol counters (`rx.<type>`, `tx.<type>`, `watchdog.*`, `shutdown`, ...), a snapshot. */
  readonly counters: Readonly<Record<string, number>>;
  /** The status as of `now` (ms, the driver's monotonic clock). */
  status(now: number): ClusterStatus;
  /**
   * The data plane's view: this member's units, the table as known here, and (master) the units whose
   * packets must be held: unassigned, or being assigned and not yet acknowledged (Figure 9). With
   * `holdHandover` (method 1, where every packet passes the master) a unit is also held while its current
   * owner hands it over, so nothing reaches the old owner after it let go.
   */
  dataPlaneView(holdHandover?: boolean): DataPlaneView;
}

export function dataPlaneView(c: MemberCore, holdHandover: boolean): DataPlaneView {
  const s = c.role;
  if (s.kind !== 'master') {
    return { master: false, owned: c.owned, owners: c.table.owners, holding: new Set(), members: s.kind === 'member' ? c.table.members.map((e) => e.member) : [] };
  }
  const holding = new Set<WorkUnit>();
  for (let u = 0; u < UNIT_COUNT; u++) if (s.owners[u] === null) holding.add(u);
  for (const p of s.pending.values()) {
    // The master's own hand-over is held in every method: nobody serves those units meanwhile.
    if (p.kind === 'assign' || holdHandover || p.member === c.self) for (const u of p.units) holding.add(u);
  }
  return { master: true, owned: c.owned, owners: s.owners, holding, members: [...s.members.keys()] };
}

export function statusView(c: MemberCore, now: number): ClusterStatus {
  const s = c.role.kind === 'master' ? c.role : null;
  const mem = c.role.kind === 'member' ? c.role : null;
  let members: MemberView[];
  let owners: readonly (MemberId | null)[];
  if (s) {
    owners = s.owners;
    const counts = new Map<MemberId, number>();
    for (const o of s.owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
    members = [...s.members.values()].map((r) => ({
      id: r.id,
      role: r.id === c.self ? 'master' : 'member',
      loss: r.loss,
      watchdogPeriods: r.watchdogPeriods,
      load: r.id === c.self ? Math.max(c.load, counts.get(r.id) ?? 0) : Math.max(r.load, counts.get(r.id) ?? 0),
      lastHeardMsAgo: r.id === c.self ? 0 : now - r.lastHeardAt,
      units: counts.get(r.id) ?? 0,
      draining: r.draining,
      ...(r.softwareVersion !== undefined ? { version: r.softwareVersion } : {}),
    }));
  } else {
    owners = c.table.owners;
    const counts = new Map<MemberId, number>();
    for (const o of owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
    const master = mem?.master ?? null;
    // The master's figures, aged by the time since its keepalive; for the master itself, our own watch.
    const age = now - c.table.at;
    members = c.table.members.map((e) => ({
      id: e.member,
      role: e.member === master ? 'master' : 'member',
      loss: e.loss,
      watchdogPeriods: e.watchdogPeriods,
      load: e.load,
      lastHeardMsAgo: e.member === master && mem ? now - mem.lastMasterHeardAt : mem ? (e.lastHeardMsAgo ?? 0) + age : null,
      units: counts.get(e.member) ?? 0,
      draining: e.draining ?? false,
      ...(e.softwareVersion !== undefined ? { version: e.softwareVersion } : {}),
    }));
  }
  return {
    self: c.self,
    role: c.role.kind,
    master: c.knownMaster(),
    epoch: c.knownEpoch(),
    configVersion: c.configVersion,
    keepalivePeriodMs: mem?.periodMs ?? c.config.keepalivePeriodMs,
    members,
    owners: [...owners],
    tableVersion: s?.tableVersion ?? c.table.version,
    ownedUnits: c.ownedList(),
    movingUnits: s?.moving.size ?? 0,
    counters: { ...c.counters },
    addresses: addressesView(c),
  };
}

function addressesView(c: MemberCore): AddressesView {
  const s = c.role.kind === 'master' ? c.role : null;
  const owners = s ? s.pool.owners : (c.table.poolOwners ?? []);
  const takeovers = s ? [...s.takeovers].map(([member, holder]) => ({ member, holder })) : (c.table.takeovers ?? []);
  return {
    pool: c.config.addressPool.map((p, i) => ({ address: p.address, owner: owners.length === c.config.addressPool.length ? (owners[i] ?? null) : null })),
    takeovers: takeovers.map((t) => ({ member: t.member, holder: t.holder })),
    held: [...c.held.keys()].sort(),
  };
}
