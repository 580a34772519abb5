// gwctl pki list | revoke | renew on a real CA directory: what the CA issued, a signed revocation list
// that the member's TrustStore enforces, and renewals that keep the member's address (and key).
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustStore, canonicalSerial, certificateChainFromPem, derToPem, pemToDer, readRevocationList } from '@gwcluster/security';
import { CRL_FILE, createPersonality, initCa, listIssued, renderIssued, renewCertificate, revokeCertificates } from '../src/pki.js';

const GWCTL = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'gwctl.js');
const IPS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
let dir: string;
let caDir: string;
const serialOf = (file: string) => canonicalSerial(new X509Certificate(readFileSync(file)).serialNumber);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gwc-pki-'));
  caDir = join(dir, 'ca');
  await initCa({ dir: caDir, name: 'lifecycle CA', days: 3650, force: false });
  for (const [i, ip] of IPS.entries()) {
    await createPersonality({ caDir, out: join(dir, `m${i + 1}`), clusterName: 'pki', clusterIp: '198.51.100.10', memberIp: ip, prefixLength: 24, iface: 'eth0', days: 30 * (i + 1), configVersion: 1, force: false });
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const gwctl = (args: string[]) => spawnSync(process.execPath, [GWCTL, ...args], { encoding: 'utf8' });
const trustOf = () => new TrustStore({ caCertPem: readFileSync(join(caDir, 'ca.crt'), 'utf8'), crlPem: readFileSync(join(caDir, CRL_FILE), 'utf8') });
const chainOf = (m: string, file = 'member.crt') => certificateChainFromPem(readFileSync(join(dir, m, file), 'utf8'));

describe('gwctl pki list', () => {
  it('lists every certificate the CA issued with member IP, serial, not-after, days left; nothing revoked yet', () => {
    const entries = listIssued({ caDir });
    expect(entries.map((e) => [e.memberIp, e.daysLeft, e.revoked])).toEqual([
      [IPS[0], 29, false],
      [IPS[1], 59, false],
      [IPS[2], 89, false],
    ]);
    expect(entries[0]!.serial).toBe(serialOf(join(dir, 'm1', 'member.crt')));
    expect(entries[0]!.subject).toBe(`CN=member ${IPS[0]}`);
    const text = renderIssued(entries);
    expect(text.split('\n')[0]).toMatch(/^SERIAL +MEMBER IP +SUBJECT +NOT AFTER +DAYS LEFT +REVOKED$/);
    const run = gwctl(['pki', 'list', '--ca-dir', caDir, '--json']);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toHaveLength(3);
  });

  it('an empty or missing CA directory is a clear error or an empty list', async () => {
    const r = gwctl(['pki', 'list', '--ca-dir', join(dir, 'nope')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot read ca\.crt and ca\.key/);
    const empty = join(dir, 'empty-ca');
    await initCa({ dir: empty, name: 'empty', days: 10, force: false });
    expect(gwctl(['pki', 'list', '--ca-dir', empty]).stdout).toMatch(/no certificates recorded/);
  });
});

describe('gwctl pki revoke', () => {
  it('writes a CRL signed by the CA that refuses the revoked member and admits the others; earlier entries keep their dates', async () => {
    const r = await revokeCertificates({ caDir, memberIp: IPS[2]!, days: 30, now: new Date('2026-01-01T00:00:00Z') });
    expect(r).toMatchObject({ revoked: [serialOf(join(dir, 'm3', 'member.crt'))], total: 1 });
    const now = Date.now();
    expect(trustOf().verifyChain(chainOf('m3'), IPS[2]!, now)).toMatchObject({ ok: false, code: 'revoked' });
    expect(trustOf().verifyChain(chainOf('m1'), IPS[0]!, now).ok).toBe(true);
    expect(statSync(join(caDir, CRL_FILE)).mode & 0o777).toBe(0o644);
    const cli = gwctl(['pki', 'revoke', '--ca-dir', caDir, '--serial', serialOf(join(dir, 'm2', 'member.crt'))]);
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/2 certificate\(s\) on the list\nwrote .*crl\.pem\ninstall it as pki\.crl on every member, then: systemctl reload gwclusterd/);
    const list = readRevocationList(readFileSync(join(caDir, CRL_FILE), 'utf8'), readFileSync(join(caDir, 'ca.crt'), 'utf8'));
    expect(list.revoked.find((e) => e.serial === r.revoked[0])!.revokedAt.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(listIssued({ caDir }).map((e) => e.revoked)).toEqual([false, true, true]);
  });

  it('refuses unknown serials, bad input and a tampered CRL, and changes nothing', () => {
    const before = readFileSync(join(caDir, CRL_FILE), 'utf8');
    expect(gwctl(['pki', 'revoke', '--ca-dir', caDir, '--serial', 'abcdef'])).toMatchObject({ status: 2, stderr: expect.stringMatching(/no certificate with serial abcdef/) });
    expect(gwctl(['pki', 'revoke', '--ca-dir', caDir, '--serial', 'xyz'])).toMatchObject({ status: 2, stderr: expect.stringMatching(/not a hexadecimal serial/) });
    expect(gwctl(['pki', 'revoke', '--ca-dir', caDir])).toMatchObject({ status: 2, stderr: expect.stringMatching(/--serial SERIAL or --member-ip IP/) });
    expect(gwctl(['pki', 'revoke', '--ca-dir', caDir, '--member-ip', IPS[2]!])).toMatchObject({ status: 2, stderr: expect.stringMatching(/no unrevoked certificate for 192\.0\.2\.13/) });
    expect(readFileSync(join(caDir, CRL_FILE), 'utf8')).toBe(before);
    // One bit of the list's body flipped (inside its issuer name): the signature no longer holds.
    const der = pemToDer(before, 'X509 CRL');
    der[30] ^= 1;
    writeFileSync(join(caDir, CRL_FILE), derToPem(der, 'X509 CRL'));
    expect(gwctl(['pki', 'list', '--ca-dir', caDir])).toMatchObject({ status: 1, stderr: expect.stringMatching(/crl\.pem: revocation list/) });
    writeFileSync(join(caDir, CRL_FILE), before);
  });
});

describe('gwctl pki renew', () => {
  it('renews for the same key: same subject and member IP, new serial and dates, the member key still fits', async () => {
    const r = await renewCertificate({ caDir, memberIp: IPS[0]!, out: join(dir, 'renew-m1'), newKey: false, days: 400, force: false });
    expect(r.keyPath).toBeUndefined();
    expect(existsSync(join(dir, 'renew-m1', 'member.key'))).toBe(false);
    const renewed = new X509Certificate(readFileSync(r.certPath));
    const old = new X509Certificate(readFileSync(join(dir, 'm1', 'member.crt')));
    expect(renewed.subject).toBe(old.subject);
    expect(renewed.subjectAltName).toBe(`IP Address:${IPS[0]}`);
    expect(r.replaces).toBe(serialOf(join(dir, 'm1', 'member.crt')));
    expect(r.serial).not.toBe(r.replaces);
    expect(renewed.publicKey.export({ type: 'spki', format: 'der' }).equals(old.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    const { createPrivateKey } = await import('node:crypto');
    expect(renewed.checkPrivateKey(createPrivateKey(readFileSync(join(dir, 'm1', 'member.key'))))).toBe(true);
    expect(Math.round((Date.parse(renewed.validTo) - Date.now()) / 86_400_000)).toBe(400);
    expect(trustOf().verifyChain(chainOf('renew-m1'), IPS[0]!, Date.now()).ok).toBe(true);
    // Two unrevoked certificates for the member now: --member-ip is ambiguous.
    expect(gwctl(['pki', 'renew', '--ca-dir', caDir, '--member-ip', IPS[0]!, '--out', join(dir, 'x')])).toMatchObject({ status: 2, stderr: expect.stringMatching(/2 unrevoked certificates for 192\.0\.2\.11/) });
  });

  it('renews with a new key (0600) and refuses to overwrite without --force', async () => {
    const serial = listIssued({ caDir }).find((e) => e.memberIp === IPS[1])!.serial;
    const args = ['pki', 'renew', '--ca-dir', caDir, '--serial', serial, '--new-key', '--out', join(dir, 'renew-m2'), '--json'];
    const r = gwctl(args);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(statSync(out.keyPath).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(readFileSync(out.certPath));
    const { createPrivateKey } = await import('node:crypto');
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(out.keyPath)))).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(join(dir, 'm2', 'member.key'))))).toBe(false);
    expect(listIssued({ caDir }).filter((e) => e.memberIp === IPS[1]).map((e) => e.revoked)).toEqual([true, false]);
    expect(gwctl(args)).toMatchObject({ status: 5, stderr: expect.stringMatching(/already exist/) });
  });
});
