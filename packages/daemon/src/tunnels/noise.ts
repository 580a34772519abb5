// The handshake, Noise_IKpsk2 as the whitepaper (5.4.2, 5.4.3, 5.4.5) specifies it: pure functions from the
// previous handshake state and a message to the next state. Ephemeral keys, indices and timestamps come in
// as arguments (the caller draws them), so the same inputs always give the same bytes.
// MAC1/MAC2 are not filled in here (cookie.ts adds them; bytes 116..148 / 60..92 are zero).
import { CONSTRUCTION, IDENTIFIER, MESSAGE_INITIATION, MESSAGE_RESPONSE } from './constants.js';
import { header } from './messages.js';
import type { InitiationMessage, ResponseMessage } from './messages.js';
import { aeadOpen, aeadSeal, dh, hash, kdf, publicKeyOf } from './primitives.js';

const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array(32);
/** Ci = HASH(Construction); Hi = HASH(Ci || Identifier): the same for every handshake. */
const INITIAL_CHAINING_KEY = hash(Buffer.from(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAINING_KEY, Buffer.from(IDENTIFIER));

export interface StaticKeys {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export function staticKeys(privateKey: Uint8Array): StaticKeys {
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/** The symmetric session keys a handshake yields, seen from one side. */
export interface SessionKeys {
  sendKey: Buffer;
  receiveKey: Buffer;
}

/** The initiator's state between sending an initiation and consuming the response. */
export interface InitiatorState {
  chainingKey: Buffer;
  hash: Buffer;
  ephemeralPrivate: Uint8Array;
  senderIndex: number;
  peerPublicKey: Uint8Array;
}

/** The responder's state after consuming an initiation. */
export interface ConsumedInitiation {
  chainingKey: Buffer;
  hash: Buffer;
  peerPublicKey: Buffer;
  peerEphemeral: Uint8Array;
  peerIndex: number;
  /** TAI64N, 12 bytes: compared byte-wise against the greatest one accepted from this peer. */
  timestamp: Buffer;
}

/** TAI64N of a wall-clock time in milliseconds since the Unix epoch (whitepaper 5.4.2). */
export function tai64n(unixMs: number): Buffer {
  const t = Buffer.alloc(12);
  const seconds = Math.floor(unixMs / 1000);
  t.writeBigUInt64BE(2n ** 62n + BigInt(seconds), 0);
  t.writeUInt32BE(Math.floor(unixMs - seconds * 1000) * 1_000_000, 8);
  return t;
}

/** Builds a handshake initiation (148 bytes, MACs zero) to the peer whose static public key is given. */
export function createInitiation(local: StaticKeys, peerPublicKey: Uint8Array, ephemeralPrivate: Uint8Array,
  senderIndex: number, timestamp: Uint8Array): { message: Buffer; state: InitiatorState } | null {
  let h = hash(INITIAL_HASH, peerPublicKey);
  const ephemeral = publicKeyOf(ephemeralPrivate);
  let [ck] = kdf(1, INITIAL_CHAINING_KEY, ephemeral) as [Buffer];
  h = hash(h, ephemeral);
  const es = dh(ephemeralPrivate, peerPublicKey);
  if (!es) return null;
  let k: Buffer;
  [ck, k] = kdf(2, ck, es) as [Buffer, Buffer];
  const encryptedStatic = aeadSeal(k, 0n, local.publicKey, h);
  h = hash(h, encryptedStatic);
  const ss = dh(local.privateKey, peerPublicKey);
  if (!ss) return null;
  [ck, k] = kdf(2, ck, ss) as [Buffer, Buffer];
  const encryptedTimestamp = aeadSeal(k, 0n, timestamp, h);
  h = hash(h, encryptedTimestamp);
  const message = Buffer.concat([header(MESSAGE_INITIATION, senderIndex), ephemeral, encryptedStatic, encryptedTimestamp, Buffer.alloc(32)]);
  return { message, state: { chainingKey: ck, hash: h, ephemeralPrivate, senderIndex, peerPublicKey } };
}

/**
 * Consumes an initiation addressed to `local`. Returns null when it does not decrypt (not for us, or
 * tampered with). The caller then checks that the peer is known and the timestamp is new.
 */
export function consumeInitiation(local: StaticKeys, msg: InitiationMessage): ConsumedInitiation | null {
  let h = hash(INITIAL_HASH, local.publicKey);
  let [ck] = kdf(1, INITIAL_CHAINING_KEY, msg.ephemeral) as [Buffer];
  h = hash(h, msg.ephemeral);
  const es = dh(local.privateKey, msg.ephemeral);
  if (!es) return null;
  let k: Buffer;
  [ck, k] = kdf(2, ck, es) as [Buffer, Buffer];
  const peerPublicKey = aeadOpen(k, 0n, msg.encryptedStatic, h);
  if (!peerPublicKey) return null;
  h = hash(h, msg.encryptedStatic);
  const ss = dh(local.privateKey, peerPublicKey);
  if (!ss) return null;
  [ck, k] = kdf(2, ck, ss) as [Buffer, Buffer];
  const timestamp = aeadOpen(k, 0n, msg.encryptedTimestamp, h);
  if (!timestamp) return null;
  h = hash(h, msg.encryptedTimestamp);
  return { chainingKey: ck, hash: h, peerPublicKey, peerEphemeral: msg.ephemeral, peerIndex: msg.sender, timestamp };
}

/** Builds the response to a consumed initiation (92 bytes, MACs zero) and the responder's session keys. */
export function createResponse(consumed: ConsumedInitiation, presharedKey: Uint8Array | undefined,
  ephemeralPrivate: Uint8Array, senderIndex: number): { message: Buffer; keys: SessionKeys } | null {
  let { chainingKey: ck, hash: h } = consumed;
  const ephemeral = publicKeyOf(ephemeralPrivate);
  [ck] = kdf(1, ck, ephemeral) as [Buffer];
  h = hash(h, ephemeral);
  const ee = dh(ephemeralPrivate, consumed.peerEphemeral);
  const se = dh(ephemeralPrivate, consumed.peerPublicKey);
  if (!ee || !se) return null;
  [ck] = kdf(1, ck, ee) as [Buffer];
  [ck] = kdf(1, ck, se) as [Buffer];
  const [ck2, tau, k] = kdf(3, ck, presharedKey ?? ZERO_KEY) as [Buffer, Buffer, Buffer];
  h = hash(h, tau);
  const encryptedNothing = aeadSeal(k, 0n, EMPTY, h);
  const [initiatorToResponder, responderToInitiator] = kdf(2, ck2, EMPTY) as [Buffer, Buffer];
  const message = Buffer.concat([header(MESSAGE_RESPONSE, senderIndex, consumed.peerIndex), ephemeral, encryptedNothing, Buffer.alloc(32)]);
  return { message, keys: { sendKey: responderToInitiator, receiveKey: initiatorToResponder } };
}

/** Consumes the response to our initiation; null when it does not authenticate. */
export function consumeResponse(local: StaticKeys, state: InitiatorState, presharedKey: Uint8Array | undefined,
  msg: ResponseMessage): SessionKeys | null {
  let { chainingKey: ck, hash: h } = state;
  [ck] = kdf(1, ck, msg.ephemeral) as [Buffer];
  h = hash(h, msg.ephemeral);
  const ee = dh(state.ephemeralPrivate, msg.ephemeral);
  const se = dh(local.privateKey, msg.ephemeral);
  if (!ee || !se) return null;
  [ck] = kdf(1, ck, ee) as [Buffer];
  [ck] = kdf(1, ck, se) as [Buffer];
  const [ck2, tau, k] = kdf(3, ck, presharedKey ?? ZERO_KEY) as [Buffer, Buffer, Buffer];
  h = hash(h, tau);
  if (!aeadOpen(k, 0n, msg.encryptedNothing, h)) return null;
  const [initiatorToResponder, responderToInitiator] = kdf(2, ck2, EMPTY) as [Buffer, Buffer];
  return { sendKey: initiatorToResponder, receiveKey: responderToInitiator };
}
