/**
 * Session state replication (digest: Figure 7, "every member holds essential state for every session in
 * the cluster") as a pure state machine: events in, effects out, no clock, sockets or timers inside.
 *
 * Records are idempotent: a session's record carries a version that increases with every change at its
 * owner, and a receiver keeps the highest version. So the sender never needs to resend an old message:
 * per peer it keeps a *dirty set* (key -> latest record not yet acknowledged by that peer). Sending takes
 * records from the dirty set into a numbered StateSync; the peer acknowledges the number; on timeout the
 * message's records go back into the dirty set unless a newer version is already there. Coalescing is
 * therefore free (ten changes of one session while a message is in flight cost one record), memory is
 * bounded by the number of sessions times peers, and loss, duplication and reordering are harmless.
 *
 * The driver (gwclusterd) feeds local changes from the packet engine, peers from the cluster membership,
 * received messages, ticks; it sends the messages, installs received records into the engine, and is
 * told when a joiner's snapshot is complete, when this member is ready (holds every peer's sessions) and
 * when a hand-over (planned unit move) has been acknowledged by the new owner.
 */
import type { MemberId, SessionRecord, StateAck, StateSync } from '@gwcluster/wire';

export interface ReplicatorConfig {
  readonly self: MemberId;
  /** Re-send an unacknowledged StateSync's records after this long, ms. */
  readonly retransmitMs: number;
  /** Largest encoded record bytes per StateSync (keeps datagrams under one Ethernet frame). */
  readonly maxMessageBytes: number;
  /** At most this many records per message (proto limit 64). */
  readonly maxRecordsPerMessage: number;
  /** Rate limit per peer, bytes of records per second (keepalives are never limited). */
  readonly maxBytesPerSecond: number;
  /** Messages in flight per peer at most (a window, so a slow peer does not grow the backlog twice). */
  readonly maxInFlight: number;
  /** A hand-over not acknowledged within this long is reported done with complete: false, ms. */
  readonly handoverTimeoutMs: number;
}

export const DEFAULT_REPLICATOR_CONFIG: Omit<ReplicatorConfig, 'self'> = {
  retransmitMs: 200,
  maxMessageBytes: 1200,
  maxRecordsPerMessage: 64,
  maxBytesPerSecond: 4_000_000,
  maxInFlight: 64,
  handoverTimeoutMs: 1000,
};

/** A session's latest state at its owner. state is empty when removed. */
export interface LocalRecord {
  readonly key: Uint8Array;
  readonly version: number;
  readonly state: Uint8Array;
  readonly removed: boolean;
  /** Report the peer's acknowledgement of this record (effect `acked`): tunnel records' counter leases. */
  readonly ackWanted?: boolean;
}

export type ReplicatorEvent =
  /** The current other members. A new peer gets a snapshot (the driver answers `need-snapshot`). */
  | { readonly type: 'peers'; readonly now: number; readonly peers: readonly MemberId[] }
  /** Changes of sessions this member owns (from the packet engine), latest version each. */
  | { readonly type: 'local-changes'; readonly now: number; readonly records: readonly LocalRecord[] }
  /** The answer to `need-snapshot`: every session this member owns now. */
  | { readonly type: 'snapshot-records'; readonly now: number; readonly peer: MemberId; readonly records: readonly LocalRecord[] }
  | { readonly type: 'message'; readonly now: number; readonly from: MemberId; readonly message: StateSync | StateAck }
  | { readonly type: 'tick'; readonly now: number }
  /** A planned move: make sure `to` holds these sessions; answer `handover-done` when it acknowledged them. */
  | { readonly type: 'handover'; readonly now: number; readonly id: number; readonly to: MemberId; readonly records: readonly LocalRecord[] };

export type ReplicatorEffect =
  | { readonly type: 'send'; readonly to: MemberId; readonly message: StateSync | StateAck }
  /** Install these records (from another member) into the local session table. */
  | { readonly type: 'install'; readonly from: MemberId; readonly records: readonly SessionRecord[] }
  | { readonly type: 'need-snapshot'; readonly peer: MemberId }
  /** Every peer present at start has sent its full snapshot: this member may own units. */
  | { readonly type: 'ready' }
  | { readonly type: 'handover-done'; readonly id: number; readonly complete: boolean }
  /** `from` acknowledged this version of a record sent with `ackWanted` (it holds it, or a newer one). */
  | { readonly type: 'acked'; readonly from: MemberId; readonly key: Uint8Array; readonly version: number };

interface InFlight {
  readonly entries: Map<string, LocalRecord>;
  sentAt: number;
  readonly snapshotComplete: boolean;
}

interface Peer {
  readonly dirty: Map<string, LocalRecord>;
  readonly inflight: Map<number, InFlight>;
  /** A snapshot was queued for this peer; send snapshot_complete once it is all acknowledged. */
  snapshotPending: boolean;
  tokens: number;
  lastRefill: number;
}

export interface ReplicatorCounters {
  recordsSent: number;
  recordsResent: number;
  recordsReceived: number;
  messagesSent: number;
  bytesSent: number;
  acksSent: number;
  coalesced: number;
  rateLimited: number;
}

function keyId(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

/** Bytes a record takes in a StateSync (protobuf field overhead included, approximately). */
export function recordBytes(r: LocalRecord): number {
  return r.key.length + r.state.length + 16;
}

export class Replicator {
  readonly config: ReplicatorConfig;
  private readonly peers = new Map<MemberId, Peer>();
  private nextSeq = 1;
  private effects: ReplicatorEffect[] = [];
  /** Peers whose snapshot this member waits for before it is ready; null once ready. */
  private awaiting: Set<MemberId> | null = null;
  private startedWaiting = false;
  /** Peers whose snapshot_complete arrived (possibly before this member knew its peers). */
  private readonly snapshotsFrom = new Set<MemberId>();
  private readonly handovers = new Map<number, { to: MemberId; pending: Map<string, number>; deadline: number }>();
  readonly counters: ReplicatorCounters = { recordsSent: 0, recordsResent: 0, recordsReceived: 0, messagesSent: 0, bytesSent: 0, acksSent: 0, coalesced: 0, rateLimited: 0 };

  constructor(config: ReplicatorConfig) {
    this.config = config;
  }

  get ready(): boolean {
    return this.awaiting === null && this.startedWaiting;
  }

  /** Records waiting to be sent or acknowledged, summed over peers (the sync backlog). */
  backlog(): number {
    let n = 0;
    for (const p of this.peers.values()) {
      n += p.dirty.size;
      for (const f of p.inflight.values()) n += f.entries.size;
    }
    return n;
  }

  step(event: ReplicatorEvent): ReplicatorEffect[] {
    this.effects = [];
    switch (event.type) {
      case 'peers':
        this.setPeers(event.now, event.peers);
        break;
      case 'local-changes':
        for (const peer of this.peers.values()) for (const r of event.records) this.markDirty(peer, r);
        break;
      case 'snapshot-records': {
        const peer = this.peers.get(event.peer);
        if (!peer) break;
        for (const r of event.records) this.markDirty(peer, r);
        peer.snapshotPending = true;
        break;
      }
      case 'message':
        if (event.message.type === 'state-sync') this.onSync(event.from, event.message);
        else this.onAck(event.now, event.from, event.message);
        break;
      case 'tick':
        this.onTick(event.now);
        break;
      case 'handover': {
        const peer = this.peers.get(event.to);
        const pending = new Map<string, number>();
        if (peer) {
          for (const r of event.records) {
            this.markDirty(peer, r);
            pending.set(keyId(r.key), r.version);
          }
        }
        if (pending.size === 0) this.effects.push({ type: 'handover-done', id: event.id, complete: peer !== undefined });
        else this.handovers.set(event.id, { to: event.to, pending, deadline: event.now + this.config.handoverTimeoutMs });
        break;
      }
    }
    return this.effects;
  }

  private markDirty(peer: Peer, r: LocalRecord): void {
    const id = keyId(r.key);
    const had = peer.dirty.get(id);
    // A removal always wins over what is queued; a record after a queued removal is a new session of
    // the same flow key. Otherwise the higher version wins.
    if (had && !r.removed && !had.removed && had.version >= r.version) return;
    if (had) this.counters.coalesced++;
    peer.dirty.set(id, r);
  }

  private setPeers(now: number, peers: readonly MemberId[]): void {
    const next = new Set(peers.filter((p) => p !== this.config.self));
    for (const id of [...this.peers.keys()]) {
      if (!next.has(id)) {
        this.peers.delete(id);
        this.awaiting?.delete(id);
        for (const [hid, h] of this.handovers) {
          if (h.to === id) {
            this.handovers.delete(hid);
            this.effects.push({ type: 'handover-done', id: hid, complete: false });
          }
        }
      }
    }
    for (const id of next) {
      if (this.peers.has(id)) continue;
      this.peers.set(id, { dirty: new Map(), inflight: new Map(), snapshotPending: false, tokens: this.config.maxBytesPerSecond / 10, lastRefill: now });
      this.effects.push({ type: 'need-snapshot', peer: id });
    }
    if (!this.startedWaiting) {
      // The first membership view: wait for the snapshot of everyone already there.
      this.startedWaiting = true;
      this.awaiting = new Set([...next].filter((p) => !this.snapshotsFrom.has(p)));
    }
    this.checkReady();
  }

  private checkReady(): void {
    if (this.awaiting !== null && this.awaiting.size === 0) {
      this.awaiting = null;
      this.effects.push({ type: 'ready' });
    }
  }

  private onSync(from: MemberId, msg: StateSync): void {
    // Acknowledge even unknown senders' messages: a joiner may hear a peer before membership tells it.
    this.counters.acksSent++;
    this.effects.push({ type: 'send', to: from, message: { type: 'state-ack', seqs: [msg.seq] } });
    if (msg.records.length > 0) {
      this.counters.recordsReceived += msg.records.length;
      this.effects.push({ type: 'install', from, records: msg.records });
    }
    if (msg.snapshotComplete) {
      this.snapshotsFrom.add(from);
      if (this.awaiting?.delete(from)) this.checkReady();
    }
  }

  private onAck(now: number, from: MemberId, ack: StateAck): void {
    const peer = this.peers.get(from);
    if (!peer) return;
    for (const seq of ack.seqs) {
      const f = peer.inflight.get(seq);
      if (!f) continue;
      peer.inflight.delete(seq);
      for (const [id, r] of f.entries) {
        if (r.ackWanted) this.effects.push({ type: 'acked', from, key: r.key, version: r.version });
        for (const [hid, h] of this.handovers) {
          if (h.to !== from) continue;
          const want = h.pending.get(id);
          if (want !== undefined && r.version >= want) {
            h.pending.delete(id);
            if (h.pending.size === 0) {
              this.handovers.delete(hid);
              this.effects.push({ type: 'handover-done', id: hid, complete: true });
            }
          }
        }
      }
    }
    void now;
  }

  private onTick(now: number): void {
    for (const [hid, h] of [...this.handovers]) {
      if (now >= h.deadline) {
        this.handovers.delete(hid);
        this.effects.push({ type: 'handover-done', id: hid, complete: false });
      }
    }
    for (const [id, peer] of this.peers) {
      // Retransmission: an unacknowledged message's records return to the dirty set (unless newer).
      for (const [seq, f] of [...peer.inflight]) {
        if (now - f.sentAt < this.config.retransmitMs) continue;
        peer.inflight.delete(seq);
        for (const [kid, r] of f.entries) {
          const cur = peer.dirty.get(kid);
          if (!cur || cur.version < r.version) {
            peer.dirty.set(kid, r);
            this.counters.recordsResent++;
          }
        }
        if (f.snapshotComplete) peer.snapshotPending = true;
      }
      // Token bucket.
      peer.tokens = Math.min(this.config.maxBytesPerSecond / 10, peer.tokens + ((now - peer.lastRefill) * this.config.maxBytesPerSecond) / 1000);
      peer.lastRefill = now;
      while (peer.dirty.size > 0 && peer.inflight.size < this.config.maxInFlight) {
        if (peer.tokens <= 0) {
          this.counters.rateLimited++;
          break;
        }
        this.sendBatch(now, id, peer);
      }
      if (peer.snapshotPending && peer.dirty.size === 0 && peer.inflight.size === 0) {
        peer.snapshotPending = false;
        const seq = this.nextSeq++;
        peer.inflight.set(seq, { entries: new Map(), sentAt: now, snapshotComplete: true });
        this.counters.messagesSent++;
        this.effects.push({ type: 'send', to: id, message: { type: 'state-sync', seq, records: [], snapshotComplete: true } });
      }
    }
  }

  private sendBatch(now: number, to: MemberId, peer: Peer): void {
    const entries = new Map<string, LocalRecord>();
    let bytes = 0;
    for (const [kid, r] of peer.dirty) {
      const b = recordBytes(r);
      if (entries.size > 0 && (bytes + b > this.config.maxMessageBytes || entries.size >= this.config.maxRecordsPerMessage)) break;
      entries.set(kid, r);
      bytes += b;
    }
    for (const kid of entries.keys()) peer.dirty.delete(kid);
    const seq = this.nextSeq++;
    peer.inflight.set(seq, { entries, sentAt: now, snapshotComplete: false });
    peer.tokens -= bytes;
    this.counters.messagesSent++;
    this.counters.recordsSent += entries.size;
    this.counters.bytesSent += bytes;
    const records: SessionRecord[] = [...entries.values()].map((r) => ({ key: r.key, version: r.version, state: r.state, removed: r.removed }));
    this.effects.push({ type: 'send', to, message: { type: 'state-sync', seq, records, snapshotComplete: false } });
  }
}
