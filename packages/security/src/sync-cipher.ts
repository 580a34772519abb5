/**
 * Confidentiality of state sync (docs/security.md, "State sync encryption"): session records, and later
 * tunnel keys, travel between members inside AEAD frames whose keys the members' cluster certificates
 * authenticate. Nothing cryptographic is written here by hand: ECDH, HKDF-SHA256 and
 * ChaCha20-Poly1305 are node:crypto's (OpenSSL).
 *
 * Keys. Each member's certificate holds a P-256 key (the cluster CA issued it; a peer's certificate is
 * the one the member's MessageOpener verified). A pair of members shares Z = ECDH(own private key,
 * peer's certificate public key) (static-static, the same Z on both sides). The key of the direction
 * sender -> receiver is
 *     HKDF-SHA256(ikm = Z, salt = the sender's boot salt, info = SYNC_CIPHER_INFO || cluster || 0 ||
 *                 sender || 0 || receiver), 32 bytes
 * where the boot salt is 16 random bytes drawn when the sender's SyncCipher is made (once per process):
 * a new boot has a new key towards every peer, so its counter may start at 1 again. The info binds the
 * protocol version, the cluster and the direction, so a frame from A to B never opens as B to A or in
 * another cluster.
 *
 * Frame (big-endian), FRAME_HEADER_BYTES of header, then ciphertext || 16-byte tag:
 *     0 frame version (1) | 1-4 sender IPv4 | 5-12 sender incarnation | 13-28 boot salt | 29-36 counter
 * The nonce is 4 zero bytes || counter (96 bits); the counter is per sender process, starts at 1 and is
 * never reused under one key (one salt per process). Associated data: the header, then the caller's
 * `associated` bytes (state sync binds the message's seq and snapshot flag that travel outside).
 *
 * Receiver. Per sender: the boot (incarnation, salt) in force and an anti-replay window over the counter
 * (RFC 4303, ReplayWindow). A frame of an older incarnation, or of the same incarnation with another salt,
 * is refused as a replay; a newer incarnation (the sender restarted) replaces the boot, but only once its
 * frame decrypted, so a forged header never moves the state. Incarnations are the sender's boot time
 * (as in the signed envelopes), so a replayed frame from a previous boot stays refused.
 *
 * Synchronous, no I/O, no clock: one instance per member process.
 */
import { createCipheriv, createDecipheriv, diffieHellman, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { isMemberId, type MemberId } from '@gwcluster/wire';
import { SecurityConfigError } from './errors.js';
import { ReplayWindow } from './replay.js';

/** HKDF info prefix: names the protocol and its version (a new frame version means a new prefix). */
export const SYNC_CIPHER_INFO = 'gwcluster state-sync v1';
export const SYNC_FRAME_VERSION = 1;
export const SYNC_SALT_BYTES = 16;
export const SYNC_TAG_BYTES = 16;
export const FRAME_HEADER_BYTES = 1 + 4 + 8 + SYNC_SALT_BYTES + 8;
const CIPHER = 'chacha20-poly1305';

export type SyncOpenFailureCode =
  /** Shorter than header + tag, or an unknown frame version, or a sender field that is not an IPv4 address. */
  | 'malformed'
  /** The frame names a sender other than the authenticated one it arrived from. */
  | 'wrong-sender'
  /** No verified certificate for the frame's sender: no key. */
  | 'unknown-sender'
  /** Older boot of the sender, another salt in the same boot, or a counter already seen or below the window. */
  | 'replay'
  /** The tag does not verify: altered, or sealed for another receiver, cluster or direction. */
  | 'decrypt';

export type SyncOpenResult = { readonly ok: true; readonly plaintext: Uint8Array } | { readonly ok: false; readonly code: SyncOpenFailureCode; readonly reason: string };

export interface SyncCipherCounters {
  sealed: number;
  opened: number;
  /** seal() found no certificate for the peer (nothing sent). */
  noPeerKey: number;
  malformed: number;
  wrongSender: number;
  unknownSender: number;
  replay: number;
  decrypt: number;
  /** A sender's new boot (incarnation) was adopted. */
  newBoot: number;
}

export interface SyncCipherOptions {
  readonly cluster: string;
  readonly self: MemberId;
  /** This process's incarnation (boot time, ms since the epoch; as MessageSealer's). */
  readonly incarnation: number;
  /** This member's private key (its certificate's). Re-read on every call; a new key (reload) re-derives every key. */
  readonly privateKey: () => KeyObject;
  /** A peer's certificate public key, as verified by the member (MessageOpener.certificateOf), or undefined. */
  readonly peerPublicKey: (peer: MemberId) => KeyObject | undefined;
  /** Anti-replay window per sender, in frames. Default 1024. */
  readonly replayWindow?: number;
  /** Boot salt; default 16 random bytes. Tests only. */
  readonly salt?: Uint8Array;
}

interface DerivedKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The salt the key was derived with (hex), for receive keys. */
  readonly salt: string;
  readonly key: Buffer;
}

interface PeerBoot {
  incarnation: number;
  salt: string;
  readonly window: ReplayWindow;
}

function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map((p) => Number(p)));
}

export class SyncCipher {
  readonly cluster: string;
  readonly self: MemberId;
  readonly incarnation: number;
  readonly counters: SyncCipherCounters = { sealed: 0, opened: 0, noPeerKey: 0, malformed: 0, wrongSender: 0, unknownSender: 0, replay: 0, decrypt: 0, newBoot: 0 };
  private readonly salt: Buffer;
  private counter = 0;
  private readonly sendKeys = new Map<MemberId, DerivedKey>();
  private readonly recvKeys = new Map<MemberId, DerivedKey>();
  private readonly boots = new Map<MemberId, PeerBoot>();
  private readonly windowSize: number;

  constructor(private readonly opts: SyncCipherOptions) {
    if (!isMemberId(opts.self)) throw new SecurityConfigError('bad-member-ip', `sync cipher: member IP "${opts.self}" is not a dotted-quad IPv4 address`);
    if (!Number.isSafeInteger(opts.incarnation) || opts.incarnation < 0) throw new SecurityConfigError('bad-option', `sync cipher: incarnation ${opts.incarnation} must be a non-negative integer`);
    this.cluster = opts.cluster;
    this.self = opts.self;
    this.incarnation = opts.incarnation;
    this.salt = Buffer.from(opts.salt ?? randomBytes(SYNC_SALT_BYTES));
    if (this.salt.length !== SYNC_SALT_BYTES) throw new SecurityConfigError('bad-option', `sync cipher: salt must be ${SYNC_SALT_BYTES} bytes`);
    this.windowSize = opts.replayWindow ?? 1024;
  }

  /** This process's boot salt (hex), for logs and tests. */
  get bootSalt(): string {
    return this.salt.toString('hex');
  }

  /** Drops what is known of a peer (it left): its keys and its boot's replay state. */
  forget(peer: MemberId): void {
    this.sendKeys.delete(peer);
    this.recvKeys.delete(peer);
    this.boots.delete(peer);
  }

  /**
   * The frame carrying `plaintext` to `to`, or null when this member holds no certificate of `to` yet
   * (counted as noPeerKey; the caller makes the peer send its certificate and retries later).
   */
  seal(to: MemberId, plaintext: Uint8Array, associated: Uint8Array = new Uint8Array(0)): Uint8Array | null {
    const key = this.keyFor(to, this.self, to, this.salt, this.sendKeys);
    if (!key) {
      this.counters.noPeerKey++;
      return null;
    }
    const counter = ++this.counter;
    if (!Number.isSafeInteger(counter)) throw new RangeError('sync cipher: counter exhausted (restart the member)');
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt8(SYNC_FRAME_VERSION, 0);
    ipv4Bytes(this.self).copy(header, 1);
    header.writeBigUInt64BE(BigInt(this.incarnation), 5);
    this.salt.copy(header, 13);
    header.writeBigUInt64BE(BigInt(counter), 29);
    const cipher = createCipheriv(CIPHER, key, nonceOf(counter), { authTagLength: SYNC_TAG_BYTES });
    cipher.setAAD(Buffer.concat([header, associated]), { plaintextLength: plaintext.length });
    const body = cipher.update(plaintext);
    cipher.final();
    this.counters.sealed++;
    return Buffer.concat([header, body, cipher.getAuthTag()]);
  }

  /**
   * Opens a frame that arrived from `from` (the member whose signed message carried it). Never throws;
   * the replay state changes only when the frame decrypted.
   */
  open(from: MemberId, frame: Uint8Array, associated: Uint8Array = new Uint8Array(0)): SyncOpenResult {
    const r = this.openUnchecked(from, frame, associated);
    if (r.ok) this.counters.opened++;
    else this.counters[r.code === 'wrong-sender' ? 'wrongSender' : r.code === 'unknown-sender' ? 'unknownSender' : r.code]++;
    return r;
  }

  private openUnchecked(from: MemberId, frame: Uint8Array, associated: Uint8Array): SyncOpenResult {
    const f = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    if (f.length < FRAME_HEADER_BYTES + SYNC_TAG_BYTES) return { ok: false, code: 'malformed', reason: `frame of ${f.length} bytes, shorter than header and tag (${FRAME_HEADER_BYTES + SYNC_TAG_BYTES})` };
    const version = f.readUInt8(0);
    if (version !== SYNC_FRAME_VERSION) return { ok: false, code: 'malformed', reason: `frame version ${version}, this member reads ${SYNC_FRAME_VERSION}` };
    const sender = `${f[1]}.${f[2]}.${f[3]}.${f[4]}`;
    if (sender !== from) return { ok: false, code: 'wrong-sender', reason: `frame names sender ${sender} but came from ${from}` };
    const incarnationBig = f.readBigUInt64BE(5);
    const counterBig = f.readBigUInt64BE(29);
    if (incarnationBig > BigInt(Number.MAX_SAFE_INTEGER) || counterBig > BigInt(Number.MAX_SAFE_INTEGER) || counterBig === 0n) {
      return { ok: false, code: 'malformed', reason: `frame from ${sender}: incarnation or counter out of range` };
    }
    const incarnation = Number(incarnationBig);
    const counter = Number(counterBig);
    const salt = f.subarray(13, 13 + SYNC_SALT_BYTES);
    const saltHex = salt.toString('hex');
    // Cheap checks before any key work: the replay state of the sender's boot.
    const boot = this.boots.get(sender);
    if (boot) {
      if (incarnation === boot.incarnation && saltHex !== boot.salt) return { ok: false, code: 'replay', reason: `frame from ${sender}: another salt in boot ${incarnation} (a sender has one)` };
      const fresh = boot.window.check(incarnation, counter);
      if (!fresh.ok) return { ok: false, code: 'replay', reason: `frame from ${sender}: ${fresh.reason}` };
    }
    const key = this.keyFor(sender, sender, this.self, salt, this.recvKeys);
    if (!key) return { ok: false, code: 'unknown-sender', reason: `no verified certificate of ${sender}` };
    const header = f.subarray(0, FRAME_HEADER_BYTES);
    const body = f.subarray(FRAME_HEADER_BYTES, f.length - SYNC_TAG_BYTES);
    const tag = f.subarray(f.length - SYNC_TAG_BYTES);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv(CIPHER, key, nonceOf(counter), { authTagLength: SYNC_TAG_BYTES });
      decipher.setAAD(Buffer.concat([header, associated]), { plaintextLength: body.length });
      decipher.setAuthTag(tag);
      plaintext = Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      return { ok: false, code: 'decrypt', reason: `frame from ${sender} (counter ${counter}) does not authenticate` };
    }
    if (!boot || incarnation > boot.incarnation) {
      if (boot) this.counters.newBoot++;
      const next: PeerBoot = { incarnation, salt: saltHex, window: new ReplayWindow(this.windowSize) };
      next.window.commit(incarnation, counter);
      this.boots.set(sender, next);
    } else {
      boot.window.commit(incarnation, counter);
    }
    return { ok: true, plaintext: new Uint8Array(plaintext) };
  }

  /** The key of direction sender -> receiver with `salt`, derived once per (private key, peer key, salt). */
  private keyFor(peer: MemberId, sender: MemberId, receiver: MemberId, salt: Buffer, cache: Map<MemberId, DerivedKey>): Buffer | null {
    const publicKey = this.opts.peerPublicKey(peer);
    if (!publicKey) return null;
    const privateKey = this.opts.privateKey();
    const saltHex = salt.toString('hex');
    const had = cache.get(peer);
    if (had && had.privateKey === privateKey && had.publicKey === publicKey && had.salt === saltHex) return had.key;
    let shared: Buffer;
    try {
      shared = diffieHellman({ privateKey, publicKey });
    } catch {
      return null;
    }
    const info = Buffer.from(`${SYNC_CIPHER_INFO}\0${this.cluster}\0${sender}\0${receiver}`, 'utf8');
    const key = Buffer.from(hkdfSync('sha256', shared, salt, info, 32));
    cache.set(peer, { privateKey, publicKey, salt: saltHex, key });
    return key;
  }
}

function nonceOf(counter: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(counter), 4);
  return n;
}
