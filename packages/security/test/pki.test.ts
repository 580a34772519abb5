import { X509Certificate, createPublicKey, verify } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  SecurityConfigError,
  canonicalSerial,
  certificateChainFromPem,
  createClusterCa,
  createRevocationList,
  derToPem,
  issueMemberCertificate,
  loadPrivateKey,
  pemBlocks,
  pemToDer,
  type IssuedCertificate,
} from '../src/index.js';
import { parseCertificateList } from '../src/der.js';
import { loadX509 } from '../src/x509-loader.js';

let ca: IssuedCertificate;
let member: IssuedCertificate;

beforeAll(async () => {
  ca = await createClusterCa({ commonName: 'pki test CA', notBefore: new Date('2025-01-01T00:00:00Z'), notAfter: new Date('2035-01-01T00:00:00Z') });
  member = await issueMemberCertificate({ ca, memberIp: '192.0.2.7', commonName: 'member-7', notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2027-01-01T00:00:00Z') });
});

describe('createClusterCa', () => {
  it('is a self-signed CA with keyCertSign|cRLSign', async () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=pki test CA');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(Date.parse(cert.validFrom)).toBe(Date.UTC(2025, 0, 1));
    expect(Date.parse(cert.validTo)).toBe(Date.UTC(2035, 0, 1));
    const x509 = await loadX509();
    const parsed = new x509.X509Certificate(ca.certPem);
    const bc = parsed.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(true);
    expect(bc.critical).toBe(true);
    const ku = parsed.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  });

  it('writes the key as PKCS#8 PEM matching the certificate', () => {
    expect(ca.keyPem.startsWith('-----BEGIN PRIVATE KEY-----\n')).toBe(true);
    expect(new X509Certificate(ca.certPem).checkPrivateKey(loadPrivateKey(ca.keyPem))).toBe(true);
  });

  it('refuses notAfter before notBefore', async () => {
    await expect(createClusterCa({ commonName: 'x', notBefore: new Date(2000), notAfter: new Date(1000) })).rejects.toMatchObject({ code: 'bad-option' });
  });
});

describe('issueMemberCertificate', () => {
  it('issues a leaf for the member IP, signed by the CA', async () => {
    const cert = new X509Certificate(member.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe('CN=member-7');
    expect(cert.subjectAltName).toBe('IP Address:192.0.2.7');
    expect(cert.checkIP('192.0.2.7')).toBe('192.0.2.7');
    expect(cert.checkIP('192.0.2.8')).toBeUndefined();
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(Date.parse(cert.validFrom)).toBe(Date.UTC(2026, 0, 1));
    expect(Date.parse(cert.validTo)).toBe(Date.UTC(2027, 0, 1));
    expect(cert.checkPrivateKey(loadPrivateKey(member.keyPem))).toBe(true);
    expect(member.fingerprint).toBe(cert.fingerprint256);
    expect(member.serial).toBe(cert.serialNumber.toLowerCase());
    const x509 = await loadX509();
    const parsed = new x509.X509Certificate(member.certPem);
    expect(parsed.getExtension(x509.KeyUsagesExtension)!.usages).toBe(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)!.ca).toBe(false);
    // Chain building by key identifiers works (AKI of the leaf = SKI of the CA).
    const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    const ski = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)!;
    expect(aki.keyId).toBe(ski.keyId);
    // Our subjectKeyIdentifier is the library's (RFC 5280 4.2.1.2 method 1).
    const ownSki = parsed.getExtension(x509.SubjectKeyIdentifierExtension)!;
    expect(ownSki.keyId).toBe(Buffer.from(await parsed.publicKey.getKeyIdentifier()).toString('hex'));
  });

  it('uses random 128-bit positive serials', async () => {
    const more = await Promise.all([1, 2, 3, 4].map(() => issueMemberCertificate({ ca, memberIp: '192.0.2.7' })));
    const serials = new Set([member.serial, ...more.map((m) => m.serial)]);
    expect(serials.size).toBe(5);
    for (const s of serials) {
      expect(s).toMatch(/^[0-7][0-9a-f]{31}$/);
      expect(s.startsWith('00')).toBe(false);
    }
  });

  it('defaults CN to "member <ip>" and validity to about two years from now', async () => {
    const m = await issueMemberCertificate({ ca, memberIp: '192.0.2.8' });
    const cert = new X509Certificate(m.certPem);
    expect(cert.subject).toBe('CN=member 192.0.2.8');
    const from = Date.parse(cert.validFrom);
    expect(Math.abs(from - (Date.now() - 5 * 60_000))).toBeLessThan(60_000);
    expect(Date.parse(cert.validTo) - from).toBe(730 * 86_400_000);
  });

  it('rejects a member IP that is not dotted-quad IPv4, and a CA key that does not match', async () => {
    await expect(issueMemberCertificate({ ca, memberIp: '192.0.2' })).rejects.toBeInstanceOf(SecurityConfigError);
    await expect(issueMemberCertificate({ ca, memberIp: '2001:db8::1' })).rejects.toMatchObject({ code: 'bad-member-ip' });
    await expect(issueMemberCertificate({ ca: { certPem: ca.certPem, keyPem: member.keyPem }, memberIp: '192.0.2.9' })).rejects.toMatchObject({ code: 'key-mismatch' });
    await expect(issueMemberCertificate({ ca: member, memberIp: '192.0.2.9' })).rejects.toMatchObject({ code: 'bad-ca-certificate' });
  });
});

describe('createRevocationList', () => {
  it('writes an X509 CRL signed by the CA listing the serials', async () => {
    const other = await issueMemberCertificate({ ca, memberIp: '192.0.2.9' });
    const upper = other.serial.toUpperCase().match(/../g)!.join(':');
    const pem = await createRevocationList({ ca, revokedSerials: [member.serial, { serial: upper, revokedAt: new Date('2026-06-01T00:00:00Z') }], thisUpdate: new Date('2026-07-01T00:00:00Z') });
    expect(pemBlocks(pem).map((b) => b.label)).toEqual(['X509 CRL']);
    const crl = parseCertificateList(pemToDer(pem, 'X509 CRL'));
    expect(crl.revokedSerials).toEqual([member.serial, other.serial]);
    expect(crl.thisUpdateMs).toBe(Date.UTC(2026, 6, 1));
    expect(crl.nextUpdateMs).toBe(Date.UTC(2026, 6, 1) + 365 * 86_400_000);
    expect(verify('sha256', crl.tbs, createPublicKey(ca.certPem), crl.signature)).toBe(true);
    // Our reader agrees with the library's own parser.
    const x509 = await loadX509();
    const theirs = new x509.X509Crl(pemToDer(pem, 'X509 CRL'));
    expect(theirs.entries.map((e) => canonicalSerial(e.serialNumber))).toEqual([member.serial, other.serial]);
    expect(await theirs.verify({ publicKey: new x509.X509Certificate(ca.certPem) })).toBe(true);
  });

  it('writes an empty list', async () => {
    const pem = await createRevocationList({ ca, revokedSerials: [], thisUpdate: new Date('2026-07-01T00:00:00Z') });
    expect(parseCertificateList(pemToDer(pem, 'X509 CRL')).revokedSerials).toEqual([]);
  });

  it('rejects a serial that is not hex', async () => {
    await expect(createRevocationList({ ca, revokedSerials: ['xyz'], thisUpdate: new Date() })).rejects.toMatchObject({ code: 'bad-serial' });
  });
});

describe('PEM and serial helpers', () => {
  it('round-trips DER through PEM and reads chain files', () => {
    const der = pemToDer(member.certPem, 'CERTIFICATE');
    expect(derToPem(der, 'CERTIFICATE')).toBe(member.certPem);
    const chain = certificateChainFromPem(`leaf:\n${member.certPem}\n${ca.keyPem}\nCA:\n${ca.certPem}`);
    expect(chain).toHaveLength(2);
    expect(Buffer.from(chain[0]!).equals(Buffer.from(pemToDer(member.certPem, 'CERTIFICATE')))).toBe(true);
    expect(Buffer.from(chain[1]!).equals(Buffer.from(pemToDer(ca.certPem, 'CERTIFICATE')))).toBe(true);
    expect(() => pemToDer(ca.keyPem, 'CERTIFICATE')).toThrow(/BEGIN CERTIFICATE/);
  });

  it('canonicalizes serials', () => {
    expect(canonicalSerial('00:8F:1A')).toBe('8f1a');
    expect(canonicalSerial('0A')).toBe('0a');
    expect(canonicalSerial('a')).toBe('0a');
    expect(canonicalSerial('0000')).toBe('00');
  });
});
