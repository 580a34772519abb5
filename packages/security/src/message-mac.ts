/**
 * Pairwise message MACs (docs/security.md, "Pairwise message MACs"): the frequent member-to-member
 * unicasts (MAC_ELIGIBLE in envelope.ts) are authenticated with HMAC-SHA-256 under a key of their
 * direction instead of an ECDSA signature, which costs about a hundred times more to check. As the
 * state-sync and liveness keys (sync-cipher.ts, liveness-keys.ts), the keys come from the members'
 * certificates, with nothing written here by hand (ECDH, HKDF and HMAC are node:crypto's):
 *     Z = ECDH(own private key, peer's certificate public key)        (the same Z on both sides)
 *     key(sender -> receiver) = HKDF-SHA256(ikm = Z, salt = empty,
 *                                           info = MESSAGE_MAC_INFO || 0 || cluster || 0 || sender || 0 || receiver), 32 bytes
 * No salt: freshness is the envelope's (incarnation, seq) under the receiver's replay window, which the
 * MAC covers like a signature does. The info binds the purpose (a MAC key is never a liveness or sync
 * key), the cluster and the direction (a MAC from A to B never verifies as B to A).
 *
 * Keys are derived once per peer and kept while the own private key object and the peer's public key
 * object stay the same (a reload, or a peer's new certificate, derives them again).
 *
 * Synchronous, no I/O, no clock: one instance per member process, shared by its sealer and opener.
 */
import { createHmac, diffieHellman, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { LIMITS, isMemberId, type MemberId } from '@gwcluster/wire';
import { SecurityConfigError } from './errors.js';

/** HKDF info prefix: names the purpose and its version. */
export const MESSAGE_MAC_INFO = 'gwcluster message-mac v1';
/** HMAC-SHA-256 output and key size, bytes (= LIMITS.macBytes, Envelope.mac). */
export const MESSAGE_MAC_BYTES = LIMITS.macBytes;

export interface MessageMacKeysOptions {
  readonly cluster: string;
  readonly self: MemberId;
  /** This member's private key (its certificate's). Re-read on every call; a new key object (reload) re-derives every key. */
  readonly privateKey: () => KeyObject;
  /** A peer's certificate public key as this member verified it (MessageOpener.certificateOf), or undefined. */
  readonly peerPublicKey: (peer: MemberId) => KeyObject | undefined;
  /** Peers whose keys are kept; the least recently derived is dropped first. Default 4096. */
  readonly maxPeers?: number;
}

interface PeerKeys {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** self -> peer */
  readonly send: Buffer;
  /** peer -> self */
  readonly receive: Buffer;
}

export class MessageMacKeys {
  readonly cluster: string;
  readonly self: MemberId;
  private readonly peers = new Map<MemberId, PeerKeys>();
  private readonly maxPeers: number;

  constructor(private readonly opts: MessageMacKeysOptions) {
    if (!isMemberId(opts.self)) throw new SecurityConfigError('bad-member-ip', `message MAC keys: member IP "${opts.self}" is not a dotted-quad IPv4 address`);
    this.cluster = opts.cluster;
    this.self = opts.self;
    this.maxPeers = opts.maxPeers ?? 4096;
    if (!Number.isInteger(this.maxPeers) || this.maxPeers < 1) throw new SecurityConfigError('bad-option', `message MAC keys: maxPeers ${this.maxPeers} must be a positive integer`);
  }

  /** Peers whose keys are cached. */
  get size(): number {
    return this.peers.size;
  }

  /**
   * The key of direction self -> `peer`, or undefined when no public key of the peer is known (or ECDH
   * refuses it). `publicKey` defaults to options.peerPublicKey(peer).
   */
  sendKey(peer: MemberId, publicKey?: KeyObject): Buffer | undefined {
    return this.keysOf(peer, publicKey)?.send;
  }

  /** The key of direction `peer` -> self; as sendKey. */
  receiveKey(peer: MemberId, publicKey?: KeyObject): Buffer | undefined {
    return this.keysOf(peer, publicKey)?.receive;
  }

  /** Drops the peer's keys (it left). */
  forget(peer: MemberId): void {
    this.peers.delete(peer);
  }

  private keysOf(peer: MemberId, given: KeyObject | undefined): PeerKeys | undefined {
    if (peer === this.self) return undefined;
    const publicKey = given ?? this.opts.peerPublicKey(peer);
    if (!publicKey) return undefined;
    const privateKey = this.opts.privateKey();
    const had = this.peers.get(peer);
    if (had && had.privateKey === privateKey && had.publicKey === publicKey) return had;
    let shared: Buffer;
    try {
      shared = diffieHellman({ privateKey, publicKey });
    } catch {
      return undefined;
    }
    const keys: PeerKeys = { privateKey, publicKey, send: this.directionKey(shared, this.self, peer), receive: this.directionKey(shared, peer, this.self) };
    shared.fill(0);
    this.peers.delete(peer);
    this.peers.set(peer, keys);
    if (this.peers.size > this.maxPeers) this.peers.delete(this.peers.keys().next().value!);
    return keys;
  }

  private directionKey(shared: Buffer, sender: MemberId, receiver: MemberId): Buffer {
    const info = Buffer.from(`${MESSAGE_MAC_INFO}\0${this.cluster}\0${sender}\0${receiver}`, 'utf8');
    return Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), info, MESSAGE_MAC_BYTES));
  }
}

/** HMAC-SHA-256 of `data` under `key`. */
export function messageMac(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** Whether `mac` is the HMAC-SHA-256 of `data` under `key` (constant-time comparison). */
export function messageMacMatches(key: Uint8Array, data: Uint8Array, mac: Uint8Array): boolean {
  if (mac.length !== MESSAGE_MAC_BYTES) return false;
  return timingSafeEqual(messageMac(key, data), mac);
}
