// The session table (session_table.{h,cc}) behind a typed wrapper: stateful TCP/UDP tracking of
// the packets a member accepts, the replicated session records of 003 Figure 7 (their layout:
// record-layout.ts), change collection for state sync and the installation of replicas for failover.
import { loadBinding, type FilterBinding, type NativeSessionStats, type NativeSessionTable } from '../common/binding.js';
import { isIpv4Text, isIpv6Text, parseIpv4, parseIpv6 } from '../common/addresses.js';
import { callNative, checkBoolean, checkBytes, checkInteger } from '../common/errors.js';
import { WORK_UNITS } from '../filter/reference.js';
import {
  decodeSessionRecord,
  sessionStateName,
  SESSION_KEY_SIZE,
  SESSION_RECORD_SIZE,
  type SessionRecord,
  type SessionStateName,
} from './record-layout.js';

export type { NativeSessionTable, NativeSessionTableConstructor, NativeSessionStats, NativeTrackResult } from '../common/binding.js';

/** Why track() decided as it did (session.h Reason, same order). */
export const TRACK_REASONS = ['none', 'no-session', 'out-of-window', 'table-full', 'malformed', 'invalid-flags', 'unexpected-syn', 'untracked'] as const;
export type TrackReason = (typeof TRACK_REASONS)[number];

export const TrackVerdict = { ACCEPT: 0, DROP: 1 } as const;
export type TrackVerdict = (typeof TrackVerdict)[keyof typeof TrackVerdict];

/** Idle timeouts in ms per state (README "Timeouts"). */
export interface SessionTimeouts {
  synSent: number;
  synRecv: number;
  established: number;
  finWait: number;
  closing: number;
  timeWait: number;
  closed: number;
  udpUnreplied: number;
  udpReplied: number;
  otherUnreplied: number;
  otherReplied: number;
}
export const SESSION_TIMEOUT_KEYS = [
  'synSent',
  'synRecv',
  'established',
  'finWait',
  'closing',
  'timeWait',
  'closed',
  'udpUnreplied',
  'udpReplied',
  'otherUnreplied',
  'otherReplied',
] as const satisfies readonly (keyof SessionTimeouts)[];
export const DEFAULT_SESSION_TIMEOUTS: Readonly<SessionTimeouts> = {
  synSent: 30_000,
  synRecv: 30_000,
  established: 7_200_000,
  finWait: 120_000,
  closing: 120_000,
  timeWait: 120_000,
  closed: 10_000,
  udpUnreplied: 30_000,
  udpReplied: 180_000,
  otherUnreplied: 30_000,
  otherReplied: 60_000,
};
export const DEFAULT_MAX_SESSIONS = 1_000_000;

export interface SessionTableOptions {
  /** Sessions the table may hold (default 1,000,000; see stats().bytesPerSession). */
  maxSessions?: number;
  /** 'strict' (default): only a SYN opens a TCP session and the window rule applies. 'loose': mid-stream pick-up, no window drops. */
  mode?: 'strict' | 'loose';
  timeouts?: Partial<SessionTimeouts>;
  binding?: FilterBinding;
}

export interface TrackOutcome {
  verdict: 'ACCEPT' | 'DROP';
  reason: TrackReason;
  /** The packet created the session. */
  created: boolean;
  /** The session's state after the packet ('NONE' when there is no session). */
  state: SessionStateName;
  /** The session's work unit (or the packet's, 65535 when none). */
  unit: number;
}

export interface CollectOptions {
  /** Include lazy changes (the periodic batch, e.g. every 200 ms); false: urgent changes only. */
  lazy: boolean;
}

export interface CollectedChanges {
  /** Encoded records (SESSION_RECORD_SIZE bytes each, views into one buffer). */
  records: Uint8Array[];
  /** Encoded keys of sessions removed or expired locally (SESSION_KEY_SIZE bytes each). */
  removed: Uint8Array[];
  /** Still queued after this call (maxRecords reached); the queues may hold superseded entries. */
  pendingUrgent: number;
  pendingLazy: number;
  pendingRemoved: number;
}

export interface InstallOutcome {
  installed: number;
  updated: number;
  /** Not newer than the version held. */
  stale: number;
  invalid: number;
  /** The table was full. */
  refused: number;
}

export interface SessionListQuery {
  offset?: number;
  /** Default 100, at most 10,000,000. */
  limit?: number;
  unit?: number;
  /** Either endpoint. */
  addr?: string;
  /** Either endpoint. */
  port?: number;
  /** 'tcp' | 'udp' | protocol number. */
  proto?: 'tcp' | 'udp' | number;
}

export type SessionTableStats = NativeSessionStats;

function checkNow(nowMs: unknown, call: string): asserts nowMs is number {
  checkInteger(nowMs, call, 'nowMs', 0, Number.MAX_SAFE_INTEGER);
}

function splitFixed(buf: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at + size <= buf.length; at += size) out.push(buf.subarray(at, at + size));
  return out;
}

function joinFixed(input: Uint8Array | readonly Uint8Array[], size: number, call: string, name: string): Uint8Array {
  if (input instanceof Uint8Array) {
    if (input.length % size !== 0) throw new RangeError(`${call}: ${name} must be a multiple of ${size} bytes, got ${input.length}`);
    return input;
  }
  if (!Array.isArray(input)) throw new TypeError(`${call}: ${name} must be a Uint8Array or an array of ${size}-byte Uint8Arrays`);
  const out = new Uint8Array(input.length * size);
  input.forEach((r: unknown, i: number) => {
    checkBytes(r, call, `${name}[${i}]`);
    if (r.length !== size) throw new RangeError(`${call}: ${name}[${i}] must have ${size} bytes, got ${r.length}`);
    out.set(r, i * size);
  });
  return out;
}

function addrBytes(addr: string, call: string): Uint8Array {
  if (isIpv4Text(addr)) {
    const v = parseIpv4(addr, `${call}: addr`);
    return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  if (isIpv6Text(addr)) return parseIpv6(addr, `${call}: addr`);
  throw new TypeError(`${call}: addr must be an IPv4 or IPv6 address string, got ${JSON.stringify(addr)}`);
}

function timeoutArray(t: Partial<SessionTimeouts> | undefined, call: string): Uint32Array {
  if (t !== undefined && (typeof t !== 'object' || t === null)) throw new TypeError(`${call}: timeouts must be an object of ms values`);
  const all = { ...DEFAULT_SESSION_TIMEOUTS, ...(t ?? {}) };
  for (const k of Object.keys(t ?? {})) {
    if (!(SESSION_TIMEOUT_KEYS as readonly string[]).includes(k)) throw new TypeError(`${call}: unknown timeout ${JSON.stringify(k)} (known: ${SESSION_TIMEOUT_KEYS.join(', ')})`);
  }
  return Uint32Array.from(
    SESSION_TIMEOUT_KEYS.map((k) => {
      checkInteger(all[k], call, `timeouts.${k}`, 0, 0xffffffff);
      return all[k];
    }),
  );
}

/**
 * The session table of one member. Synchronous, cheap calls; the native table takes its own mutex,
 * so a packet engine thread may share it. Keys are canonical (both directions find one session).
 */
export class SessionTable {
  readonly native: NativeSessionTable;
  #maxSessions: number;
  #mode: 'strict' | 'loose';
  #timeouts: SessionTimeouts;

  constructor(opts: SessionTableOptions = {}) {
    const call = 'new SessionTable';
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${call}: opts must be an object { maxSessions?, mode?, timeouts? }`);
    const max = opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
    checkInteger(max, call, 'opts.maxSessions', 0, 1e9);
    const mode = opts.mode ?? 'strict';
    if (mode !== 'strict' && mode !== 'loose') throw new TypeError(`${call}: opts.mode must be 'strict' or 'loose', got ${JSON.stringify(mode)}`);
    const t = timeoutArray(opts.timeouts, call);
    const b = opts.binding ?? loadBinding();
    const Ctor = b.SessionTable;
    if (!Ctor) throw new TypeError(`${call}: the binding has no SessionTable (rebuild the addon)`);
    this.native = callNative(call, () => new Ctor(max, mode === 'loose', t));
    this.#maxSessions = max;
    this.#mode = mode;
    this.#timeouts = { ...DEFAULT_SESSION_TIMEOUTS, ...(opts.timeouts ?? {}) };
  }

  get maxSessions(): number {
    return this.#maxSessions;
  }
  get mode(): 'strict' | 'loose' {
    return this.#mode;
  }
  get timeouts(): Readonly<SessionTimeouts> {
    return this.#timeouts;
  }

  /** Changes the bound, the mode or timeouts (sessions held are kept). */
  configure(opts: { maxSessions?: number; mode?: 'strict' | 'loose'; timeouts?: Partial<SessionTimeouts> }): void {
    const call = 'SessionTable.configure';
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${call}: opts must be an object`);
    const max = opts.maxSessions ?? this.#maxSessions;
    checkInteger(max, call, 'opts.maxSessions', 0, 1e9);
    const mode = opts.mode ?? this.#mode;
    if (mode !== 'strict' && mode !== 'loose') throw new TypeError(`${call}: opts.mode must be 'strict' or 'loose', got ${JSON.stringify(mode)}`);
    const merged = { ...this.#timeouts, ...(opts.timeouts ?? {}) };
    const t = timeoutArray(merged, call);
    callNative(call, () => this.native.configure(max, mode === 'loose', t));
    this.#maxSessions = max;
    this.#mode = mode;
    this.#timeouts = merged;
  }

  /**
   * Tracks one raw IP packet (from its IP header). `unit`: the work unit the filter computed; omitted,
   * the symmetric forwarded rule (src ^ dst) is used. `unitGainedMs`: when this member last became the
   * unit's owner (the engine passes it); a session not seen since then is marked stale on this packet.
   */
  trackPacket(ipPacket: Uint8Array, nowMs: number, unit?: number, unitGainedMs?: number): TrackOutcome {
    const call = 'SessionTable.trackPacket';
    checkBytes(ipPacket, call, 'ipPacket');
    checkNow(nowMs, call);
    if (unit !== undefined) checkInteger(unit, call, 'unit', 0, WORK_UNITS - 1);
    if (unitGainedMs !== undefined) checkNow(unitGainedMs, call);
    const r = callNative(call, () => this.native.trackPacket(ipPacket, nowMs, unit ?? 0xffff, unitGainedMs ?? 0));
    return {
      verdict: r.verdict === TrackVerdict.ACCEPT ? 'ACCEPT' : 'DROP',
      reason: TRACK_REASONS[r.reason] ?? 'none',
      created: r.created,
      state: r.session ? sessionStateName(r.proto, r.state) : 'NONE',
      unit: r.unit,
    };
  }

  /** Tracks a batch (packet i = packets[offsets[i], offsets[i + 1])); verdicts TrackVerdict, reasons TRACK_REASONS indexes. */
  trackBatch(packets: Uint8Array, offsets: Uint32Array, nowMs: number, units?: Uint16Array): { verdicts: Uint8Array; reasons: Uint8Array } {
    const call = 'SessionTable.trackBatch';
    checkBytes(packets, call, 'packets');
    if (!(offsets instanceof Uint32Array)) throw new TypeError(`${call}: offsets must be a Uint32Array of n + 1 byte offsets`);
    checkNow(nowMs, call);
    if (units !== undefined && !(units instanceof Uint16Array)) throw new TypeError(`${call}: units must be a Uint16Array (one per packet)`);
    return callNative(call, () => this.native.trackBatch(packets, offsets, nowMs, units ?? null));
  }

  /**
   * Records of sessions changed since they were last collected (each at its latest version) and keys
   * of sessions removed locally. `lazy: false` takes urgent changes only (README "Coalescing rule").
   */
  collectChanges(maxRecords: number, nowMs: number, opts: CollectOptions): CollectedChanges {
    const call = 'SessionTable.collectChanges';
    checkInteger(maxRecords, call, 'maxRecords', 0, 1e9);
    checkNow(nowMs, call);
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${call}: opts must be an object { lazy: boolean }`);
    checkBoolean(opts.lazy, call, 'opts.lazy');
    const c = callNative(call, () => this.native.collectChanges(maxRecords, nowMs, opts.lazy));
    return {
      records: splitFixed(c.records, SESSION_RECORD_SIZE),
      removed: splitFixed(c.removed, SESSION_KEY_SIZE),
      pendingUrgent: c.pendingUrgent,
      pendingLazy: c.pendingLazy,
      pendingRemoved: c.pendingRemoved,
    };
  }

  /** Installs replicated records (keeping the highest version); installed sessions are replicas. */
  install(records: Uint8Array | readonly Uint8Array[], nowMs: number): InstallOutcome {
    const call = 'SessionTable.install';
    const joined = joinFixed(records, SESSION_RECORD_SIZE, call, 'records');
    checkNow(nowMs, call);
    return callNative(call, () => this.native.install(joined, nowMs));
  }

  /** Removes sessions by encoded key (replicated removals); returns how many existed. */
  remove(keys: Uint8Array | readonly Uint8Array[]): number {
    const call = 'SessionTable.remove';
    const joined = joinFixed(keys, SESSION_KEY_SIZE, call, 'keys');
    return callNative(call, () => this.native.remove(joined));
  }

  /** Removes timed-out sessions; local ones that were replicated are reported by collectChanges. */
  expire(nowMs: number): number {
    checkNow(nowMs, 'SessionTable.expire');
    return callNative('SessionTable.expire', () => this.native.expire(nowMs));
  }

  /** Encoded records of the sessions of some units (a list of units, or a 128-byte bitmap). */
  sessionsForUnits(units: readonly number[] | Uint16Array | Uint8Array): Uint8Array[] {
    const call = 'SessionTable.sessionsForUnits';
    let bitmap: Uint8Array;
    if (units instanceof Uint8Array) {
      if (units.length !== WORK_UNITS / 8) throw new RangeError(`${call}: a unit bitmap has 128 bytes, got ${units.length}`);
      bitmap = units;
    } else if (Array.isArray(units) || units instanceof Uint16Array) {
      bitmap = new Uint8Array(WORK_UNITS / 8);
      Array.prototype.forEach.call(units, (u: unknown, i: number) => {
        checkInteger(u, call, `units[${i}]`, 0, WORK_UNITS - 1);
        bitmap[u >> 3]! |= 1 << (u & 7);
      });
    } else {
      throw new TypeError(`${call}: units must be an array/Uint16Array of units 0..1023 or a 128-byte Uint8Array bitmap`);
    }
    return splitFixed(callNative(call, () => this.native.sessionsForUnits(bitmap)), SESSION_RECORD_SIZE);
  }

  /** Sessions for the admin API: decoded records and the number of matches. */
  list(q: SessionListQuery = {}): { total: number; sessions: SessionRecord[] } {
    const call = 'SessionTable.list';
    if (typeof q !== 'object' || q === null) throw new TypeError(`${call}: query must be an object { offset?, limit?, unit?, addr?, port?, proto? }`);
    const offset = q.offset ?? 0;
    const limit = q.limit ?? 100;
    checkInteger(offset, call, 'query.offset', 0, 1e12);
    checkInteger(limit, call, 'query.limit', 0, 1e7);
    if (q.unit !== undefined) checkInteger(q.unit, call, 'query.unit', 0, WORK_UNITS - 1);
    if (q.port !== undefined) checkInteger(q.port, call, 'query.port', 0, 65535);
    let proto = -1;
    if (q.proto === 'tcp') proto = 6;
    else if (q.proto === 'udp') proto = 17;
    else if (q.proto !== undefined) {
      checkInteger(q.proto, call, 'query.proto', 0, 255);
      proto = q.proto;
    }
    let addr: Uint8Array = new Uint8Array(0);
    if (q.addr !== undefined) {
      if (typeof q.addr !== 'string') throw new TypeError(`${call}: query.addr must be an address string`);
      addr = addrBytes(q.addr, call);
    }
    const r = callNative(call, () => this.native.list(offset, limit, q.unit ?? -1, proto, q.port ?? -1, addr));
    return { total: r.total, sessions: splitFixed(r.records, SESSION_RECORD_SIZE).map(decodeSessionRecord) };
  }

  stats(): SessionTableStats {
    return callNative('SessionTable.stats', () => this.native.stats());
  }

  get size(): number {
    return callNative('SessionTable.size', () => this.native.size());
  }
}
