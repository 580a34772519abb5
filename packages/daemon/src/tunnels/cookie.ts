// MAC1, MAC2 and cookie replies (whitepaper 5.3 and 5.4.7). MAC1 proves the sender knows our static public
// key: every handshake message without a valid MAC1 is dropped before any Diffie-Hellman. Under load, a
// message also needs a valid MAC2, keyed with a cookie only the holder of its source address can have
// received; otherwise the answer is a cookie reply. The secret comes in (it changes every
// COOKIE_SECRET_LIFETIME, drawn by the caller).
import { LABEL_COOKIE, LABEL_MAC1 } from './constants.js';
import { encodeCookieReply } from './messages.js';
import type { CookieReplyMessage } from './messages.js';
import { equalBytes, hash, mac, xaeadOpen, xaeadSeal } from './primitives.js';

const MAC_SIZE = 16;

/** The keys derived from one static public key (ours to check, a peer's to generate). */
export interface MacKeys {
  mac1Key: Buffer;
  cookieKey: Buffer;
}

export function macKeys(publicKey: Uint8Array): MacKeys {
  return { mac1Key: hash(Buffer.from(LABEL_MAC1), publicKey), cookieKey: hash(Buffer.from(LABEL_COOKIE), publicKey) };
}

/** Fills MAC1 (and MAC2 when a cookie is given) into a handshake message in place; returns MAC1. */
export function addMacs(message: Buffer, keys: MacKeys, cookie: Uint8Array | undefined): Uint8Array {
  const n = message.length;
  const mac1 = mac(keys.mac1Key, message.subarray(0, n - 2 * MAC_SIZE));
  message.set(mac1, n - 2 * MAC_SIZE);
  if (cookie) message.set(mac(cookie, message.subarray(0, n - MAC_SIZE)), n - MAC_SIZE);
  else message.fill(0, n - MAC_SIZE);
  return mac1;
}

export function mac1Valid(message: Uint8Array, keys: MacKeys): boolean {
  const n = message.length;
  return equalBytes(mac(keys.mac1Key, message.subarray(0, n - 2 * MAC_SIZE)), message.subarray(n - 2 * MAC_SIZE, n - MAC_SIZE));
}

/** The cookie of a source address under a secret: MAC(secret, address bytes). */
export function cookieFor(secret: Uint8Array, sourceAddress: Uint8Array): Uint8Array {
  return mac(secret, sourceAddress);
}

export function mac2Valid(message: Uint8Array, secret: Uint8Array, sourceAddress: Uint8Array): boolean {
  const n = message.length;
  return equalBytes(mac(cookieFor(secret, sourceAddress), message.subarray(0, n - MAC_SIZE)), message.subarray(n - MAC_SIZE));
}

/** The cookie reply to a handshake message whose sender index and MAC1 are given; nonce: 24 random bytes. */
export function createCookieReply(ourKeys: MacKeys, senderIndex: number, messageMac1: Uint8Array, secret: Uint8Array,
  sourceAddress: Uint8Array, nonce: Uint8Array): Buffer {
  const sealed = xaeadSeal(ourKeys.cookieKey, nonce, cookieFor(secret, sourceAddress), messageMac1);
  return encodeCookieReply(senderIndex, nonce, sealed);
}

/** The cookie inside a reply to our message whose MAC1 is given, or null when it does not authenticate. */
export function consumeCookieReply(peerKeys: MacKeys, reply: CookieReplyMessage, ourLastMac1: Uint8Array): Uint8Array | null {
  return xaeadOpen(peerKeys.cookieKey, reply.nonce, reply.encryptedCookie, ourLastMac1);
}

/** The address bytes a cookie is bound to: the IP address (4 or 16 bytes) then the port, big-endian. */
export function addressBytes(address: string, port: number): Buffer {
  const ip = address.includes(':') ? ipv6Bytes(address) : Buffer.from(address.split('.').map(Number));
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return Buffer.concat([ip, p]);
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = address.includes('::') && tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16) || 0, 2 * i));
  return b;
}
