// The whitepaper's constants (WireGuard, "Protocol & Cryptography" and section 6, "Timers & Stateless UX"),
// in one place. Times are milliseconds; counts are message counts.

/** Noise protocol name hashed into the chaining key: Construction. */
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
/** Mixed into the handshake hash after the construction: Identifier. */
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
/** Prefix of the MAC1 key: HASH(LABEL_MAC1 || receiver's static public key). */
export const LABEL_MAC1 = 'mac1----';
/** Prefix of the cookie encryption key: HASH(LABEL_COOKIE || receiver's static public key). */
export const LABEL_COOKIE = 'cookie--';

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

/** Sizes in bytes of each message on the wire. */
export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
/** Type (4) + receiver index (4) + counter (8) + Poly1305 tag (16): an empty transport message (keepalive). */
export const TRANSPORT_MIN_SIZE = 32;
export const TRANSPORT_HEADER_SIZE = 16;

/** A sender rekeys after this many messages on one keypair (2^60). */
export const REKEY_AFTER_MESSAGES = 2n ** 60n;
/** No keypair encrypts or accepts more than this many messages (2^64 - 2^13 - 1). */
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
/** The initiator of a keypair rekeys when sending on a keypair this old. */
export const REKEY_AFTER_TIME = 120_000;
/** No keypair is used, to send or receive, once this old. */
export const REJECT_AFTER_TIME = 180_000;
/** Handshake attempts for one rekey stop after this long. */
export const REKEY_ATTEMPT_TIME = 90_000;
/** A handshake initiation is retried after this long without a response (plus jitter up to REKEY_JITTER). */
export const REKEY_TIMEOUT = 5_000;
export const REKEY_JITTER = 333;
/** A peer that received data and sent nothing for this long sends a keepalive (passive keepalive). */
export const KEEPALIVE_TIMEOUT = 10_000;
/** Every key of a peer is erased after 3 x REJECT_AFTER_TIME without a new handshake. */
export const ZERO_KEYS_AFTER = 3 * REJECT_AFTER_TIME;
/** The cookie secret changes this often; a received cookie is used for at most this long. */
export const COOKIE_SECRET_LIFETIME = 120_000;
/** At most one initiation per peer is accepted per this interval (flood protection, wireguard-go's 50/s). */
export const INITIATION_MIN_INTERVAL = 20;
/** The replay window the data path keeps per keypair, in counters (RFC 6479 style; a multiple of 64). */
export const REPLAY_WINDOW = 8192;
