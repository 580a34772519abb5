import { randomBytes, webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  SecurityConfigError,
  TrustStore,
  createClusterCa,
  createIntermediateCa,
  createRevocationList,
  createTestPki,
  issueMemberCertificate,
  pemToDer,
  type IssuedCertificate,
  type TestPki,
} from '../src/index.js';
import { loadX509 } from '../src/x509-loader.js';
import { NOW } from './fixtures.js';

const M1 = '192.0.2.1';
const M2 = '192.0.2.2';

let pki: TestPki;
let foreign: TestPki;
let expired: IssuedCertificate;
let future: IssuedCertificate;
let intermediate: IssuedCertificate;
let underIntermediate: IssuedCertificate;
let shortCa: IssuedCertificate;
let underShortCa: IssuedCertificate;
let signedByMember: Uint8Array;

const der = (c: IssuedCertificate) => c.certDer;

beforeAll(async () => {
  [pki, foreign] = await Promise.all([createTestPki([M1, M2]), createTestPki([M1], { caCommonName: 'foreign CA' })]);
  expired = await issueMemberCertificate({ ca: pki.ca, memberIp: '192.0.2.4', commonName: 'member-4', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2021-01-01T00:00:00Z') });
  future = await issueMemberCertificate({ ca: pki.ca, memberIp: '192.0.2.5', commonName: 'member-5', notBefore: new Date('2040-01-01T00:00:00Z'), notAfter: new Date('2041-01-01T00:00:00Z') });
  intermediate = await createIntermediateCa({ ca: pki.ca, commonName: 'site intermediate', notBefore: new Date(0), notAfter: new Date('2099-01-01T00:00:00Z') });
  underIntermediate = await issueMemberCertificate({ ca: intermediate, memberIp: '192.0.2.6', notBefore: new Date(0), notAfter: new Date('2099-01-01T00:00:00Z') });
  shortCa = await createClusterCa({ commonName: 'short CA', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2025-01-01T00:00:00Z') });
  underShortCa = await issueMemberCertificate({ ca: shortCa, memberIp: M1, notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2040-01-01T00:00:00Z') });
  signedByMember = await signWithMemberKey(pki.members[M2]!, '192.0.2.6');
});

/** A leaf certificate issued (with @peculiar/x509 directly) by a member, which issueMemberCertificate refuses to do. */
async function signWithMemberKey(issuer: IssuedCertificate, memberIp: string): Promise<Uint8Array> {
  const x509 = await loadX509();
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pemToDer(issuer.keyPem, 'PRIVATE KEY'), alg, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0badc0de',
    subject: 'CN=rogue',
    issuer: new x509.X509Certificate(issuer.certPem).subject,
    notBefore: new Date(0),
    notAfter: new Date('2099-01-01T00:00:00Z'),
    publicKey: keys.publicKey as never,
    signingKey: signingKey as never,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: memberIp }])],
  });
  return new Uint8Array(cert.rawData);
}

describe('TrustStore.verifyChain', () => {
  it('admits a member certificate issued by the CA, for its own address', () => {
    const m = pki.members[M1]!;
    const v = pki.trustStore().verifyChain(m.chainDer, M1, NOW);
    expect(v).toMatchObject({ ok: true, fingerprint: m.fingerprint, memberIp: M1, serial: m.serial, subject: 'CN=member 192.0.2.1' });
    expect(v.ok && v.notAfterMs).toBe(Date.UTC(2100, 0, 1));
    expect(v.ok && v.publicKey.asymmetricKeyType).toBe('ec');
  });

  it('accepts the CA at the end of the chain, and chains through an intermediate', () => {
    const trust = pki.trustStore();
    expect(trust.verifyChain([pki.members[M1]!.certDer, pki.ca.certDer], M1, NOW).ok).toBe(true);
    expect(trust.verifyChain([der(underIntermediate), der(intermediate)], '192.0.2.6', NOW).ok).toBe(true);
    expect(trust.verifyChain([der(underIntermediate), der(intermediate), pki.ca.certDer], '192.0.2.6', NOW).ok).toBe(true);
  });

  it('rejects a certificate of another CA, naming it', () => {
    const f = foreign.members[M1]!;
    const v = pki.trustStore().verifyChain(f.chainDer, M1, NOW);
    expect(v).toMatchObject({ ok: false, code: 'not-issued-by-ca' });
    expect(!v.ok && v.reason).toBe(`certificate CN=member 192.0.2.1 serial ${f.serial} (issuer CN=foreign CA) is not issued by the cluster CA CN=gwcluster test CA`);
  });

  it('rejects a chain whose intermediate is missing or is not a CA', () => {
    const trust = pki.trustStore();
    expect(trust.verifyChain([der(underIntermediate)], '192.0.2.6', NOW)).toMatchObject({ ok: false, code: 'not-issued-by-ca' });
    // A leaf genuinely signed with member M2's key: M2's certificate may not issue certificates.
    const v = trust.verifyChain([signedByMember, pki.members[M2]!.certDer], '192.0.2.6', NOW);
    expect(v).toMatchObject({ ok: false, code: 'not-issued-by-ca' });
    expect(!v.ok && v.reason).toContain(`certificate CN=member 192.0.2.2 serial ${pki.members[M2]!.serial} issues certificate CN=rogue`);
    expect(!v.ok && v.reason).toContain('is not a CA certificate');
    // With a CA in the chain that did not issue the leaf, the reason names both certificates.
    const w = trust.verifyChain([der(underIntermediate), foreign.ca.certDer], '192.0.2.6', NOW);
    expect(w).toMatchObject({ ok: false, code: 'not-issued-by-ca' });
    expect(!w.ok && w.reason).toContain('(next in the chain)');
  });

  it('rejects expired and not-yet-valid certificates with the date and the certificate', () => {
    const trust = pki.trustStore();
    const e = trust.verifyChain([der(expired)], '192.0.2.4', NOW);
    expect(e).toMatchObject({ ok: false, code: 'expired' });
    expect(!e.ok && e.reason).toMatch(new RegExp(`^certificate CN=member-4 serial ${expired.serial} expired at 2021-01-01T00:00:00Z \\(now 2030-01-01T00:00:00Z\\)`));
    const f = trust.verifyChain([der(future)], '192.0.2.5', NOW);
    expect(f).toMatchObject({ ok: false, code: 'not-yet-valid' });
    expect(!f.ok && f.reason).toContain(`certificate CN=member-5 serial ${future.serial} is not valid before 2040-01-01T00:00:00Z`);
    // The same certificates are fine inside their validity.
    expect(trust.verifyChain([der(expired)], '192.0.2.4', Date.UTC(2020, 5, 1)).ok).toBe(true);
    expect(trust.verifyChain([der(future)], '192.0.2.5', Date.UTC(2040, 5, 1)).ok).toBe(true);
  });

  it('checks the CA validity too', () => {
    const trust = new TrustStore({ caCertPem: shortCa.certPem });
    expect(trust.verifyChain([der(underShortCa)], M1, Date.UTC(2024, 0, 1)).ok).toBe(true);
    const v = trust.verifyChain([der(underShortCa)], M1, NOW);
    expect(v).toMatchObject({ ok: false, code: 'expired' });
    expect(!v.ok && v.reason).toContain('CN=short CA');
    expect(v.ok || v.reason.includes('CN=member')).toBe(false);
  });

  it('re-checks dates on cache hits', () => {
    const trust = new TrustStore({ caCertPem: pki.ca.certPem });
    expect(trust.verifyChain([der(expired)], '192.0.2.4', Date.UTC(2020, 5, 1)).ok).toBe(true);
    expect(trust.cachedChains).toBe(1);
    expect(trust.verifyChain([der(expired)], '192.0.2.4', NOW)).toMatchObject({ ok: false, code: 'expired' });
    expect(trust.verifyChain([der(expired)], '192.0.2.4', Date.UTC(2019, 5, 1))).toMatchObject({ ok: false, code: 'not-yet-valid' });
    expect(trust.cachedChains).toBe(1);
  });

  it('rejects a certificate for another address', () => {
    const m = pki.members[M2]!;
    const v = pki.trustStore().verifyChain(m.chainDer, '192.0.2.3', NOW);
    expect(v).toMatchObject({ ok: false, code: 'wrong-address' });
    expect(!v.ok && v.reason).toBe(`certificate CN=member 192.0.2.2 serial ${m.serial} is for IP 192.0.2.2, not for member 192.0.2.3`);
  });

  it('rejects revoked certificates, including a revoked intermediate', async () => {
    const crlPem = await createRevocationList({ ca: pki.ca, revokedSerials: [pki.members[M2]!.serial, intermediate.serial], thisUpdate: new Date(NOW) });
    const trust = pki.trustStore({ crlPem });
    expect(trust.revokedSerials.size).toBe(2);
    expect(trust.revocationListThisUpdateMs).toBe(NOW);
    expect(trust.verifyChain(pki.members[M1]!.chainDer, M1, NOW).ok).toBe(true);
    const v = trust.verifyChain(pki.members[M2]!.chainDer, M2, NOW);
    expect(v).toMatchObject({ ok: false, code: 'revoked' });
    expect(!v.ok && v.reason).toContain(`serial ${pki.members[M2]!.serial} is revoked`);
    const w = trust.verifyChain([der(underIntermediate), der(intermediate)], '192.0.2.6', NOW);
    expect(w).toMatchObject({ ok: false, code: 'revoked' });
    expect(!w.ok && w.reason).toContain('CN=site intermediate');
  });

  it('admits only listed fingerprints when a list is given (any spelling)', () => {
    const listed = pki.members[M1]!.fingerprint.replace(/:/g, '').toLowerCase();
    const trust = pki.trustStore({ allowedFingerprints: [listed] });
    expect(trust.verifyChain(pki.members[M1]!.chainDer, M1, NOW).ok).toBe(true);
    const v = trust.verifyChain(pki.members[M2]!.chainDer, M2, NOW);
    expect(v).toMatchObject({ ok: false, code: 'not-listed' });
    expect(!v.ok && v.reason).toContain(pki.members[M2]!.fingerprint);
  });

  it('calls garbage, an empty chain and a CA presented as a leaf malformed', () => {
    const trust = pki.trustStore();
    expect(trust.verifyChain([randomBytes(300)], M1, NOW)).toMatchObject({ ok: false, code: 'malformed' });
    expect(trust.verifyChain([], M1, NOW)).toMatchObject({ ok: false, code: 'malformed' });
    const v = trust.verifyChain([pki.ca.certDer], M1, NOW);
    expect(v).toMatchObject({ ok: false, code: 'malformed' });
    expect(!v.ok && v.reason).toContain('is a CA certificate');
    const der1 = pki.members[M1]!.certDer;
    expect(trust.verifyChain([der1.subarray(0, der1.length - 1)], M1, NOW)).toMatchObject({ ok: false, code: 'malformed' });
  });

  it('rejects a leaf whose signature was altered', () => {
    const tampered = new Uint8Array(pki.members[M1]!.certDer);
    tampered[tampered.length - 5]! ^= 0x01;
    expect(pki.trustStore().verifyChain([tampered], M1, NOW)).toMatchObject({ ok: false, code: 'not-issued-by-ca' });
  });

  it('keeps its cache bounded', () => {
    const trust = pki.trustStore({ cacheSize: 2 });
    trust.verifyChain(pki.members[M1]!.chainDer, M1, NOW);
    trust.verifyChain(pki.members[M2]!.chainDer, M2, NOW);
    trust.verifyChain([der(expired)], '192.0.2.4', NOW);
    expect(trust.cachedChains).toBe(2);
  });
});

describe('TrustStore construction', () => {
  it('refuses a CRL not signed by the CA', async () => {
    const crlPem = await createRevocationList({ ca: foreign.ca, revokedSerials: [], thisUpdate: new Date(NOW) });
    expect(() => pki.trustStore({ crlPem })).toThrow(SecurityConfigError);
    const r = TrustStore.create({ caCertPem: pki.ca.certPem, crlPem });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe('bad-revocation-list');
    expect(!r.ok && r.error.message).toContain('not signed by the cluster CA CN=gwcluster test CA');
  });

  it('refuses garbage CRLs, non-CA trust anchors and bad fingerprints with codes', () => {
    const bad = (opts: Parameters<typeof TrustStore.create>[0]) => {
      const r = TrustStore.create(opts);
      return r.ok ? 'ok' : r.error.code;
    };
    expect(bad({ caCertPem: pki.ca.certPem, crlPem: '-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n' })).toBe('bad-revocation-list');
    expect(bad({ caCertPem: pki.members[M1]!.certPem })).toBe('bad-ca-certificate');
    expect(bad({ caCertPem: 'not pem' })).toBe('bad-ca-certificate');
    expect(bad({ caCertPem: pki.ca.certPem, allowedFingerprints: ['AB:CD'] })).toBe('bad-fingerprint');
    expect(bad({ caCertPem: pki.ca.certPem })).toBe('ok');
  });
});
