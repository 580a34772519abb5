// The cryptographic primitives of the handshake, on well-kept libraries only: node:crypto (X25519,
// ChaCha20-Poly1305, HMAC-BLAKE2s, BLAKE2s-256), @noble/hashes (keyed BLAKE2s with a 16-byte output for
// MAC1/MAC2) and @noble/ciphers (XChaCha20-Poly1305 for cookie replies). Nothing here is cryptography
// written by hand: these functions only compose the library calls the whitepaper names.
// Deterministic: no randomness is drawn here (keys and nonces come in).
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';

export const KEY_SIZE = 32;
export const TAG_SIZE = 16;

// DER prefixes of an X25519 key (RFC 8410): PKCS#8 private key and SubjectPublicKeyInfo, each followed by
// the 32 raw key bytes.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

/** HASH(input...) = BLAKE2s-256 of the concatenation. */
export function hash(...parts: Uint8Array[]): Buffer {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC-BLAKE2s-256 (RFC 2104 over BLAKE2s, block size 64). */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('blake2s256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** KDF_n(key, input): the HKDF of the whitepaper; returns n 32-byte outputs (n = 1..3). */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Buffer[] {
  const t0 = hmac(key, input);
  const out: Buffer[] = [];
  let prev: Buffer = Buffer.alloc(0);
  for (let i = 1; i <= n; i++) {
    prev = hmac(t0, prev, Uint8Array.of(i));
    out.push(prev);
  }
  return out;
}

/** MAC(key, input) = keyed BLAKE2s with a 16-byte output (MAC1, MAC2, cookie). */
export function mac(key: Uint8Array, input: Uint8Array): Uint8Array {
  return blake2s(input, { key, dkLen: 16 });
}

function nonce12(counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(counter, 4);
  return n;
}

/** AEAD(key, counter, plaintext, ad): ChaCha20-Poly1305 with nonce = 32 zero bits || 64-bit LE counter. */
export function aeadSeal(key: Uint8Array, counter: bigint, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce12(counter), { authTagLength: TAG_SIZE });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([body, c.getAuthTag()]);
}

/** The inverse of aeadSeal, or null when the tag does not verify (or the input is shorter than a tag). */
export function aeadOpen(key: Uint8Array, counter: bigint, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  if (sealed.length < TAG_SIZE) return null;
  const body = sealed.subarray(0, sealed.length - TAG_SIZE);
  const d = createDecipheriv('chacha20-poly1305', key, nonce12(counter), { authTagLength: TAG_SIZE });
  d.setAAD(ad, { plaintextLength: body.length });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  try {
    return Buffer.concat([d.update(body), d.final()]);
  } catch {
    return null;
  }
}

/** XAEAD: XChaCha20-Poly1305 with a 24-byte nonce (cookie replies). */
export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, ad).encrypt(plaintext);
}

export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  try {
    return xchacha20poly1305(key, nonce, ad).decrypt(sealed);
  } catch {
    return null;
  }
}

// Parsed private keys, by the byte array that holds them: a static key is parsed once, an ephemeral key
// once per handshake (its two DH operations share it). Callers never mutate a key array in place.
const parsedKeys = new WeakMap<Uint8Array, KeyObject>();

/** An X25519 private key as a KeyObject (OpenSSL clamps the scalar). */
export function privateKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== KEY_SIZE) throw new RangeError(`an X25519 private key is 32 bytes, got ${raw.length}`);
  let k = parsedKeys.get(raw);
  if (!k) {
    k = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
    parsedKeys.set(raw, k);
  }
  return k;
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' });
}

/** The 32-byte public key of a 32-byte private key. */
export function publicKeyOf(privateKey: Uint8Array): Buffer {
  const der = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - KEY_SIZE);
}

/**
 * DH(private, public): X25519. Returns null when the peer's public key is invalid or yields the all-zero
 * shared secret (a low-order point; OpenSSL refuses it), which the whitepaper treats as a failed handshake.
 */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Buffer | null {
  if (publicKey.length !== KEY_SIZE) return null;
  try {
    const out = diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(publicKey) });
    return out.every((b) => b === 0) ? null : out;
  } catch {
    return null;
  }
}

/** Clamps 32 random bytes into an X25519 private key (as `wg genkey` does). */
export function clampPrivateKey(random: Uint8Array): Buffer {
  if (random.length !== KEY_SIZE) throw new RangeError(`a private key is made of 32 random bytes, got ${random.length}`);
  const k = Buffer.from(random);
  k[0]! &= 248;
  k[31]! = (k[31]! & 127) | 64;
  return k;
}

/** Constant-time comparison of two byte strings (false when the lengths differ). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
