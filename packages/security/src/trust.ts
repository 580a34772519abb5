/**
 * Certificate verification against the cluster CA, synchronous (node:crypto) and cached.
 *
 * Policy (what "admitted" means), checked in this order:
 *   1. every certificate parses ('malformed'); the leaf is not a CA certificate ('malformed');
 *   2. each certificate is issued and signed by the next one, the last by the cluster CA, and every
 *      issuer is a CA ('not-issued-by-ca');
 *   3. nowMs lies within notBefore..notAfter of every certificate, the CA's included
 *      ('not-yet-valid' / 'expired'); re-checked on every call, cache hits included;
 *   4. no certificate of the chain is on the revocation list ('revoked'); serials are random 128-bit
 *      numbers, so the list is matched by serial alone, whichever CA of the chain issued it;
 *   5. when an allow-list of fingerprints is configured, the leaf's SHA-256 fingerprint is on it
 *      ('not-listed');
 *   6. the leaf's subjectAltName holds an IP address equal to the claimed member IP ('wrong-address').
 * Not checked: keyUsage / extendedKeyUsage, pathLen constraints, name constraints, the CRL's nextUpdate.
 */
import { X509Certificate, createHash, verify as verifySignature, type KeyObject } from 'node:crypto';
import { LIMITS } from '@gwcluster/wire';
import { canonicalSerial, parseCertificateList } from './der.js';
import { SecurityConfigError } from './errors.js';
import { pemToDer } from './pem.js';
import { loadCertificate } from './keys.js';

export type TrustFailureCode = 'not-issued-by-ca' | 'expired' | 'not-yet-valid' | 'revoked' | 'not-listed' | 'wrong-address' | 'malformed';

export interface TrustedChain {
  readonly ok: true;
  /** The leaf's SHA-256 fingerprint, "AB:CD:..." */
  readonly fingerprint: string;
  /** The leaf's subjectAltName IP (equal to the claimed member IP). */
  readonly memberIp: string;
  /** Earliest notAfter of the chain (CA included), ms since the epoch: the chain is valid until then. */
  readonly notAfterMs: number;
  /** Latest notBefore of the chain (CA included), ms since the epoch. */
  readonly notBeforeMs: number;
  /** The leaf's public key, for verifying the sender's signatures. */
  readonly publicKey: KeyObject;
  /** The leaf's subject and canonical serial, for logs. */
  readonly subject: string;
  readonly serial: string;
}

export interface RejectedChain {
  readonly ok: false;
  readonly code: TrustFailureCode;
  /** What was wrong and with which certificate (subject, serial). */
  readonly reason: string;
}

export type ChainVerdict = TrustedChain | RejectedChain;

export interface TrustStoreOptions {
  /** The cluster CA certificate (PEM). Trust anchor: its own signature is not checked, its dates are. */
  readonly caCertPem: string;
  /** A CRL signed by the cluster CA (PEM "X509 CRL" or "CRL"); see createRevocationList. */
  readonly crlPem?: string;
  /**
   * If given, only leaves with one of these SHA-256 fingerprints are admitted ("the list of valid
   * certificates"). Any case, with or without colons.
   */
  readonly allowedFingerprints?: readonly string[];
  /** Chains whose verification is remembered (least recently used evicted). Default 1024. */
  readonly cacheSize?: number;
}

interface CertFacts {
  readonly cert: X509Certificate;
  /** "certificate CN=member-2 serial 1a2b" */
  readonly label: string;
  readonly serial: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

/** What is remembered about a chain; everything but the dates and the claimed address is final. */
interface CacheEntry {
  /** Set when the chain failed a check that does not depend on time or claimed address. */
  readonly finalFailure?: RejectedChain;
  /** Leaf first, then intermediates, then the CA. Empty when finalFailure is 'malformed'. */
  readonly dated: readonly CertFacts[];
  /** Set when the chain is revoked or not listed (checked after the dates). */
  readonly policyFailure?: RejectedChain;
  readonly leaf?: CertFacts;
  readonly sanIps: readonly string[];
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly fingerprint: string;
}

const ECDSA_WITH_SHA256_OID = '2a8648ce3d040302';
/** The wire's limit (leaf and intermediates) plus the CA, which a chain may repeat at its end. */
const MAX_CHAIN_LENGTH = LIMITS.maxCertificates + 1;

/** Canonical fingerprint text "AB:CD:..." (32 octets); throws SecurityConfigError('bad-fingerprint'). */
export function normalizeFingerprint(text: string): string {
  const hex = text.replace(/^sha256\s*fingerprint\s*=\s*/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new SecurityConfigError('bad-fingerprint', `"${text}" is not a SHA-256 fingerprint (32 octets of hex)`);
  return hex.match(/../g)!.join(':');
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace('.000Z', 'Z') : String(ms);
}

function subjectText(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

function facts(cert: X509Certificate): CertFacts {
  const serial = canonicalSerial(cert.serialNumber);
  return {
    cert,
    serial,
    label: `certificate ${subjectText(cert)} serial ${serial}`,
    notBeforeMs: Date.parse(cert.validFrom),
    notAfterMs: Date.parse(cert.validTo),
  };
}

function sanIpsOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('IP Address:'))
    .map((n) => n.slice('IP Address:'.length));
}

function sameDer(a: X509Certificate, b: X509Certificate): boolean {
  return a.raw.equals(b.raw);
}

export class TrustStore {
  readonly ca: X509Certificate;
  /** Canonical serials on the revocation list. */
  readonly revokedSerials: ReadonlySet<string>;
  /** thisUpdate of the revocation list, or undefined without one. */
  readonly revocationListThisUpdateMs: number | undefined;
  readonly allowedFingerprints: ReadonlySet<string> | undefined;
  private readonly caFacts: CertFacts;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly cacheSize: number;

  /** Throws SecurityConfigError on a bad CA, CRL, fingerprint or option; see TrustStore.create for a value. */
  constructor(opts: TrustStoreOptions) {
    this.ca = loadCertificate(opts.caCertPem, 'bad-ca-certificate');
    if (!this.ca.ca) throw new SecurityConfigError('bad-ca-certificate', `certificate ${subjectText(this.ca)} is not a CA (basicConstraints CA:false)`);
    this.caFacts = facts(this.ca);
    this.cacheSize = opts.cacheSize ?? 1024;
    if (!Number.isInteger(this.cacheSize) || this.cacheSize < 1) throw new SecurityConfigError('bad-option', `cacheSize ${this.cacheSize} must be a positive integer`);
    this.allowedFingerprints = opts.allowedFingerprints ? new Set(opts.allowedFingerprints.map(normalizeFingerprint)) : undefined;
    if (opts.crlPem === undefined) {
      this.revokedSerials = new Set();
      this.revocationListThisUpdateMs = undefined;
    } else {
      const crl = this.loadRevocationList(opts.crlPem);
      this.revokedSerials = new Set(crl.revokedSerials);
      this.revocationListThisUpdateMs = crl.thisUpdateMs;
    }
  }

  /** The constructor as a value: never throws. */
  static create(opts: TrustStoreOptions): { ok: true; trust: TrustStore } | { ok: false; error: SecurityConfigError } {
    try {
      return { ok: true, trust: new TrustStore(opts) };
    } catch (e) {
      if (e instanceof SecurityConfigError) return { ok: false, error: e };
      return { ok: false, error: new SecurityConfigError('bad-option', (e as Error).message) };
    }
  }

  private loadRevocationList(crlPem: string): { revokedSerials: string[]; thisUpdateMs: number } {
    let parsed;
    try {
      parsed = parseCertificateList(pemToDer(crlPem, ['X509 CRL', 'CRL']));
    } catch (e) {
      throw new SecurityConfigError('bad-revocation-list', `revocation list does not parse: ${(e as Error).message}`);
    }
    const oid = Buffer.from(parsed.signatureAlgorithmOid).toString('hex');
    if (oid !== ECDSA_WITH_SHA256_OID) throw new SecurityConfigError('bad-revocation-list', `revocation list is signed with algorithm OID ${oid}, not ecdsa-with-SHA256`);
    let valid = false;
    try {
      valid = verifySignature('sha256', parsed.tbs, this.ca.publicKey, parsed.signature);
    } catch {
      valid = false;
    }
    if (!valid) throw new SecurityConfigError('bad-revocation-list', `revocation list is not signed by the cluster CA ${subjectText(this.ca)}`);
    return parsed;
  }

  /** Number of chains whose verification is remembered. */
  get cachedChains(): number {
    return this.cache.size;
  }

  /**
   * Verifies a certificate chain (DER, leaf first, optional intermediates, the CA optional at the end)
   * for a member claiming `claimedMemberIp`, at wall-clock `nowMs`. Never throws. A chain seen before
   * costs one SHA-256 over its bytes and a map lookup; dates and the address are checked on every call.
   */
  verifyChain(chainDer: readonly Uint8Array[], claimedMemberIp: string, nowMs: number): ChainVerdict {
    const key = chainKey(chainDer);
    let entry = this.cache.get(key);
    if (entry) {
      this.cache.delete(key);
    } else {
      entry = this.analyse(chainDer);
    }
    this.cache.set(key, entry);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return this.judge(entry, claimedMemberIp, nowMs);
  }

  private judge(entry: CacheEntry, claimedMemberIp: string, nowMs: number): ChainVerdict {
    if (entry.finalFailure) return entry.finalFailure;
    for (const f of entry.dated) {
      if (!(nowMs >= f.notBeforeMs)) return { ok: false, code: 'not-yet-valid', reason: `${f.label} is not valid before ${iso(f.notBeforeMs)} (now ${iso(nowMs)}): check this member's clock or the certificate's dates` };
      if (!(nowMs <= f.notAfterMs)) return { ok: false, code: 'expired', reason: `${f.label} expired at ${iso(f.notAfterMs)} (now ${iso(nowMs)}): issue a new certificate` };
    }
    if (entry.policyFailure) return entry.policyFailure;
    const leaf = entry.leaf!;
    if (!entry.sanIps.includes(claimedMemberIp)) {
      const names = entry.sanIps.length ? `IP ${entry.sanIps.join(', ')}` : 'no IP address (subjectAltName)';
      return { ok: false, code: 'wrong-address', reason: `${leaf.label} is for ${names}, not for member ${claimedMemberIp}` };
    }
    return {
      ok: true,
      fingerprint: entry.fingerprint,
      memberIp: claimedMemberIp,
      notAfterMs: entry.notAfterMs,
      notBeforeMs: entry.notBeforeMs,
      publicKey: leaf.cert.publicKey,
      subject: subjectText(leaf.cert),
      serial: leaf.serial,
    };
  }

  /** Everything about a chain that does not depend on the time or the claimed address. */
  private analyse(chainDer: readonly Uint8Array[]): CacheEntry {
    const empty = { dated: [], sanIps: [], notBeforeMs: 0, notAfterMs: 0, fingerprint: '' };
    const fail = (code: TrustFailureCode, reason: string): CacheEntry => ({ ...empty, finalFailure: { ok: false, code, reason } });
    if (chainDer.length === 0) return fail('malformed', 'no certificate presented');
    if (chainDer.length > MAX_CHAIN_LENGTH) return fail('malformed', `chain of ${chainDer.length} certificates; at most ${MAX_CHAIN_LENGTH} (leaf, intermediates, CA) are accepted`);
    const chain: CertFacts[] = [];
    for (let i = 0; i < chainDer.length; i++) {
      try {
        chain.push(facts(new X509Certificate(Buffer.from(chainDer[i]!.buffer, chainDer[i]!.byteOffset, chainDer[i]!.byteLength))));
      } catch (e) {
        return fail('malformed', `certificate ${i} of the chain (${chainDer[i]!.length} bytes) does not parse: ${(e as Error).message}`);
      }
    }
    if (chain.length > 1 && sameDer(chain[chain.length - 1]!.cert, this.ca)) chain.pop();
    const leaf = chain[0]!;
    const undated = chain.find((f) => Number.isNaN(f.notBeforeMs) || Number.isNaN(f.notAfterMs));
    if (undated) return fail('malformed', `${undated.label} has unreadable validity dates`);
    if (leaf.cert.ca) return fail('malformed', `${leaf.label} is a CA certificate; a member presents a leaf certificate`);
    for (let i = 0; i < chain.length; i++) {
      const subject = chain[i]!;
      const issuerFacts = chain[i + 1] ?? this.caFacts;
      const issuerName = i + 1 < chain.length ? `${issuerFacts.label} (next in the chain)` : `the cluster CA ${subjectText(this.ca)}`;
      if (i + 1 < chain.length && !issuerFacts.cert.ca) return fail('not-issued-by-ca', `${issuerFacts.label} issues ${subject.label} but is not a CA certificate`);
      let signed = false;
      try {
        signed = subject.cert.checkIssued(issuerFacts.cert) && subject.cert.verify(issuerFacts.cert.publicKey);
      } catch {
        signed = false;
      }
      if (!signed) return fail('not-issued-by-ca', `${subject.label} (issuer ${subject.cert.issuer.split('\n').join(', ')}) is not issued by ${issuerName}`);
    }
    const dated = [...chain, this.caFacts];
    let policyFailure: RejectedChain | undefined;
    const revoked = chain.find((f) => this.revokedSerials.has(f.serial));
    const fingerprint = leaf.cert.fingerprint256;
    if (revoked) {
      policyFailure = { ok: false, code: 'revoked', reason: `${revoked.label} is revoked by the cluster revocation list` };
    } else if (this.allowedFingerprints && !this.allowedFingerprints.has(fingerprint)) {
      policyFailure = { ok: false, code: 'not-listed', reason: `${leaf.label} (SHA-256 ${fingerprint}) is not on the list of admitted certificates` };
    }
    return {
      dated,
      leaf,
      sanIps: sanIpsOf(leaf.cert),
      notBeforeMs: Math.max(...dated.map((f) => f.notBeforeMs)),
      notAfterMs: Math.min(...dated.map((f) => f.notAfterMs)),
      fingerprint,
      ...(policyFailure ? { policyFailure } : {}),
    };
  }
}

/** Cache key: SHA-256 over each certificate's 4-octet length and bytes (so chains cannot alias). */
function chainKey(chainDer: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  const len = Buffer.alloc(4);
  for (const der of chainDer) {
    len.writeUInt32BE(der.length);
    h.update(len);
    h.update(der);
  }
  return h.digest('base64');
}
