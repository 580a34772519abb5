/**
 * Creating the cluster PKI: a self-signed cluster CA, member certificates, and revocation lists.
 * ECDSA P-256 with SHA-256 throughout (proto Envelope.signature). These functions are asynchronous
 * because @peculiar/x509 signs through WebCrypto; they run in tooling (gwctl) and tests, never on the
 * datagram path, which verifies with node:crypto (trust.ts).
 *
 * Private keys are PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), certificates PEM "CERTIFICATE",
 * revocation lists PEM "X509 CRL".
 */
import { X509Certificate, createHash, createPublicKey, generateKeyPairSync, randomBytes, verify as verifySignature, webcrypto } from 'node:crypto';
import { isMemberId } from '@gwcluster/wire';
import { TAG, canonicalSerial, children, parseCertificateList, readElement } from './der.js';
import { SecurityConfigError } from './errors.js';
import { loadCertificate, loadPrivateKey } from './keys.js';
import { derToPem, pemToDer } from './pem.js';
import { loadX509 } from './x509-loader.js';
import type * as X509 from '@peculiar/x509';

const EC_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

const DAY_MS = 86_400_000;
/** Default validity of a cluster CA: 10 years from `notBefore`. */
export const DEFAULT_CA_VALIDITY_MS = 3650 * DAY_MS;
/** Default validity of a member certificate: 2 years from `notBefore`. */
export const DEFAULT_MEMBER_VALIDITY_MS = 730 * DAY_MS;
/** Default back-dating of notBefore, so that members whose clocks lag a little accept a fresh certificate. */
export const DEFAULT_BACKDATE_MS = 5 * 60_000;

/** A certificate and its private key, both PEM. */
export interface CertifiedKeyPem {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

/** What the issuing functions return: the pair plus facts an operator needs for CRLs and allow-lists. */
export interface IssuedCertificate extends CertifiedKeyPem {
  /** Serial number, canonical lowercase hex (as CRLs and TrustStore reasons print it). */
  readonly serial: string;
  /** SHA-256 fingerprint, "AB:CD:..." (as `openssl x509 -fingerprint -sha256` prints it). */
  readonly fingerprint: string;
  readonly certDer: Uint8Array;
}

export interface ValidityOptions {
  /** Default: now minus DEFAULT_BACKDATE_MS. */
  readonly notBefore?: Date;
  /** Default: notBefore plus the kind's default validity. */
  readonly notAfter?: Date;
}

export interface CreateClusterCaOptions extends ValidityOptions {
  readonly commonName: string;
}

export interface IssueMemberCertificateOptions extends ValidityOptions {
  readonly ca: CertifiedKeyPem;
  /** The member IP (dotted-quad IPv4); becomes the certificate's only subjectAltName. */
  readonly memberIp: string;
  /** Default: "member <memberIp>". */
  readonly commonName?: string;
  /**
   * Certify this public key (SPKI DER, e.g. the old certificate's, to renew a certificate for the same
   * key) instead of generating a key pair; the result's keyPem is then empty.
   */
  readonly publicKeySpkiDer?: Uint8Array;
}

export interface CreateIntermediateCaOptions extends ValidityOptions {
  readonly ca: CertifiedKeyPem;
  readonly commonName: string;
}

export interface RevokedEntry {
  /** Serial number in hex (any case; colons allowed). */
  readonly serial: string;
  /** Default: the list's thisUpdate. */
  readonly revokedAt?: Date;
}

export interface CreateRevocationListOptions {
  readonly ca: CertifiedKeyPem;
  readonly revokedSerials: readonly (string | RevokedEntry)[];
  readonly thisUpdate: Date;
  /**
   * Default: thisUpdate + 365 days. RFC 5280 requires the field; TrustStore does NOT enforce it (a stale
   * list keeps revoking what it lists rather than locking the cluster out). Reissue lists as policy demands.
   */
  readonly nextUpdate?: Date;
}

/** 16 random octets, first octet 0x01..0x7f: positive, full length, no DER padding (RFC 5280 4.1.2.2). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! % 0x7f) + 1;
  return bytes.toString('hex');
}

function validity(opts: ValidityOptions, defaultLengthMs: number): { notBefore: Date; notAfter: Date } {
  const notBefore = opts.notBefore ?? new Date(Date.now() - DEFAULT_BACKDATE_MS);
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + defaultLengthMs);
  if (!(notAfter.getTime() > notBefore.getTime())) {
    throw new SecurityConfigError('bad-option', `notAfter ${notAfter.toISOString()} must be later than notBefore ${notBefore.toISOString()}`);
  }
  return { notBefore, notAfter };
}

type CryptoKey = webcrypto.CryptoKey;

async function generateCaKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ['sign', 'verify']);
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return derToPem(new Uint8Array(der), 'PRIVATE KEY');
}

/** A member key pair from node:crypto (synchronous and native, without WebCrypto's per-call overhead). */
function generateMemberKeyPair(): { spkiDer: Uint8Array; keyPem: string; keyIdHex: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spkiDer = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  return { spkiDer, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, keyIdHex: keyIdentifier(spkiDer) };
}

/** A public key given as SPKI DER (checked to be EC P-256), with no private key. */
function existingPublicKey(spkiDer: Uint8Array): { spkiDer: Uint8Array; keyPem: string; keyIdHex: string } {
  let key;
  try {
    key = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  } catch (e) {
    throw new SecurityConfigError('bad-option', `public key does not parse: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new SecurityConfigError('bad-option', `public key is ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ''}; members use EC P-256`);
  }
  return { spkiDer: new Uint8Array(spkiDer), keyPem: '', keyIdHex: keyIdentifier(spkiDer) };
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's value. */
function keyIdentifier(spkiDer: Uint8Array): string {
  const [, bits] = children(readElement(spkiDer, 0).element.body);
  if (!bits || bits.tag !== TAG.bitString) throw new SecurityConfigError('bad-option', 'public key info has no subjectPublicKey');
  return createHash('sha1').update(bits.body.subarray(1)).digest('hex');
}

interface LoadedCa {
  readonly cert: X509Certificate;
  readonly subject: string;
  readonly signingKey: CryptoKey;
  /** authorityKeyIdentifier for certificates this CA issues (same for all of them). */
  readonly authorityKeyId: X509.AuthorityKeyIdentifierExtension;
}

/**
 * Loaded CAs, keyed by their PEM pair, so that issuing many certificates parses and imports the CA
 * once (64 members: about twice as fast). Bounded; holds only what callers already hold in memory.
 */
const loadedCas = new Map<string, Promise<LoadedCa>>();
const LOADED_CA_LIMIT = 8;

function loadCa(ca: CertifiedKeyPem): Promise<LoadedCa> {
  const key = `${ca.certPem}\0${ca.keyPem}`;
  let loaded = loadedCas.get(key);
  if (!loaded) {
    loaded = loadCaUncached(ca);
    loaded.catch(() => loadedCas.delete(key));
    loadedCas.set(key, loaded);
    if (loadedCas.size > LOADED_CA_LIMIT) loadedCas.delete(loadedCas.keys().next().value!);
  }
  return loaded;
}

async function loadCaUncached(ca: CertifiedKeyPem): Promise<LoadedCa> {
  const x509 = await loadX509();
  const cert = loadCertificate(ca.certPem, 'bad-ca-certificate');
  if (!cert.ca) throw new SecurityConfigError('bad-ca-certificate', `certificate ${cert.subject} is not a CA (basicConstraints CA:false)`);
  const keyObject = loadPrivateKey(ca.keyPem);
  if (!cert.checkPrivateKey(keyObject)) throw new SecurityConfigError('key-mismatch', `the CA private key does not belong to CA certificate ${cert.subject}`);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pemToDer(ca.keyPem, 'PRIVATE KEY'), EC_KEY_ALGORITHM, false, ['sign']);
  const parsed = new x509.X509Certificate(pemToDer(ca.certPem, 'CERTIFICATE'));
  const spki = new Uint8Array(cert.publicKey.export({ type: 'spki', format: 'der' }));
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(spki);
  return { cert, subject: parsed.subject, signingKey, authorityKeyId };
}

function issued(certDer: Uint8Array, keyPem: string): IssuedCertificate {
  const node = new X509Certificate(Buffer.from(certDer));
  return { certPem: derToPem(certDer, 'CERTIFICATE'), keyPem, certDer, serial: canonicalSerial(node.serialNumber), fingerprint: node.fingerprint256 };
}

/** A self-signed cluster CA: basicConstraints CA:true (critical), keyUsage keyCertSign|cRLSign (critical). */
export async function createClusterCa(opts: CreateClusterCaOptions): Promise<IssuedCertificate> {
  const x509 = await loadX509();
  const { notBefore, notAfter } = validity(opts, DEFAULT_CA_VALIDITY_MS);
  const keys = await generateCaKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [opts.commonName] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return issued(new Uint8Array(cert.rawData), await exportPkcs8Pem(keys.privateKey));
}

/**
 * An intermediate CA signed by `ca` (basicConstraints CA:true pathLen 0). The cluster does not need one;
 * it exists so that chains with intermediates can be issued and tested.
 */
export async function createIntermediateCa(opts: CreateIntermediateCaOptions): Promise<IssuedCertificate> {
  return issueSignedBy(opts.ca, opts.commonName, validity(opts, DEFAULT_CA_VALIDITY_MS), (x509) => [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ]);
}

/**
 * A member certificate signed by `ca`: subjectAltName IP = memberIp (the only name TrustStore checks),
 * keyUsage digitalSignature and keyAgreement (critical; the key signs cluster messages and agrees the
 * state-sync keys, sync-cipher.ts), basicConstraints CA:false, a random 128-bit serial.
 */
export async function issueMemberCertificate(opts: IssueMemberCertificateOptions): Promise<IssuedCertificate> {
  if (!isMemberId(opts.memberIp)) throw new SecurityConfigError('bad-member-ip', `member IP "${opts.memberIp}" is not a dotted-quad IPv4 address`);
  return issueSignedBy(
    opts.ca,
    opts.commonName ?? `member ${opts.memberIp}`,
    validity(opts, DEFAULT_MEMBER_VALIDITY_MS),
    (x509) => [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: opts.memberIp }]),
    ],
    opts.publicKeySpkiDer,
  );
}

/**
 * A new key pair and its certificate signed by `ca`: random serial, subject CN, the given validity, the
 * kind's extensions plus subject and authority key identifiers.
 */
async function issueSignedBy(
  caPem: CertifiedKeyPem,
  commonName: string,
  { notBefore, notAfter }: { notBefore: Date; notAfter: Date },
  extensions: (x509: Awaited<ReturnType<typeof loadX509>>) => X509.Extension[],
  publicKeySpkiDer?: Uint8Array,
): Promise<IssuedCertificate> {
  const x509 = await loadX509();
  const ca = await loadCa(caPem);
  const keys = publicKeySpkiDer ? existingPublicKey(publicKeySpkiDer) : generateMemberKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [commonName] }],
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: keys.spkiDer,
    signingKey: ca.signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [...extensions(x509), new x509.SubjectKeyIdentifierExtension(keys.keyIdHex), ca.authorityKeyId],
  });
  return issued(new Uint8Array(cert.rawData), keys.keyPem);
}

/**
 * An X.509 v2 CRL signed by `ca`, as PEM "X509 CRL". Every entry carries an invalidityDate extension
 * equal to its revocation date: @peculiar/x509 2.2 otherwise writes an empty crlEntryExtensions
 * SEQUENCE, which RFC 5280 forbids. nextUpdate is always written (its parser, and RFC 5280, want it).
 */
export async function createRevocationList(opts: CreateRevocationListOptions): Promise<string> {
  const x509 = await loadX509();
  const ca = await loadCa(opts.ca);
  const nextUpdate = opts.nextUpdate ?? new Date(opts.thisUpdate.getTime() + 365 * DAY_MS);
  const entries = opts.revokedSerials.map((e) => {
    const entry: RevokedEntry = typeof e === 'string' ? { serial: e } : e;
    const serial = canonicalSerial(entry.serial);
    if (!/^[0-9a-f]+$/.test(serial)) throw new SecurityConfigError('bad-serial', `serial "${entry.serial}" is not hex`);
    const revokedAt = entry.revokedAt ?? opts.thisUpdate;
    return { serialNumber: serial, revocationDate: revokedAt, invalidity: revokedAt };
  });
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.subject,
    thisUpdate: opts.thisUpdate,
    nextUpdate,
    entries,
    signingKey: ca.signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
  });
  return derToPem(new Uint8Array(crl.rawData), 'X509 CRL');
}

/** A revocation list's contents, after its signature was checked against the CA. */
export interface RevocationListContents {
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** Canonical serials and their revocation dates, in the list's order. */
  readonly revoked: readonly { readonly serial: string; readonly revokedAt: Date }[];
}

/**
 * Reads a PEM revocation list and checks that `caCertPem` signed it (ecdsa-with-SHA256). Throws
 * SecurityConfigError('bad-revocation-list') naming what is wrong.
 */
export function readRevocationList(crlPem: string, caCertPem: string): RevocationListContents {
  const ca = loadCertificate(caCertPem, 'bad-ca-certificate');
  let parsed;
  try {
    parsed = parseCertificateList(pemToDer(crlPem, ['X509 CRL', 'CRL']));
  } catch (e) {
    throw new SecurityConfigError('bad-revocation-list', `revocation list does not parse: ${(e as Error).message}`);
  }
  let valid = false;
  try {
    valid = Buffer.from(parsed.signatureAlgorithmOid).toString('hex') === '2a8648ce3d040302' && verifySignature('sha256', parsed.tbs, ca.publicKey, parsed.signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new SecurityConfigError('bad-revocation-list', `revocation list is not signed (ecdsa-with-SHA256) by the CA ${ca.subject.split('\n').join(', ')}`);
  return {
    thisUpdate: new Date(parsed.thisUpdateMs),
    nextUpdate: parsed.nextUpdateMs === undefined ? undefined : new Date(parsed.nextUpdateMs),
    revoked: parsed.revokedSerials.map((serial, i) => ({ serial, revokedAt: new Date(parsed.revokedAtMs[i]!) })),
  };
}
