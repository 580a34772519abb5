/**
 * StateSync records in and out of SyncCipher frames (docs/state-sync.md, "Encryption"). A StateSync that
 * carries records travels with them sealed for its receiver (StateSync.sealed, the records encoded as
 * SyncRecords); seq and snapshot_complete stay outside, bound to the frame as associated data. A
 * StateSync without records (a snapshot_complete marker) and StateAck carry nothing confidential and go
 * as they are. Received records in the clear are refused: a member never sends them.
 */
import type { SyncCipher, SyncOpenFailureCode } from '@gwcluster/security';
import { decodeSyncRecords, encodeSyncRecords, type MemberId, type StateSync } from '@gwcluster/wire';

/** The frame's associated data: the fields that travel outside it (seq, 8 bytes big-endian; snapshot flag). */
export function syncAssociatedData(m: StateSync): Uint8Array {
  const ad = Buffer.alloc(9);
  ad.writeBigUInt64BE(BigInt(m.seq), 0);
  ad.writeUInt8(m.snapshotComplete ? 1 : 0, 8);
  return ad;
}

/**
 * The message to send to `to`: with records sealed, or unchanged when it has none. null: no certificate
 * of `to` is known yet, nothing can be sealed for it (the caller gets the peer to send its certificate;
 * the replicator re-sends the records after its timeout).
 */
export function sealStateSync(cipher: SyncCipher, to: MemberId, m: StateSync): StateSync | null {
  if (m.records.length === 0) return m;
  const frame = cipher.seal(to, encodeSyncRecords(m.records), syncAssociatedData(m));
  if (!frame) return null;
  return { type: 'state-sync', seq: m.seq, records: [], snapshotComplete: m.snapshotComplete, sealed: frame };
}

export type OpenedStateSync = { readonly ok: true; readonly message: StateSync } | { readonly ok: false; readonly code: SyncOpenFailureCode | 'plaintext' | 'records'; readonly reason: string };

/** A received StateSync with its records opened (from `from`, whose signed message carried it). Never throws. */
export function openStateSync(cipher: SyncCipher, from: MemberId, m: StateSync): OpenedStateSync {
  if (!m.sealed) {
    if (m.records.length > 0) return { ok: false, code: 'plaintext', reason: `state sync from ${from} carries ${m.records.length} records in the clear (members seal them; an old release, or an attempt to inject)` };
    return { ok: true, message: m };
  }
  const opened = cipher.open(from, m.sealed, syncAssociatedData(m));
  if (!opened.ok) return opened;
  const records = decodeSyncRecords(opened.plaintext);
  if (!records.ok) return { ok: false, code: 'records', reason: `state sync from ${from}: sealed records do not decode: ${records.error.message}` };
  return { ok: true, message: { type: 'state-sync', seq: m.seq, records: records.value, snapshotComplete: m.snapshotComplete } };
}
