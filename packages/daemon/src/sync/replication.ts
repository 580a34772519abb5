/**
 * Session replication on one member around the pure Replicator (packages/state-sync): which messages are
 * the state-sync plane's, who the peers are (from the core's view), the hand-over of a planned move, and
 * what each replicator effect asks of the member. The same code runs in gwclusterd (session-sync.ts,
 * over the native session table, with real timers) and in the simulator (sim/, over a simulated table,
 * in virtual time). No clock, timer or I/O here: time comes in as `now`; the session store and the
 * member's side (SessionHost) are passed in and called synchronously, in effect order.
 */
import type { DataPlaneView } from '@gwcluster/cluster-core';
import { Replicator, DEFAULT_REPLICATOR_CONFIG, type LocalRecord, type ReplicatorEffect, type ReplicatorEvent } from '@gwcluster/state-sync';
import type { ClusterMessage, MemberId, SessionRecord, StateAck, StateSync, WorkUnit } from '@gwcluster/wire';

/** The messages of the state-sync plane (consumed by it; the core and the operator plane never see them). */
export function isStateSyncMessage(m: ClusterMessage): m is StateSync | StateAck {
  return m.type === 'state-sync' || m.type === 'state-ack';
}

/** The member's sessions as replication reads and writes them. Must not block; never called concurrently. */
export interface SessionStore {
  /** Copies of the latest records of this member's sessions of `units`. */
  recordsOf(units: readonly WorkUnit[]): LocalRecord[];
  /** Installs records another member sent (removals included; a record older than the one held is ignored). */
  install(from: MemberId, records: readonly SessionRecord[], now: number): void;
  /** The records a planned move of `units` hands over (default recordsOf). */
  handoverRecordsOf?(units: readonly WorkUnit[]): LocalRecord[];
  /** `from` acknowledged a record sent with `ackWanted` (optional). */
  acked?(from: MemberId, key: Uint8Array, version: number, now: number): void;
}

/** What replication asks of its member. Called synchronously, in effect order; must not call back in. */
export interface SessionHost {
  /**
   * Sends a state-sync plane message (sealed by the member). includeCertificate: the receiver may not
   * know this member's certificate yet (members that joined after it never saw its JOIN REQUEST).
   */
  send(to: MemberId, message: StateSync | StateAck, opts: { includeCertificate: boolean }): void;
  /** This member now holds every peer's sessions (core event `sync-ready`). */
  ready(): void;
  /** The hand-over `requestId` finished; `complete` false: not acknowledged in time (or the peer left). */
  handoverDone(requestId: number, complete: boolean): void;
  /** Units this member owns now (for a new peer's snapshot). */
  ownedUnits(): readonly WorkUnit[];
  /** The replicator threw on an event (a bug): the event is dropped, the member goes on. */
  failed(event: ReplicatorEvent['type'], err: Error): void;
}

export interface SessionReplicationConfig {
  readonly self: MemberId;
  /** Replicate sessions to the other members (off: every member knows only its own). */
  readonly sync: boolean;
  /** Rate limit of replication per peer, bytes per second. */
  readonly maxBytesPerSecond: number;
}

export class SessionReplication {
  readonly replicator: Replicator;
  readonly counters = { handovers: 0, handoversIncomplete: 0 };
  private peersKey: string | null = null;
  /** Peers that acknowledged a message of ours, so they hold our certificate. */
  private readonly verifiedBy = new Set<MemberId>();
  /** Replicator hand-over id -> the core's request id. */
  private readonly handoverIds = new Map<number, number>();
  private nextHandoverId = 1;

  constructor(
    readonly config: SessionReplicationConfig,
    private readonly store: SessionStore,
    private readonly host: SessionHost,
  ) {
    this.replicator = new Replicator({ ...DEFAULT_REPLICATOR_CONFIG, self: config.self, maxBytesPerSecond: config.maxBytesPerSecond });
  }

  /** The member starts: without replication it holds everything it ever will at once. */
  start(): void {
    if (!this.config.sync) this.host.ready();
  }

  /**
   * The core's view after a step. Only a member in a cluster knows its peers (a joiner's empty view must
   * not make it "ready"). Returns the peers when they changed, else null.
   */
  followView(now: number, view: DataPlaneView): readonly MemberId[] | null {
    if (view.members.length === 0) return null;
    return this.setPeers(now, view.members.filter((m) => m !== this.config.self));
  }

  /** The current other members; returns them when they changed, else null. */
  setPeers(now: number, peers: readonly MemberId[]): readonly MemberId[] | null {
    if (!this.config.sync) return null;
    const key = [...peers].sort().join(',');
    if (key === this.peersKey) return null;
    this.peersKey = key;
    for (const p of [...this.verifiedBy]) if (!peers.includes(p)) this.verifiedBy.delete(p);
    this.step({ type: 'peers', now, peers });
    return peers;
  }

  /** A received message: true when it was the state-sync plane's (consumed, even with replication off). */
  message(now: number, from: MemberId, message: ClusterMessage): boolean {
    if (!isStateSyncMessage(message)) return false;
    // An acknowledgement proves the peer verified our certificate; an empty one is a certificate probe
    // (the peer holds no certificate of ours, it could not seal for us): carry ours again.
    if (message.type === 'state-ack') {
      if (message.seqs.length > 0) this.verifiedBy.add(from);
      else this.verifiedBy.delete(from);
    }
    if (this.config.sync) this.step({ type: 'message', now, from, message });
    return true;
  }

  /** Planned move: give `to` the sessions of `units`, then report done (WORK ACK follows). */
  handover(now: number, requestId: number, units: readonly WorkUnit[], to: MemberId | ''): void {
    this.counters.handovers++;
    if (!this.config.sync || to === '') {
      this.host.handoverDone(requestId, true);
      return;
    }
    const id = this.nextHandoverId++;
    this.handoverIds.set(id, requestId);
    this.step({ type: 'handover', now, id, to, records: this.store.handoverRecordsOf?.(units) ?? this.store.recordsOf(units) });
  }

  /** Changes of this member's sessions (latest version each; removals with `removed`). */
  localChanges(now: number, records: readonly LocalRecord[]): void {
    if (this.config.sync && records.length > 0) this.step({ type: 'local-changes', now, records });
  }

  tick(now: number): void {
    if (this.config.sync) this.step({ type: 'tick', now });
  }

  private step(event: ReplicatorEvent): void {
    let effects: ReplicatorEffect[];
    try {
      effects = this.replicator.step(event);
    } catch (err) {
      this.host.failed(event.type, err as Error);
      return;
    }
    for (const e of effects) {
      switch (e.type) {
        case 'send':
          // Carry the certificate until the peer acknowledged something of ours (it verified us).
          this.host.send(e.to, e.message, { includeCertificate: !this.verifiedBy.has(e.to) });
          break;
        case 'install':
          this.store.install(e.from, e.records, event.now);
          break;
        case 'need-snapshot':
          this.step({ type: 'snapshot-records', now: event.now, peer: e.peer, records: this.store.recordsOf(this.host.ownedUnits()) });
          break;
        case 'ready':
          this.host.ready();
          break;
        case 'acked':
          this.store.acked?.(e.from, e.key, e.version, event.now);
          break;
        case 'handover-done': {
          const requestId = this.handoverIds.get(e.id);
          this.handoverIds.delete(e.id);
          if (!e.complete) this.counters.handoversIncomplete++;
          if (requestId !== undefined) this.host.handoverDone(requestId, e.complete);
          break;
        }
      }
    }
  }
}
