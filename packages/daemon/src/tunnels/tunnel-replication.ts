// Tunnel state replication and takeover (docs/tunnels.md, "Replication and takeover"). Every member holds
// every tunnel: the owner (the member owning the unit of the peer's outer packets) writes the tunnel's
// record (tunnel-record.ts) and the others install it as a replica. When the unit moves, the new owner
// carries the tunnel on from the replica without a new handshake; the inside's packets for the peer reach
// the owner through the forward socket (the inside-to-owner path).
//
// The nonce argument (send side): a keypair's owner never sends a counter at or beyond its *limit*, and
// the limit is the smallest reservation that every other current member acknowledged holding (a record's
// reservation R says "no counter >= R was used"). A member that takes a keypair over starts sending at
// the reservation of the latest record it holds, so at or beyond anything the previous owner can have
// sent; until the other members acknowledge its own first reservation (R + lease) it sends nothing, so a
// third member that still holds an older record never starts below a counter it used. A keypair created
// here by a handshake is known to nobody else until its first record, whose reservation is the lease:
// it may send below the lease at once. The owner renews the reservation (counter + lease) when half of
// it is used, so sending never waits for an acknowledgement while replication keeps up.
//
// The receive side: a replica refuses every counter below the replicated "receive next", so a replay of
// anything the previous owner accepted up to its last record is refused; what it accepted after its last
// record (at most one tick, 100 ms, plus the replication delay) is not known to the new owner (the
// residual, docs/tunnels.md).
//
// No clock, timer or socket here: time comes in as arguments; the endpoint and the cluster are narrow
// interfaces, so the unit tests drive it with fakes.
import type { LocalRecord } from '@gwcluster/state-sync';
import type { MemberId, SessionRecord } from '@gwcluster/wire';
import type { Endpoint, PeerReplica, TunnelEvent } from './tunnel-core.js';
import type { KeypairExtras } from './wireguard-endpoint.js';
import { decodeTunnelRecord, encodeTunnelRecord, tunnelKeyPeer, tunnelRecordKey } from './tunnel-record.js';

/** A tunnel handed over is not taken back for this long while the table still names this member, ms. */
export const HANDOVER_HOLD_MS = 5000;

/** A new owner's first version is this far above the highest it holds. */
export const VERSION_STEP = 65536;

/** Counters reserved ahead of use by one record. */
export const DEFAULT_LEASE = 1n << 20n;

/** The endpoint as the replication drives it (WireGuardEndpoint). */
export interface ReplicatedEndpoint {
  readonly peerKeys: readonly Uint8Array[];
  exportPeer(peer: number): PeerReplica | null;
  isOwned(peer: number): boolean;
  step(event: TunnelEvent): void;
  /** Stores the extras; reinstalls the peer's keypairs in the data path when `install`. */
  setExtras(peer: number, updates: ReadonlyMap<number, KeypairExtras>, install: boolean): void;
  setForward(peer: number, to: Endpoint | null): void;
}

/** The cluster as the replication sees it. */
export interface TunnelCluster {
  readonly self: MemberId;
  /** The current members (this one included). */
  members(): readonly MemberId[];
  /** The owner of the unit of a peer's outer packets from `endpoint` (null: unassigned or unknown). */
  ownerOf(endpoint: Endpoint): MemberId | null;
  /** The unit of a peer's outer packets from `endpoint`. */
  unitOf(endpoint: Endpoint): number | null;
}

export interface TunnelReplicationOptions {
  /** false: only the endpoint is replicated (no keys): a takeover costs the peer a new handshake. */
  readonly replicateKeys: boolean;
  /** The port of every member's forward socket. */
  readonly forwardPort: number;
  readonly lease?: bigint;
  /** Wall clock for the core's replica times. */
  readonly wallMs: () => number;
  /** Takeovers and hand-overs, for the log. Must not throw. */
  readonly onEvent?: (what: 'takeover' | 'disown', peer: number, detail: Record<string, unknown>) => void;
}

interface Issued {
  readonly version: number;
  readonly res: ReadonlyMap<number, bigint>;
}

interface TunnelState {
  readonly key: Uint8Array;
  /** The latest version written here or installed. */
  version: number;
  /** The latest record installed from another member (the takeover starts from it). */
  held?: PeerReplica;
  /** Owner: per our index, the latest reservation, the floor, the limit given to the data path. */
  readonly res: Map<number, bigint>;
  readonly floor: Map<number, bigint>;
  readonly limit: Map<number, bigint>;
  issued: Issued[];
  readonly acked: Map<MemberId, number>;
  last?: LocalRecord;
  lastContent: string;
  forward: MemberId | null | undefined;
  /** Handed over (planned move) at this time: not taken back while the table still names this member. */
  handedOverAt?: number;
}

export class TunnelReplication {
  readonly counters = { recordsWritten: 0, recordsInstalled: 0, recordsStale: 0, recordsMalformed: 0, concurrentWrites: 0, takeovers: 0, handedOver: 0, leaseRenewals: 0 };
  private readonly states: TunnelState[];
  private readonly byKey = new Map<string, number>();
  private out: LocalRecord[] = [];
  private readonly lease: bigint;

  constructor(private readonly ep: ReplicatedEndpoint, private readonly cluster: TunnelCluster, private readonly opts: TunnelReplicationOptions) {
    this.lease = opts.lease ?? DEFAULT_LEASE;
    this.states = ep.peerKeys.map((pk, i) => {
      const key = tunnelRecordKey(pk);
      this.byKey.set(Buffer.from(key).toString('hex'), i);
      return { key, version: 0, res: new Map(), floor: new Map(), limit: new Map(), issued: [], acked: new Map(), lastContent: '', forward: undefined };
    });
  }

  /** Records written since the last call (for the replicator; each wants its acknowledgement reported). */
  collect(): LocalRecord[] {
    const r = this.out;
    this.out = [];
    return r;
  }

  /** The latest records of the tunnels this member owns whose unit is in `units` (a joiner's snapshot). */
  recordsOf(units: ReadonlySet<number>): LocalRecord[] {
    const out: LocalRecord[] = [];
    this.states.forEach((s, peer) => {
      if (!this.ep.isOwned(peer) || !s.last) return;
      const e = this.ep.exportPeer(peer)?.endpoint;
      const u = e ? this.cluster.unitOf(e) : null;
      if (u !== null && units.has(u)) out.push(s.last);
    });
    return out;
  }

  /**
   * A planned move of `units`: this member stops sending on their tunnels at once (before the new owner
   * can be assigned) and gives their latest records to the hand-over.
   */
  handoverRecordsOf(units: ReadonlySet<number>, now = 0): LocalRecord[] {
    const out = this.recordsOf(units);
    this.states.forEach((s, peer) => {
      if (!this.ep.isOwned(peer) || !s.last || !out.includes(s.last)) return;
      this.disown(peer, s);
      s.handedOverAt = now;
      this.counters.handedOver++;
    });
    return out;
  }

  /** Records from another member (tunnel records only: see isTunnelRecord). */
  install(records: readonly SessionRecord[]): void {
    for (const r of records) {
      const peer = this.byKey.get(Buffer.from(r.key).toString('hex'));
      if (peer === undefined) continue; // a peer this member's configuration does not have
      const s = this.states[peer]!;
      if (r.version <= s.version) { this.counters.recordsStale++; continue; }
      const rep = decodeTunnelRecord(r.state);
      if (!rep) { this.counters.recordsMalformed++; continue; }
      s.version = r.version;
      if (this.ep.isOwned(peer)) {
        this.concurrentWrite(peer, s, rep);
        continue;
      }
      s.held = rep;
      this.counters.recordsInstalled++;
      // The extras go in before the keypairs: a replica never sends (limit 0), and its counters and window
      // are seeded from the record the moment it is installed.
      const extras = new Map<number, KeypairExtras>();
      for (const k of rep.keypairs) extras.set(k.localIndex, { sendLimit: 0n, seedSendCounter: k.sendReserved, seedReceiveNext: k.receiveNext });
      this.ep.setExtras(peer, extras, false);
      this.ep.step({ kind: 'replica', peer, state: rep, wallMs: this.opts.wallMs() });
    }
  }

  /**
   * Another member wrote a tunnel this member owns (two members served its unit for a moment, as a master
   * change can leave them): the peer's window may have moved past our counters, so ours jump to the other
   * writer's reservations and windows, and nothing is sent beyond them until the others hold our next
   * record (written at once, above its version).
   */
  private concurrentWrite(peer: number, s: TunnelState, rep: PeerReplica): void {
    this.counters.concurrentWrites++;
    const extras = new Map<number, KeypairExtras>();
    for (const k of rep.keypairs) {
      const floor = s.floor.get(k.localIndex);
      if (floor === undefined) continue; // a keypair this member does not hold as owner
      const r = k.sendReserved > floor ? k.sendReserved : floor;
      s.floor.set(k.localIndex, r);
      const res = s.res.get(k.localIndex) ?? r;
      s.res.set(k.localIndex, res > r + this.lease ? res : r + this.lease);
      s.limit.set(k.localIndex, r);
      extras.set(k.localIndex, { sendLimit: r, seedSendCounter: r, seedReceiveNext: k.receiveNext });
    }
    s.acked.clear();
    s.issued = [];
    this.ep.setExtras(peer, extras, true);
    this.writeIfChanged(peer, s, true);
  }

  /** `from` acknowledged `version` of a tunnel record. */
  acked(from: MemberId, key: Uint8Array, version: number): void {
    const peer = this.byKey.get(Buffer.from(key).toString('hex'));
    if (peer === undefined) return;
    const s = this.states[peer]!;
    if ((s.acked.get(from) ?? 0) < version) s.acked.set(from, version);
    if (this.ep.isOwned(peer)) this.updateLimits(peer, s);
  }

  /** Every tick of the endpoint (after its timers, `now` monotonic ms): ownership, forwarding, reservations, records. */
  tick(now = 0): void {
    this.states.forEach((s, peer) => {
      const exp = this.ep.exportPeer(peer);
      const endpoint = exp?.endpoint;
      let owner = endpoint ? this.cluster.ownerOf(endpoint) : null;
      let owned = this.ep.isOwned(peer);
      // After a hand-over the table names this member until the master reassigns the unit: not taken
      // back meanwhile (unless the move did not happen within HANDOVER_HOLD_MS), and nothing forwarded.
      if (s.handedOverAt !== undefined) {
        if (owner !== this.cluster.self) s.handedOverAt = undefined;
        else if (now - s.handedOverAt < HANDOVER_HOLD_MS) owner = null;
        else s.handedOverAt = undefined;
      }
      if (owner === this.cluster.self && !owned) {
        this.takeover(peer, s);
        owned = true;
      } else if (owned && owner !== null && owner !== this.cluster.self) {
        this.disown(peer, s);
        owned = false;
      }
      const forward = owned ? null : owner;
      if (forward !== s.forward) {
        s.forward = forward;
        this.ep.setForward(peer, forward ? { address: forward, port: this.opts.forwardPort } : null);
      }
      if (owned) this.writeIfChanged(peer, s);
    });
  }

  private takeover(peer: number, s: TunnelState): void {
    this.counters.takeovers++;
    s.res.clear(); s.floor.clear(); s.limit.clear(); s.issued = []; s.acked.clear();
    const extras = new Map<number, KeypairExtras>();
    for (const k of s.held?.keypairs ?? []) {
      // Start at the reservation of the latest record held; send nothing until the others hold ours.
      s.floor.set(k.localIndex, k.sendReserved);
      s.res.set(k.localIndex, k.sendReserved + this.lease);
      s.limit.set(k.localIndex, k.sendReserved);
      extras.set(k.localIndex, { sendLimit: k.sendReserved, seedSendCounter: k.sendReserved, seedReceiveNext: k.receiveNext });
    }
    this.ep.setExtras(peer, extras, true);
    this.ep.step({ kind: 'ownership', peer, owned: true });
    // Above any version the previous owner can still have in flight to a third member, so that member
    // installs our record rather than keep a later one of the previous owner's (the nonce argument, 3).
    s.version += VERSION_STEP;
    this.writeIfChanged(peer, s, true);
    this.opts.onEvent?.('takeover', peer, { keypairs: s.held?.keypairs.length ?? 0, from: Object.fromEntries([...s.floor].map(([k, v]) => [k, v.toString()])), version: s.version });
  }

  private disown(peer: number, s: TunnelState): void {
    this.opts.onEvent?.('disown', peer, { version: s.version });
    this.ep.step({ kind: 'ownership', peer, owned: false });
    const stop = new Map<number, KeypairExtras>();
    for (const idx of s.res.keys()) stop.set(idx, { sendLimit: 0n });
    for (const k of this.ep.exportPeer(peer)?.keypairs ?? []) stop.set(k.localIndex, { sendLimit: 0n });
    this.ep.setExtras(peer, stop, true);
    s.res.clear(); s.floor.clear(); s.limit.clear(); s.issued = []; s.acked.clear();
    // Our own last record is what we hold: a later takeover here starts from it (or from a newer one installed).
    if (s.last) s.held = decodeTunnelRecord(s.last.state) ?? s.held;
  }

  private writeIfChanged(peer: number, s: TunnelState, force = false): void {
    const exp = this.ep.exportPeer(peer);
    if (!exp) return;
    const live = new Set(exp.keypairs.map((k) => k.localIndex));
    for (const m of [s.res, s.floor, s.limit]) for (const idx of [...m.keys()]) if (!live.has(idx)) m.delete(idx);
    for (const k of exp.keypairs) {
      let r = s.res.get(k.localIndex);
      if (r === undefined) {
        // A keypair made here by a handshake: nobody else holds it; its first reservation is the lease
        // (the endpoint's default limit for new keypairs).
        s.floor.set(k.localIndex, this.lease);
        s.res.set(k.localIndex, this.lease);
        s.limit.set(k.localIndex, this.lease);
        r = this.lease;
      }
      if (k.sendReserved + this.lease / 2n > r) {
        s.res.set(k.localIndex, k.sendReserved + this.lease);
        this.counters.leaseRenewals++;
      }
    }
    const rep: PeerReplica = {
      ...exp,
      keypairs: this.opts.replicateKeys ? exp.keypairs.map((k) => ({ ...k, sendReserved: s.res.get(k.localIndex)! })) : [],
    };
    const state = encodeTunnelRecord(rep);
    // Written when anything but the handshake time's rounding changed.
    const content = Buffer.from(state.subarray(0, 24)).toString('hex') + Buffer.from(state.subarray(32)).toString('hex');
    if (!force && content === s.lastContent) { this.updateLimits(peer, s); return; }
    s.lastContent = content;
    s.version++;
    const rec: LocalRecord = { key: s.key, version: s.version, state, removed: false, ackWanted: true };
    s.last = rec;
    s.issued.push({ version: s.version, res: new Map(s.res) });
    this.out.push(rec);
    this.counters.recordsWritten++;
    this.updateLimits(peer, s);
  }

  /** limit = max(floor, the smallest reservation every other current member acknowledged). */
  private updateLimits(peer: number, s: TunnelState): void {
    const others = this.cluster.members().filter((m) => m !== this.cluster.self);
    const changed = new Map<number, KeypairExtras>();
    for (const [idx, floor] of s.floor) {
      let lim: bigint | undefined;
      if (others.length === 0) lim = s.res.get(idx);
      else {
        for (const m of others) {
          const v = s.acked.get(m) ?? 0;
          let r: bigint | undefined;
          for (const is of s.issued) if (is.version <= v && is.res.has(idx)) r = is.res.get(idx);
          const got = r ?? floor;
          lim = lim === undefined || got < lim ? got : lim;
        }
      }
      const next = lim !== undefined && lim > floor ? lim : floor;
      if (s.limit.get(idx) !== next) {
        s.limit.set(idx, next);
        changed.set(idx, { sendLimit: next });
      }
    }
    // Issued versions every member acknowledged are no longer needed but the newest of them.
    if (others.length > 0 && s.issued.length > 1) {
      const minAcked = Math.min(...others.map((m) => s.acked.get(m) ?? 0));
      let keepFrom = 0;
      s.issued.forEach((is, i) => { if (is.version <= minAcked) keepFrom = i; });
      if (keepFrom > 0) s.issued = s.issued.slice(keepFrom);
    }
    if (changed.size > 0) this.ep.setExtras(peer, changed, true);
  }
}

/** Whether a state-sync record is a tunnel record (its key). */
export function isTunnelRecord(r: { key: Uint8Array }): boolean {
  return tunnelKeyPeer(r.key) !== null;
}
