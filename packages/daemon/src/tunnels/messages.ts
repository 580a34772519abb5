// The four WireGuard messages on the wire (whitepaper 5.4): parsing with exact sizes, and the byte offsets
// MAC1 and MAC2 cover. All integers are little-endian. Parsing never throws: a malformed datagram is a
// value with a reason, which the caller counts.
import {
  COOKIE_REPLY_SIZE, INITIATION_SIZE, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT, RESPONSE_SIZE, TRANSPORT_MIN_SIZE,
} from './constants.js';

export interface InitiationMessage {
  type: 'initiation';
  sender: number;
  ephemeral: Uint8Array; // 32
  encryptedStatic: Uint8Array; // 32 + 16
  encryptedTimestamp: Uint8Array; // 12 + 16
  mac1: Uint8Array;
  mac2: Uint8Array;
  /** The whole message (MAC1 covers bytes [0, size - 32), MAC2 bytes [0, size - 16)). */
  bytes: Uint8Array;
}

export interface ResponseMessage {
  type: 'response';
  sender: number;
  receiver: number;
  ephemeral: Uint8Array;
  encryptedNothing: Uint8Array; // 16
  mac1: Uint8Array;
  mac2: Uint8Array;
  bytes: Uint8Array;
}

export interface CookieReplyMessage {
  type: 'cookie-reply';
  receiver: number;
  nonce: Uint8Array; // 24
  encryptedCookie: Uint8Array; // 16 + 16
}

export interface TransportMessage {
  type: 'transport';
  receiver: number;
  counter: bigint;
  /** The encrypted packet with its tag. */
  sealed: Uint8Array;
}

export type WireGuardMessage = InitiationMessage | ResponseMessage | CookieReplyMessage | TransportMessage;

/** Why a datagram is not a WireGuard message. */
export type MalformedReason = 'unknown-type' | 'bad-size';

export type ParseResult = { ok: true; message: WireGuardMessage } | { ok: false; reason: MalformedReason };

const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);

/** The message type: first byte, then three reserved zero bytes. */
export function messageType(datagram: Uint8Array): number {
  if (datagram.length < 4 || datagram[1] !== 0 || datagram[2] !== 0 || datagram[3] !== 0) return 0;
  return datagram[0]!;
}

export function parseMessage(b: Uint8Array): ParseResult {
  const type = messageType(b);
  switch (type) {
    case MESSAGE_INITIATION:
      if (b.length !== INITIATION_SIZE) return { ok: false, reason: 'bad-size' };
      return { ok: true, message: {
        type: 'initiation', sender: u32(b, 4), ephemeral: b.subarray(8, 40), encryptedStatic: b.subarray(40, 88),
        encryptedTimestamp: b.subarray(88, 116), mac1: b.subarray(116, 132), mac2: b.subarray(132, 148), bytes: b,
      } };
    case MESSAGE_RESPONSE:
      if (b.length !== RESPONSE_SIZE) return { ok: false, reason: 'bad-size' };
      return { ok: true, message: {
        type: 'response', sender: u32(b, 4), receiver: u32(b, 8), ephemeral: b.subarray(12, 44),
        encryptedNothing: b.subarray(44, 60), mac1: b.subarray(60, 76), mac2: b.subarray(76, 92), bytes: b,
      } };
    case MESSAGE_COOKIE_REPLY:
      if (b.length !== COOKIE_REPLY_SIZE) return { ok: false, reason: 'bad-size' };
      return { ok: true, message: { type: 'cookie-reply', receiver: u32(b, 4), nonce: b.subarray(8, 32), encryptedCookie: b.subarray(32, 64) } };
    case MESSAGE_TRANSPORT:
      if (b.length < TRANSPORT_MIN_SIZE) return { ok: false, reason: 'bad-size' };
      return { ok: true, message: {
        type: 'transport', receiver: u32(b, 4),
        counter: new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(8, true), sealed: b.subarray(16),
      } };
    default:
      return { ok: false, reason: 'unknown-type' };
  }
}

/** A message header: type byte, three zero bytes, then the given 32-bit little-endian fields. */
export function header(type: number, ...indices: number[]): Buffer {
  const h = Buffer.alloc(4 + 4 * indices.length);
  h[0] = type;
  indices.forEach((v, i) => h.writeUInt32LE(v >>> 0, 4 + 4 * i));
  return h;
}

export function encodeCookieReply(receiver: number, nonce: Uint8Array, encryptedCookie: Uint8Array): Buffer {
  return Buffer.concat([header(MESSAGE_COOKIE_REPLY, receiver), nonce, encryptedCookie]);
}
