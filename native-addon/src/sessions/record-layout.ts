// The replicated session record and flow key (README "Session records"): the one TypeScript statement
// of the layout session.cc encodes (encodeRecord/encodeKey). Everything outside the addon reads
// and writes records through this module, never by byte offsets of its own; test/sessions/
// record-layout.test.ts round-trips records through the native table to hold the two together.
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../common/addresses.js';
import { checkBytes, checkInteger } from '../common/errors.js';

/** Bytes of one encoded session record (format 1); session.h kRecordSize. */
export const SESSION_RECORD_SIZE = 112;
/** Bytes of one encoded flow key (a removal); session.h kKeySize. */
export const SESSION_KEY_SIZE = 40;
export const SESSION_RECORD_FORMAT = 1;

/** TCP states (session.h TcpState). UDP/other sessions use 0 UNREPLIED / 1 REPLIED. */
export const TcpState = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSING: 5,
  TIME_WAIT: 6,
  CLOSED: 7,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];
export const TCP_STATE_NAMES = ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSING', 'TIME_WAIT', 'CLOSED'] as const;
export const DATAGRAM_STATE_NAMES = ['UNREPLIED', 'REPLIED'] as const;
export type SessionStateName = (typeof TCP_STATE_NAMES)[number] | (typeof DATAGRAM_STATE_NAMES)[number];

/** One fixed field: byte offset and width. Integers are little-endian; addresses network order. */
export interface RecordField {
  readonly offset: number;
  readonly size: 1 | 2 | 4 | 8 | 16;
}

/**
 * The record's fields (README "Session records" gives their Figure 7 meaning). Fields from
 * mssOriginator on are TCP only; UDP/other records leave bytes 56..111 zero. An IPv4 address fills the
 * first 4 bytes of its 16, the rest zero.
 */
export const SESSION_RECORD_FIELDS = {
  format: { offset: 0, size: 1 },
  family: { offset: 1, size: 1 },
  proto: { offset: 2, size: 1 },
  state: { offset: 3, size: 1 },
  unit: { offset: 4, size: 2 },
  /** TCP only: the Figure 7 flags, bits as TCP_RECORD_FLAGS. */
  tcpFlags: { offset: 6, size: 1 },
  /** Bit 0: picked up mid-stream (loose mode). */
  recordFlags: { offset: 7, size: 1 },
  version: { offset: 8, size: 4 },
  lastSeenMs: { offset: 12, size: 8 },
  originatorAddr: { offset: 20, size: 16 },
  responderAddr: { offset: 36, size: 16 },
  originatorPort: { offset: 52, size: 2 },
  responderPort: { offset: 54, size: 2 },
  mssOriginator: { offset: 56, size: 2 },
  mssResponder: { offset: 58, size: 2 },
  sndNxt: { offset: 60, size: 4 },
  sndWl1: { offset: 64, size: 4 },
  sndWl2: { offset: 68, size: 4 },
  sndWnd: { offset: 72, size: 4 },
  rcvNxt: { offset: 76, size: 4 },
  rcvAdv: { offset: 80, size: 4 },
  sndScale: { offset: 84, size: 1 },
  rcvScale: { offset: 85, size: 1 },
  dirFlagsOriginator: { offset: 86, size: 1 },
  dirFlagsResponder: { offset: 87, size: 1 },
  tsRecent: { offset: 88, size: 4 },
  tsOriginator: { offset: 92, size: 4 },
  rcvWnd: { offset: 96, size: 4 },
  rcvAck: { offset: 100, size: 4 },
  maxWinOriginator: { offset: 104, size: 4 },
  maxWinResponder: { offset: 108, size: 4 },
} as const satisfies Record<string, RecordField>;

/**
 * The canonical flow key (both directions of a flow give the same key): the endpoint with the lower
 * address (then the lower port) is "lo". Bytes 6..7 are zero.
 */
export const SESSION_KEY_FIELDS = {
  family: { offset: 0, size: 1 },
  proto: { offset: 1, size: 1 },
  portLo: { offset: 2, size: 2 },
  portHi: { offset: 4, size: 2 },
  addrLo: { offset: 8, size: 16 },
  addrHi: { offset: 24, size: 16 },
} as const satisfies Record<string, RecordField>;

/** Bits of the tcpFlags byte (Figure 7, BSD t_flags names). */
export const TCP_RECORD_FLAGS = {
  /** TF_NODELAY: always 0 (a socket option a middlebox never sees). */
  noDelay: 0x01,
  /** TF_NOOPT: neither SYN carried MSS/WS/SACK/TS. */
  noOptions: 0x02,
  reqScale: 0x04,
  rcvdScale: 0x08,
  reqTstmp: 0x10,
  rcvdTstmp: 0x20,
  sackPermit: 0x40,
} as const;
export type TcpRecordFlags = { [K in keyof typeof TCP_RECORD_FLAGS]: boolean };

/** The TCP-only numeric fields, each stored in the SESSION_RECORD_FIELDS entry of the same name. */
export const TCP_RECORD_NUMBERS = [
  'mssOriginator',
  'mssResponder',
  'sndNxt',
  'sndWl1',
  'sndWl2',
  'sndWnd',
  'rcvNxt',
  'rcvAdv',
  'sndScale',
  'rcvScale',
  'dirFlagsOriginator',
  'dirFlagsResponder',
  'tsRecent',
  'tsOriginator',
  'rcvWnd',
  'rcvAck',
  'maxWinOriginator',
  'maxWinResponder',
] as const satisfies readonly (keyof typeof SESSION_RECORD_FIELDS)[];
export type TcpRecordNumber = (typeof TCP_RECORD_NUMBERS)[number];

/** A decoded session record (README "Session records"): addresses as strings. */
export interface SessionRecord {
  format: number;
  family: 4 | 6;
  proto: number;
  state: SessionStateName;
  stateCode: number;
  /** 0..1023, or 65535 when unknown. */
  unit: number;
  version: number;
  /** The encoder's clock. */
  lastSeenMs: number;
  /** Picked up mid-stream in loose mode (the originator is a guess). */
  pickedUp: boolean;
  originator: { addr: string; port: number };
  responder: { addr: string; port: number };
  /** TCP only (undefined for UDP/other). Figure 7 names; send = originator -> responder. */
  tcp?: { flags: TcpRecordFlags } & { [K in TcpRecordNumber]: number };
}

/** The state name of a state code: TCP_STATE_NAMES for TCP, DATAGRAM_STATE_NAMES otherwise. */
export function sessionStateName(proto: number, code: number): SessionStateName {
  if (proto === 6) return TCP_STATE_NAMES[code] ?? 'NONE';
  return DATAGRAM_STATE_NAMES[code] ?? 'UNREPLIED';
}

const F = SESSION_RECORD_FIELDS;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
}

function readField(dv: DataView, f: RecordField): number {
  switch (f.size) {
    case 1:
      return dv.getUint8(f.offset);
    case 2:
      return dv.getUint16(f.offset, true);
    case 4:
      return dv.getUint32(f.offset, true);
    case 8:
      return Number(dv.getBigUint64(f.offset, true));
    default:
      throw new RangeError(`a ${f.size}-byte field is not a number`);
  }
}

function writeField(dv: DataView, f: RecordField, v: number): void {
  switch (f.size) {
    case 1:
      return dv.setUint8(f.offset, v);
    case 2:
      return dv.setUint16(f.offset, v, true);
    case 4:
      return dv.setUint32(f.offset, v, true);
    case 8:
      return dv.setBigUint64(f.offset, BigInt(v), true);
    default:
      throw new RangeError(`a ${f.size}-byte field is not a number`);
  }
}

function maxOf(f: RecordField): number {
  return f.size === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * f.size) - 1;
}

/** Decodes one record. Throws RangeError when it is not a format-1 record. */
export function decodeSessionRecord(bytes: Uint8Array): SessionRecord {
  const call = 'decodeSessionRecord';
  checkBytes(bytes, call, 'bytes');
  if (bytes.length < SESSION_RECORD_SIZE) throw new RangeError(`${call}: a record has ${SESSION_RECORD_SIZE} bytes, got ${bytes.length}`);
  const dv = view(bytes);
  const format = readField(dv, F.format);
  const family = readField(dv, F.family);
  if (format !== SESSION_RECORD_FORMAT) throw new RangeError(`${call}: unknown record format ${format}`);
  if (family !== 4 && family !== 6) throw new RangeError(`${call}: family must be 4 or 6, got ${family}`);
  const proto = readField(dv, F.proto);
  const stateCode = readField(dv, F.state);
  const addr = (f: RecordField) => (family === 4 ? formatIpv4(dv.getUint32(f.offset, false)) : formatIpv6(bytes, f.offset));
  const rec: SessionRecord = {
    format,
    family,
    proto,
    stateCode,
    state: sessionStateName(proto, stateCode),
    unit: readField(dv, F.unit),
    pickedUp: (readField(dv, F.recordFlags) & 1) !== 0,
    version: readField(dv, F.version),
    lastSeenMs: readField(dv, F.lastSeenMs),
    originator: { addr: addr(F.originatorAddr), port: readField(dv, F.originatorPort) },
    responder: { addr: addr(F.responderAddr), port: readField(dv, F.responderPort) },
  };
  if (proto === 6) {
    const bits = readField(dv, F.tcpFlags);
    const flags = Object.fromEntries(Object.entries(TCP_RECORD_FLAGS).map(([k, bit]) => [k, (bits & bit) !== 0])) as TcpRecordFlags;
    const numbers = Object.fromEntries(TCP_RECORD_NUMBERS.map((k) => [k, readField(dv, F[k])])) as { [K in TcpRecordNumber]: number };
    rec.tcp = { flags, ...numbers };
  }
  return rec;
}

/**
 * Encodes a record (the inverse of decodeSessionRecord): `stateCode` is written, `state` (its name)
 * is not read; `tcp` is written only for proto 6 and must be present then. Throws TypeError naming
 * the field that is out of range.
 */
export function encodeSessionRecord(record: SessionRecord): Uint8Array {
  const call = 'encodeSessionRecord';
  if (typeof record !== 'object' || record === null) throw new TypeError(`${call}: record must be a SessionRecord object`);
  if (record.format !== SESSION_RECORD_FORMAT) throw new RangeError(`${call}: unknown record format ${String(record.format)}`);
  if (record.family !== 4 && record.family !== 6) throw new TypeError(`${call}: record.family must be 4 or 6, got ${String(record.family)}`);
  const out = new Uint8Array(SESSION_RECORD_SIZE);
  const dv = view(out);
  const put = (f: RecordField, v: unknown, name: string): void => {
    checkInteger(v, call, name, 0, maxOf(f));
    writeField(dv, f, v);
  };
  const putAddr = (f: RecordField, text: unknown, name: string): void => {
    if (typeof text !== 'string') throw new TypeError(`${call}: ${name} must be an IPv${record.family} address string`);
    if (record.family === 4) dv.setUint32(f.offset, parseIpv4(text, `${call}: ${name}`), false);
    else out.set(parseIpv6(text, `${call}: ${name}`), f.offset);
  };
  put(F.format, record.format, 'record.format');
  put(F.family, record.family, 'record.family');
  put(F.proto, record.proto, 'record.proto');
  put(F.state, record.stateCode, 'record.stateCode');
  put(F.unit, record.unit, 'record.unit');
  put(F.recordFlags, record.pickedUp ? 1 : 0, 'record.pickedUp');
  put(F.version, record.version, 'record.version');
  put(F.lastSeenMs, record.lastSeenMs, 'record.lastSeenMs');
  putAddr(F.originatorAddr, record.originator?.addr, 'record.originator.addr');
  putAddr(F.responderAddr, record.responder?.addr, 'record.responder.addr');
  put(F.originatorPort, record.originator?.port, 'record.originator.port');
  put(F.responderPort, record.responder?.port, 'record.responder.port');
  if (record.proto === 6) {
    const tcp = record.tcp;
    if (typeof tcp !== 'object' || tcp === null) throw new TypeError(`${call}: record.tcp is required for a TCP record (proto 6)`);
    let bits = 0;
    for (const [k, bit] of Object.entries(TCP_RECORD_FLAGS)) if (tcp.flags?.[k as keyof TcpRecordFlags]) bits |= bit;
    put(F.tcpFlags, bits, 'record.tcp.flags');
    for (const k of TCP_RECORD_NUMBERS) put(F[k], tcp[k], `record.tcp.${k}`);
  }
  return out;
}

/** The record's version (the per-session change counter; install keeps the highest). */
export function sessionRecordVersion(record: Uint8Array): number {
  return view(record).getUint32(F.version.offset, true);
}

/** The canonical flow key of a record (SESSION_KEY_SIZE bytes): what removals carry and replication keys on. */
export function sessionRecordKey(record: Uint8Array): Uint8Array {
  const K = SESSION_KEY_FIELDS;
  const dv = view(record);
  const a = record.subarray(F.originatorAddr.offset, F.originatorAddr.offset + 16);
  const b = record.subarray(F.responderAddr.offset, F.responderAddr.offset + 16);
  const pa = dv.getUint16(F.originatorPort.offset, true);
  const pb = dv.getUint16(F.responderPort.offset, true);
  const c = Buffer.compare(a, b);
  const aIsLo = c < 0 || (c === 0 && pa <= pb);
  const key = new Uint8Array(SESSION_KEY_SIZE);
  const kv = view(key);
  key[K.family.offset] = record[F.family.offset]!;
  key[K.proto.offset] = record[F.proto.offset]!;
  kv.setUint16(K.portLo.offset, aIsLo ? pa : pb, true);
  kv.setUint16(K.portHi.offset, aIsLo ? pb : pa, true);
  key.set(aIsLo ? a : b, K.addrLo.offset);
  key.set(aIsLo ? b : a, K.addrHi.offset);
  return key;
}
