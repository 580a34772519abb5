/**
 * Keys of fast liveness (docs/protocol.md, "Fast liveness"): the data-plane heartbeats that members send
 * each other from a native thread carry an HMAC under a key of their direction. Like the state-sync keys
 * (sync-cipher.ts) they come from the members' certificates, with nothing written here by hand:
 *     Z = ECDH(own private key, peer's certificate public key)        (the same Z on both sides)
 *     key(sender -> receiver) = HKDF-SHA256(ikm = Z, salt = empty,
 *                                           info = LIVENESS_KEY_INFO || 0 || cluster || 0 || sender || 0 || receiver), 32 bytes
 * No boot salt: a heartbeat carries the sender's incarnation (boot time) and a sequence number, and a
 * receiver accepts only a strictly newer pair, so a heartbeat of an earlier boot never counts. The info
 * binds the purpose (a liveness key never opens state sync), the cluster and the direction.
 */
import { diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import { isMemberId, type MemberId } from '@gwcluster/wire';
import { SecurityConfigError } from './errors.js';

export const LIVENESS_KEY_INFO = 'gwcluster liveness v1';
export const LIVENESS_KEY_BYTES = 32;

export interface LivenessKeys {
  /** self -> peer */
  readonly tx: Buffer;
  /** peer -> self */
  readonly rx: Buffer;
}

function directionKey(shared: Buffer, cluster: string, sender: MemberId, receiver: MemberId): Buffer {
  const info = Buffer.from(`${LIVENESS_KEY_INFO}\0${cluster}\0${sender}\0${receiver}`, 'utf8');
  return Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), info, LIVENESS_KEY_BYTES));
}

/** Both directions' keys between `self` and `peer`; null when the keys do not agree (ECDH refused them). */
export function livenessKeys(opts: { cluster: string; self: MemberId; peer: MemberId; privateKey: KeyObject; peerPublicKey: KeyObject }): LivenessKeys | null {
  if (!isMemberId(opts.self) || !isMemberId(opts.peer)) throw new SecurityConfigError('bad-member-ip', `liveness keys: "${opts.self}" and "${opts.peer}" must be dotted-quad IPv4 addresses`);
  if (opts.self === opts.peer) throw new SecurityConfigError('bad-option', 'liveness keys: a member has no key towards itself');
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: opts.privateKey, publicKey: opts.peerPublicKey });
  } catch {
    return null;
  }
  const keys = { tx: directionKey(shared, opts.cluster, opts.self, opts.peer), rx: directionKey(shared, opts.cluster, opts.peer, opts.self) };
  shared.fill(0);
  return keys;
}
