/**
 * The session table on disk (docs/state-sync.md, "Restart of every member"): replication keeps sessions
 * alive while one member dies, but a restart of every daemon at once (a careless upgrade) would lose
 * them all, since they live in the daemons' memory. So each member saves its whole table (own sessions
 * and replicas, Figure 7 records) to `dataplane.sessions.stateFile` at shutdown and periodically, and
 * installs it at start as replicas: whichever member owns a unit after the restart carries its sessions
 * on, exactly as a survivor does after a crash.
 *
 * File format 1, little-endian: a 64-byte header then `count` records of SESSION_RECORD_SIZE bytes.
 *   0-3 magic "GWSS", 4 format (1), 5 reserved, 6-7 record size, 8-11 count, 12-19 saved at (ms since
 *   the epoch, float64), 20-51 SHA-256 of the records, 52-63 zero.
 * Written to a temporary file and renamed, so a crash mid-save leaves the previous snapshot whole.
 * Reading never throws: a missing, short, corrupt, foreign or too old file restores nothing and says why.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { SESSION_RECORD_SIZE } from '@gwcluster/native-addon';

export const SESSION_FILE_MAGIC = 'GWSS';
export const SESSION_FILE_FORMAT = 1;
export const SESSION_FILE_HEADER = 64;
/**
 * A snapshot older than this is not restored: its connections' endpoints have long given up (TCP
 * retransmission gives up after about 15 minutes; clients reconnect well before), and restoring them
 * would only fill the table with replicas that idle out after `established` (2 h).
 */
export const SESSION_FILE_MAX_AGE_MS = 600_000;

/** Encodes records (each SESSION_RECORD_SIZE bytes) into the file's bytes. */
export function encodeSessionFile(records: readonly Uint8Array[], savedAtMs: number): Buffer {
  const out = Buffer.alloc(SESSION_FILE_HEADER + records.length * SESSION_RECORD_SIZE);
  out.write(SESSION_FILE_MAGIC, 0, 'ascii');
  out.writeUInt8(SESSION_FILE_FORMAT, 4);
  out.writeUInt16LE(SESSION_RECORD_SIZE, 6);
  out.writeUInt32LE(records.length, 8);
  out.writeDoubleLE(savedAtMs, 12);
  let at = SESSION_FILE_HEADER;
  for (const r of records) {
    if (r.length !== SESSION_RECORD_SIZE) throw new RangeError(`session record of ${r.length} bytes, expected ${SESSION_RECORD_SIZE}`);
    out.set(r, at);
    at += SESSION_RECORD_SIZE;
  }
  createHash('sha256').update(out.subarray(SESSION_FILE_HEADER)).digest().copy(out, 20);
  return out;
}

export type DecodedSessionFile = { readonly ok: true; readonly records: Uint8Array; readonly count: number; readonly savedAtMs: number } | { readonly ok: false; readonly reason: string };

/** Checks and decodes a snapshot; `records` is the records' bytes back to back. Never throws. */
export function decodeSessionFile(bytes: Uint8Array, nowMs: number, maxAgeMs = SESSION_FILE_MAX_AGE_MS): DecodedSessionFile {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < SESSION_FILE_HEADER) return { ok: false, reason: `${b.length} bytes, shorter than the ${SESSION_FILE_HEADER}-byte header` };
  if (b.toString('ascii', 0, 4) !== SESSION_FILE_MAGIC) return { ok: false, reason: 'not a session snapshot (bad magic)' };
  const format = b.readUInt8(4);
  if (format !== SESSION_FILE_FORMAT) return { ok: false, reason: `snapshot format ${format}, this version reads ${SESSION_FILE_FORMAT}` };
  const size = b.readUInt16LE(6);
  if (size !== SESSION_RECORD_SIZE) return { ok: false, reason: `records of ${size} bytes, this version's are ${SESSION_RECORD_SIZE}` };
  const count = b.readUInt32LE(8);
  if (b.length !== SESSION_FILE_HEADER + count * size) return { ok: false, reason: `${b.length} bytes for ${count} records: truncated or padded` };
  const savedAtMs = b.readDoubleLE(12);
  if (!Number.isFinite(savedAtMs)) return { ok: false, reason: 'bad save time' };
  const age = nowMs - savedAtMs;
  if (age > maxAgeMs) return { ok: false, reason: `saved ${Math.round(age / 1000)} s ago, older than ${maxAgeMs / 1000} s` };
  const records = b.subarray(SESSION_FILE_HEADER);
  if (!createHash('sha256').update(records).digest().equals(b.subarray(20, 52))) return { ok: false, reason: 'checksum mismatch (corrupt)' };
  return { ok: true, records: new Uint8Array(records), count, savedAtMs };
}

/** Reads a snapshot file. A missing file is `{ ok: false, reason: 'none' }`. Never throws. */
export function readSessionFile(file: string, nowMs: number, maxAgeMs = SESSION_FILE_MAX_AGE_MS): DecodedSessionFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'none' : `cannot read: ${code ?? (e as Error).message}` };
  }
  return decodeSessionFile(bytes, nowMs, maxAgeMs);
}

/** Writes a snapshot atomically (temporary file, then rename), synchronously: for shutdown. */
export function writeSessionFileSync(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, bytes, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Writes a snapshot atomically without blocking the event loop: for the periodic save. */
export async function writeSessionFile(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, bytes, { mode: 0o600 });
  await rename(tmp, file);
}
