/**
 * A simulated session table (the simulator's SessionStore): records in the addon's layout
 * (encodeSessionRecord), keyed by flow key, the highest version kept, as the native table installs them.
 * No packets: sessions are created by the scenario.
 */
import { decodeSessionRecord, encodeSessionRecord, sessionRecordKey, sessionRecordVersion } from '@gwcluster/native-addon';
import type { LocalRecord } from '@gwcluster/state-sync';
import type { MemberId, SessionRecord, WorkUnit } from '@gwcluster/wire';
import type { SessionStore } from '../sync/replication.js';

export interface SimSession {
  readonly key: string;
  readonly unit: WorkUnit;
  readonly version: number;
  readonly record: Uint8Array;
}

/** A flow key as hex, the store's key. */
export function keyHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

/**
 * A UDP session record of `unit` between TEST-NET addresses: client 192.0.2.(1 + n % 250) port
 * 10000 + n, server 203.0.113.1 port 53 (the unit is given, not hashed: the simulator has no packets).
 */
export function simSessionRecord(n: number, unit: WorkUnit, version: number, nowMs: number): Uint8Array {
  return encodeSessionRecord({
    format: 1,
    family: 4,
    proto: 17,
    state: 'REPLIED',
    stateCode: 1,
    unit,
    version,
    lastSeenMs: nowMs,
    pickedUp: false,
    originator: { addr: `192.0.2.${1 + (n % 250)}`, port: 10000 + n },
    responder: { addr: '203.0.113.1', port: 53 },
  });
}

export class SimSessionStore implements SessionStore {
  private readonly sessions = new Map<string, SimSession>();
  /** Records installed from other members, and installs refused as not newer. */
  readonly counters = { installed: 0, installStale: 0, removed: 0 };

  get size(): number {
    return this.sessions.size;
  }

  has(key: string): boolean {
    return this.sessions.has(key);
  }

  all(): SimSession[] {
    return [...this.sessions.values()];
  }

  /** A session created or changed on this member (its owner); returns it as the replicator takes it. */
  put(record: Uint8Array): LocalRecord {
    const key = sessionRecordKey(record);
    const version = sessionRecordVersion(record);
    this.sessions.set(keyHex(key), { key: keyHex(key), unit: decodeSessionRecord(record).unit, version, record });
    return { key, version, state: record, removed: false };
  }

  recordsOf(units: readonly WorkUnit[]): LocalRecord[] {
    const wanted = new Set(units);
    const out: LocalRecord[] = [];
    for (const s of this.sessions.values()) {
      if (!wanted.has(s.unit)) continue;
      const state = new Uint8Array(s.record);
      out.push({ key: sessionRecordKey(state), version: s.version, state, removed: false });
    }
    return out;
  }

  install(_from: MemberId, records: readonly SessionRecord[]): void {
    for (const r of records) {
      const id = keyHex(r.key);
      if (r.removed) {
        if (this.sessions.delete(id)) this.counters.removed++;
        continue;
      }
      const held = this.sessions.get(id);
      if (held && held.version >= r.version) {
        this.counters.installStale++;
        continue;
      }
      const record = new Uint8Array(r.state);
      this.sessions.set(id, { key: id, unit: decodeSessionRecord(record).unit, version: r.version, record });
      this.counters.installed++;
    }
  }
}
