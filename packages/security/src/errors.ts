/**
 * Configuration errors of the security package. These are thrown only while building long-lived objects
 * (a TrustStore, a MessageSealer) or PKI material from operator input, never on the per-datagram path:
 * MessageOpener.open() and TrustStore.verifyChain() return coded values instead.
 */

export type SecurityConfigErrorCode =
  /** The CA certificate does not parse, or is not a CA (basicConstraints CA:false). */
  | 'bad-ca-certificate'
  /** A certificate (member or chain) does not parse. */
  | 'bad-certificate'
  /** A private key does not parse as PKCS#8 PEM, or is not an ECDSA P-256 key. */
  | 'bad-private-key'
  /** A private key does not belong to the certificate it is paired with. */
  | 'key-mismatch'
  /** The revocation list does not parse or is not signed by the cluster CA. */
  | 'bad-revocation-list'
  /** A fingerprint is not 32 bytes of hex. */
  | 'bad-fingerprint'
  /** A member IP is not a dotted-quad IPv4 address, or the certificate is not for it. */
  | 'bad-member-ip'
  /** A serial number is not hex. */
  | 'bad-serial'
  /** Any other option outside its documented range (named in the message). */
  | 'bad-option';

export class SecurityConfigError extends Error {
  constructor(
    readonly code: SecurityConfigErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SecurityConfigError';
  }
}
