/**
 * Session state and its replication on one member (docs/state-sync.md): the native SessionTable the
 * packet engine tracks owned packets in, and the Replicator (packages/state-sync) that gives every other
 * member a copy of this member's sessions and installs theirs.
 *
 *   - urgent changes every tick, lazy changes and expiry less often (cadence.ts); every change is
 *     queued for every peer and the replicator sends what its rate limit allows;
 *   - a joiner is ready (may be given units) once every member present when it joined sent its
 *     snapshot; a planned move acknowledges WORK DE-ASSIGN only after the new owner acknowledged the
 *     moved units' sessions.
 */
import type { Logger } from 'pino';
import type { DataPlaneView } from '@gwcluster/cluster-core';
import { SessionTable, SESSION_RECORD_SIZE, sessionRecordKey, sessionRecordVersion } from '@gwcluster/native-addon';
import type { LocalRecord } from '@gwcluster/state-sync';
import { SyncCadence, URGENT_EVERY_MS } from './cadence.js';
import { SessionReplication, type SessionStore } from './replication.js';
import { encodeSessionFile, readSessionFile, writeSessionFile, writeSessionFileSync } from './session-file.js';
import type { ClusterMessage, MemberId, SessionRecord, StateAck, StateSync, WorkUnit } from '@gwcluster/wire';
import type { SessionFilter, SessionPage, SessionProvider, SyncCounters } from '../operator/providers.js';

export interface SessionSyncConfig {
  readonly mode: 'strict' | 'loose';
  /** Replicate sessions to the other members (off: every member knows only its own). */
  readonly sync: boolean;
  readonly maxSessions: number;
  /** Rate limit of replication per peer, bytes per second. */
  readonly maxBytesPerSecond: number;
  /** The table is saved here at stop() and every saveEveryMs, and restored at start() (session-file.ts); absent: never. */
  readonly stateFile?: string;
  /** Period of the saves, ms; 0: only at stop(). */
  readonly saveEveryMs?: number;
}

export interface SessionSyncOptions {
  readonly self: MemberId;
  readonly config: SessionSyncConfig;
  readonly logger: Logger;
  /**
   * Sends a state-sync plane message (sealed by the member). includeCertificate: the receiver may not
   * know this member's certificate yet (members that joined after it never saw its JOIN REQUEST).
   */
  readonly send: (to: MemberId, message: StateSync | StateAck, opts: { includeCertificate: boolean }) => void;
  /** This member now holds every peer's sessions. */
  readonly onReady: () => void;
  /** A hand-over finished. */
  readonly onHandoverDone: (requestId: number, complete: boolean) => void;
  /** Units this member owns now (for snapshots). */
  readonly ownedUnits: () => readonly WorkUnit[];
  /** The owner of a unit as this member knows it ('' when unassigned). */
  readonly ownerOf: (unit: WorkUnit) => MemberId;
  /** Wall clock, ms since the epoch (the session table stamps sessions with it). Default: Date.now. */
  readonly clock?: () => number;
}

/** Sessions scanned at most when the admin API filters by member. */
const MEMBER_FILTER_SCAN = 100_000;

const PROTO_NAMES: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmpv6', 47: 'gre', 50: 'esp' };

/** Every unit, as the table's bitmap (the snapshot takes every session). */
const ALL_UNITS = new Uint8Array(128).fill(0xff);

/** Records collected per 10 ms tick at most (the rest stay queued in the table). */
const COLLECT_MAX = 2048;

/** A copy of a table record as the replicator takes it (the table's views share one buffer). */
function localRecord(r: Uint8Array): LocalRecord {
  const state = new Uint8Array(r);
  return { key: sessionRecordKey(state), version: sessionRecordVersion(state), state, removed: false };
}

/**
 * Other state that travels with the sessions (the tunnels' records, docs/tunnels.md): told apart by its
 * keys, replicated by the same replicator (coalesced, acknowledged, sealed, snapshot to joiners).
 */
export interface ExtraRecords {
  /** Whether a received record is this store's. */
  owns(r: SessionRecord): boolean;
  install(from: MemberId, records: readonly SessionRecord[]): void;
  /** Records written since the last call. */
  collect(): LocalRecord[];
  recordsOf(units: ReadonlySet<number>): LocalRecord[];
  handoverRecordsOf(units: ReadonlySet<number>): LocalRecord[];
  acked(from: MemberId, key: Uint8Array, version: number): void;
}

export class SessionSync implements SessionProvider, SyncCounters {
  private extra: ExtraRecords | null = null;
  readonly table: SessionTable;
  readonly replication: SessionReplication;
  private timer: NodeJS.Timeout | null = null;
  private readonly cadence = new SyncCadence();
  private readonly clock: () => number;
  /** The session table's statistics as of the last expiry pass (at most a second old). */
  private tableStats: Record<string, number> = {};
  private received = 0;
  readonly counters = { installed: 0, installStale: 0, removalsApplied: 0, restored: 0, saves: 0, saveErrors: 0 };
  private lastSaveMs = 0;
  private saving = false;

  constructor(private readonly opts: SessionSyncOptions) {
    this.table = new SessionTable({ maxSessions: opts.config.maxSessions, mode: opts.config.mode });
    this.clock = opts.clock ?? Date.now;
    const store: SessionStore = {
      recordsOf: (units) => [...this.table.sessionsForUnits([...units]).map(localRecord), ...(this.extra?.recordsOf(new Set(units)) ?? [])],
      handoverRecordsOf: (units) => [...this.table.sessionsForUnits([...units]).map(localRecord), ...(this.extra?.handoverRecordsOf(new Set(units)) ?? [])],
      install: (from, records, now) => {
        const extra = this.extra;
        if (extra && records.some((r) => extra.owns(r))) {
          extra.install(from, records.filter((r) => extra.owns(r)));
          this.install(records.filter((r) => !extra.owns(r)), now);
        } else {
          this.install(records, now);
        }
      },
      acked: (from, key, version) => this.extra?.acked(from, key, version),
    };
    this.replication = new SessionReplication({ self: opts.self, sync: opts.config.sync, maxBytesPerSecond: opts.config.maxBytesPerSecond }, store, {
      send: (to, message, o) => {
        this.opts.logger.debug({ to, type: message.type }, 'state sync: send');
        this.opts.send(to, message, o);
      },
      ready: () => {
        this.opts.logger.info({ sessions: this.table.size }, "state sync: holds every member's sessions");
        this.opts.onReady();
      },
      handoverDone: (requestId, complete) => this.opts.onHandoverDone(requestId, complete),
      ownedUnits: () => this.opts.ownedUnits(),
      failed: (event, err) => this.opts.logger.error({ err: err.message, event }, 'state replication failed on an event'),
    });
  }

  start(): void {
    this.restore();
    this.lastSaveMs = this.clock();
    this.timer = setInterval(() => this.tick(), URGENT_EVERY_MS);
    this.timer.unref();
    this.replication.start();
  }

  /** Stops the timers and saves the table (synchronously: the process may exit right after). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const file = this.opts.config.stateFile;
    if (!file) return;
    try {
      const records = this.table.sessionsForUnits(ALL_UNITS);
      writeSessionFileSync(file, encodeSessionFile(records, this.clock()));
      this.counters.saves++;
      this.opts.logger.info({ file, sessions: records.length }, 'sessions saved');
    } catch (e) {
      this.counters.saveErrors++;
      this.opts.logger.error({ file, err: (e as Error).message }, 'sessions: cannot save the table');
    }
  }

  /** Installs the saved table as replicas (a member that owns their units after the restart carries them on). */
  private restore(): void {
    const file = this.opts.config.stateFile;
    if (!file) return;
    const now = this.clock();
    const snap = readSessionFile(file, now);
    if (!snap.ok) {
      if (snap.reason === 'none') this.opts.logger.info({ file }, 'sessions: no saved table');
      else this.opts.logger.warn({ file, reason: snap.reason }, 'sessions: saved table not restored');
      return;
    }
    try {
      const out = this.table.install(snap.records, now);
      this.counters.restored = out.installed;
      this.opts.logger.info({ file, restored: out.installed, saved: snap.count, ageMs: Math.round(now - snap.savedAtMs) }, 'sessions restored');
    } catch (e) {
      this.opts.logger.warn({ file, err: (e as Error).message }, 'sessions: saved table not restored');
    }
  }

  /** The periodic save, off the event loop's back (one at a time). */
  private saveIfDue(now: number): void {
    const file = this.opts.config.stateFile;
    const every = this.opts.config.saveEveryMs ?? 0;
    if (!file || every <= 0 || this.saving || now - this.lastSaveMs < every) return;
    this.lastSaveMs = now;
    let bytes: Uint8Array;
    try {
      bytes = encodeSessionFile(this.table.sessionsForUnits(ALL_UNITS), now);
    } catch (e) {
      this.counters.saveErrors++;
      this.opts.logger.error({ file, err: (e as Error).message }, 'sessions: cannot save the table');
      return;
    }
    this.saving = true;
    writeSessionFile(file, bytes)
      .then(() => this.counters.saves++)
      .catch((e: Error) => {
        this.counters.saveErrors++;
        this.opts.logger.error({ file, err: e.message }, 'sessions: cannot save the table');
      })
      .finally(() => (this.saving = false));
  }

  /** Other state replicated with the sessions (the tunnels' records); null detaches it. */
  attachExtra(extra: ExtraRecords | null): void {
    this.extra = extra;
  }

  /** The core's view after a step (its members are the peers); call after every step. */
  followView(view: DataPlaneView): void {
    const peers = this.replication.followView(this.clock(), view);
    if (peers) this.opts.logger.info({ peers }, 'state sync: peers changed');
  }

  /** Consumes state-sync plane messages (a MemberNode plane handler). */
  handleMessage(from: MemberId, message: ClusterMessage): boolean {
    const consumed = this.replication.message(this.clock(), from, message);
    if (consumed) this.opts.logger.debug({ from, type: message.type }, 'state sync: received');
    return consumed;
  }

  /** Planned move: give `to` the sessions of `units`, then report done (WORK ACK follows). */
  handover(requestId: number, units: readonly WorkUnit[], to: MemberId | ''): void {
    this.replication.handover(this.clock(), requestId, units, to);
  }

  private install(records: readonly SessionRecord[], now: number): void {
    const installs: Uint8Array[] = [];
    const removals: Uint8Array[] = [];
    for (const r of records) {
      this.received += r.key.length + r.state.length;
      if (r.removed) removals.push(r.key);
      else if (r.state.length === SESSION_RECORD_SIZE) installs.push(r.state);
    }
    if (installs.length > 0) {
      const out = this.table.install(installs, now);
      this.counters.installed += out.installed;
      this.counters.installStale += installs.length - out.installed;
    }
    if (removals.length > 0) this.counters.removalsApplied += this.table.remove(removals);
  }

  private tick(): void {
    const now = this.clock();
    const { lazy, expire } = this.cadence.due(now);
    if (expire) {
      this.table.expire(now);
      // The table's statistics walk every session under the lock the packet engine needs: take them
      // once a second here, never per admin request or metrics scrape.
      this.tableStats = this.table.stats() as unknown as Record<string, number>;
    }
    const changes = this.table.collectChanges(COLLECT_MAX, now, { lazy });
    const extra = this.extra?.collect() ?? [];
    if (this.opts.config.sync && (changes.records.length > 0 || changes.removed.length > 0 || extra.length > 0)) {
      const records: LocalRecord[] = [...changes.records.map(localRecord), ...extra];
      for (const k of changes.removed) records.push({ key: new Uint8Array(k), version: 0xffffffff, state: new Uint8Array(0), removed: true });
      this.replication.localChanges(now, records);
    }
    this.replication.tick(now);
    this.saveIfDue(now);
  }

  // SessionProvider (GET /v1/sessions) ------------------------------------------------------------

  list(filter: SessionFilter, offset: number, limit: number): SessionPage {
    try {
      const query = { ...(filter.unit !== undefined ? { unit: filter.unit } : {}), ...(filter.address ? { addr: filter.address } : {}), ...(filter.port !== undefined ? { port: filter.port } : {}) };
      let page: { total: number; sessions: ReturnType<SessionTable['list']>['sessions'] };
      if (filter.member) {
        // The table knows units, not members: filter by the unit's owner here (bounded scan).
        const all = this.table.list({ ...query, offset: 0, limit: MEMBER_FILTER_SCAN }).sessions.filter((x) => this.ownerOf(x.unit) === filter.member);
        page = { total: all.length, sessions: all.slice(offset, offset + limit) };
      } else {
        page = this.table.list({ ...query, offset, limit });
      }
      return {
        total: page.total,
        sessions: page.sessions.map((s) => ({
          id: `${PROTO_NAMES[s.proto] ?? s.proto}:${s.originator.addr}:${s.originator.port}>${s.responder.addr}:${s.responder.port}`,
          protocol: `${PROTO_NAMES[s.proto] ?? s.proto} ${s.state}`,
          srcAddress: s.originator.addr,
          srcPort: s.originator.port,
          dstAddress: s.responder.addr,
          dstPort: s.responder.port,
          unit: s.unit,
          member: this.ownerOf(s.unit),
          since: new Date(s.lastSeenMs).toISOString(),
          packets: 0,
          bytes: 0,
        })),
      };
    } catch {
      return { total: 0, sessions: [] };
    }
  }

  private ownerOf(unit: number): MemberId {
    return unit >= 0 && unit < 1024 ? this.opts.ownerOf(unit) : '';
  }

  // SyncCounters (metrics) --------------------------------------------------------------------------

  backlog(): number {
    return this.replication.replicator.backlog();
  }

  bytesSent(): number {
    return this.replication.replicator.counters.bytesSent;
  }

  bytesReceived(): number {
    return this.received;
  }

  stats(): Record<string, number> {
    const t = this.tableStats;
    const out: Record<string, number> = { sessions: this.table.size, backlog: this.backlog() };
    for (const [k, v] of Object.entries(this.replication.replicator.counters)) out[`sync.${k}`] = v;
    for (const [k, v] of Object.entries(this.replication.counters)) out[`sync.${k}`] = v;
    for (const [k, v] of Object.entries(this.counters)) out[`sync.${k}`] = v;
    for (const [k, v] of Object.entries(t)) if (typeof v === 'number') out[`table.${k}`] = v;
    return out;
  }
}
