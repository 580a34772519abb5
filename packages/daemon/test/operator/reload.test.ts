// Reload (SIGHUP) of a member's configuration file, with real files, a real admin API (inject) and real
// signatures: what changes live, what is refused and kept, what needs a restart.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { MemoryNetwork } from '@gwcluster/cluster-core';
import { createRevocationList, createTestPki, issueMemberCertificate, type TestPki } from '@gwcluster/security';
import type { FastifyInstance } from 'fastify';
import { loadMemberConfig, parseMemberConfig } from '../../src/config/config.js';
import { loadCredentialsAndTrust } from '../../src/config/credentials.js';
import { CLUSTER_SETTING, NEEDS_RESTART, planReload } from '../../src/config/reload-plan.js';
import { NoClusterAddress } from '../../src/control/cluster-address.js';
import { MemberNode } from '../../src/control/member-node.js';
import { OperatorChannel } from '../../src/operator/operator-channel.js';
import { buildAdminServer } from '../../src/operator/server.js';
import { MemberReloader } from '../../src/reload.js';

const IP = '192.0.2.11';
const OLD = 'old-token-0123456789abcdef';
const NEW = 'new-token-0123456789abcdef';

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki([IP, '192.0.2.12']);
});

interface Setup {
  dir: string;
  file: string;
  raw: Record<string, any>;
  node: MemberNode;
  api: FastifyInstance;
  reloader: MemberReloader;
  write(raw: Record<string, any>): void;
}

let s: Setup;

beforeEach(() => {
  const dir = mkdtempSync(join(tmpdir(), 'gwc-reload-'));
  const m = pki.members[IP]!;
  writeFileSync(join(dir, 'member.crt'), m.certPem);
  writeFileSync(join(dir, 'member.key'), m.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);
  const raw = {
    cluster: { name: 'test', clusterIp: '198.51.100.10' },
    member: { address: IP, interface: 'eth0' },
    pki: { certificate: 'member.crt', key: 'member.key', ca: 'ca.crt' },
    admin: { token: OLD },
    clusterAddress: { mode: 'none' },
    logLevel: 'error',
  };
  const file = join(dir, 'member.json');
  const write = (r: Record<string, any>) => writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`, { mode: 0o600 });
  write(raw);
  const config = loadMemberConfig(file);
  const { credentials, trust } = loadCredentialsAndTrust(config);
  const node = new MemberNode({ config, credentials, transport: new MemoryNetwork().attach(IP), clusterAddress: new NoClusterAddress(), logger: pino({ level: 'silent' }), autoTick: false });
  const channel = new OperatorChannel({ node, autoTick: false, persist: false });
  const api = buildAdminServer({ node, channel, logger: pino({ level: 'silent' }), token: OLD });
  s = { dir, file, raw, node, api, reloader: new MemberReloader({ node, admin: api, credentials, trust }), write };
});

afterEach(async () => {
  await s.api.close();
  rmSync(s.dir, { recursive: true, force: true });
});

const status = async (token: string) => (await s.api.inject({ url: '/v1/cluster', headers: { authorization: `Bearer ${token}` } })).statusCode;

describe('reload', () => {
  it('a new admin token is accepted and the old one refused, from the next request', async () => {
    expect(await status(OLD)).toBe(200);
    s.write({ ...s.raw, admin: { token: NEW } });
    const r = s.reloader.reload();
    expect(r).toEqual({ ok: true, changed: ['admin.token'], notApplied: [] });
    expect(await status(NEW)).toBe(200);
    expect(await status(OLD)).toBe(401);
    expect(s.node.counters['reload.ok']).toBe(1);
    const event = s.node.recentEvents().at(-1)!;
    expect(event.kind).toBe('reload');
    expect(event.message).toContain('applied admin.token');
    expect(event.message).not.toContain(NEW);
  });

  it('a broken file (bad JSON, schema error, unreadable CRL, key of another member) changes nothing and is counted', async () => {
    const broken: [string, () => void, RegExp][] = [
      ['bad JSON', () => writeFileSync(s.file, '{"cluster": '), /not valid JSON/],
      ['schema', () => s.write({ ...s.raw, admin: { token: 'short' } }), /admin\.token/],
      ['missing CRL', () => s.write({ ...s.raw, admin: { token: NEW }, pki: { ...s.raw.pki, crl: 'nope.crl' } }), /nope\.crl: cannot read the revocation list/],
      [
        'foreign key',
        () => {
          writeFileSync(join(s.dir, 'other.key'), pki.members['192.0.2.12']!.keyPem, { mode: 0o600 });
          s.write({ ...s.raw, admin: { token: NEW }, pki: { ...s.raw.pki, key: 'other.key' } });
        },
        /does not belong to the member certificate/,
      ],
      ['CRL not from the CA', () => {
        writeFileSync(join(s.dir, 'bad.crl'), '-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n');
        s.write({ ...s.raw, admin: { token: NEW }, pki: { ...s.raw.pki, crl: 'bad.crl' } });
      }, /revocation list/],
    ];
    for (const [what, breakIt, why] of broken) {
      breakIt();
      const r = s.reloader.reload();
      expect(r.ok, what).toBe(false);
      expect(!r.ok && r.error, what).toMatch(why);
      expect(await status(OLD), what).toBe(200);
      expect(await status(NEW), what).toBe(401);
    }
    expect(s.node.counters['reload.failed']).toBe(broken.length);
    expect(s.node.recentEvents().at(-1)!.message).toMatch(/^reload refused, the running configuration is kept: /);
    // Fixed file: the next reload applies.
    s.write({ ...s.raw, admin: { token: NEW } });
    expect(s.reloader.reload().ok).toBe(true);
    expect(await status(NEW)).toBe(200);
  });

  it('a CRL that revokes this member\'s own certificate is refused; one that revokes a peer is adopted and reported', async () => {
    const own = await createRevocationList({ ca: pki.ca, revokedSerials: [pki.members[IP]!.serial], thisUpdate: new Date() });
    writeFileSync(join(s.dir, 'ca.crl'), own);
    s.write({ ...s.raw, pki: { ...s.raw.pki, crl: 'ca.crl' } });
    const refused = s.reloader.reload();
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error).toMatch(/own certificate is refused \(revoked\)/);
    const peer = pki.members['192.0.2.12']!.serial;
    writeFileSync(join(s.dir, 'ca.crl'), await createRevocationList({ ca: pki.ca, revokedSerials: [peer], thisUpdate: new Date() }));
    const r = s.reloader.reload();
    expect(r).toEqual({ ok: true, changed: [`pki.crl (1 revoked, newly revoked ${peer})`], notApplied: [] });
  });

  it('a renewed certificate for the same key is adopted; its serial is reported', async () => {
    const m = pki.members[IP]!;
    const { X509Certificate } = await import('node:crypto');
    const spki = new X509Certificate(m.certPem).publicKey.export({ type: 'spki', format: 'der' });
    const renewed = await issueMemberCertificate({ ca: pki.ca, memberIp: IP, publicKeySpkiDer: new Uint8Array(spki) });
    expect(renewed.keyPem).toBe('');
    writeFileSync(join(s.dir, 'member.crt'), renewed.certPem);
    const r = s.reloader.reload();
    expect(r.ok && r.changed).toEqual([`pki.certificate (serial ${m.serial} -> ${renewed.serial})`]);
  });

  it('restart-only and cluster fields are reported, not applied; live ones beside them are', () => {
    const period = s.node.config.cluster.keepalivePeriodMs;
    expect(period).not.toBe(300);
    s.write({ ...s.raw, member: { address: '192.0.2.99', interface: 'eth1' }, admin: { token: OLD, port: 7999 }, cluster: { ...s.raw.cluster, keepalivePeriodMs: 300 }, logLevel: 'warn' });
    const r = s.reloader.reload();
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.changed).toEqual(['logLevel']);
    expect(r.notApplied).toEqual([
      { field: 'admin.listen', reason: NEEDS_RESTART },
      { field: 'admin.port', reason: NEEDS_RESTART },
      { field: 'member.address', reason: NEEDS_RESTART },
      { field: 'member.interface', reason: NEEDS_RESTART },
      { field: 'member.name', reason: NEEDS_RESTART },
      { field: 'cluster.keepalivePeriodMs', reason: CLUSTER_SETTING },
    ]);
    expect(s.node.logLevel).toBe('warn');
    expect(s.node.config.member.address).toBe(IP);
    expect(s.node.config.admin.port).toBe(7401);
    expect(s.node.config.cluster.keepalivePeriodMs).toBe(period);
    expect(s.node.recentEvents().at(-1)!.message).toContain('not applied, needs restart (systemctl restart gwclusterd); the running value is kept: admin.listen, admin.port, member.address');
  });
});

describe('reload of the admin API certificate (HTTPS)', () => {
  it('a renewed certificate is served from the next TLS handshake on; a key that does not fit is refused and the old one kept', async () => {
    const { connect } = await import('node:tls');
    const { X509Certificate } = await import('node:crypto');
    const dir = mkdtempSync(join(tmpdir(), 'gwc-reload-tls-'));
    const m = pki.members[IP]!;
    writeFileSync(join(dir, 'member.crt'), m.certPem);
    writeFileSync(join(dir, 'member.key'), m.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);
    const file = join(dir, 'member.json');
    const raw = { ...s.raw, admin: { token: OLD, tls: {} } };
    writeFileSync(file, JSON.stringify(raw), { mode: 0o600 });
    const config = loadMemberConfig(file);
    const { credentials, trust } = loadCredentialsAndTrust(config);
    const node = new MemberNode({ config, credentials, transport: new MemoryNetwork().attach(IP), clusterAddress: new NoClusterAddress(), logger: pino({ level: 'silent' }), autoTick: false });
    const channel = new OperatorChannel({ node, autoTick: false, persist: false });
    const api = buildAdminServer({ node, channel, logger: pino({ level: 'silent' }), token: OLD, tls: config.admin.tls! });
    await api.listen({ host: '127.0.0.1', port: 0 });
    const port = (api.server.address() as { port: number }).port;
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const sock = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(new X509Certificate(sock.getPeerX509Certificate()!.raw).serialNumber.toLowerCase());
          sock.end();
        });
        sock.on('error', reject);
      });
    try {
      const reloader = new MemberReloader({ node, admin: api, credentials, trust });
      const canonical = (x: string) => x.replace(/^0+/, '');
      expect(canonical(await served())).toBe(canonical(m.serial));
      const spki = new X509Certificate(m.certPem).publicKey.export({ type: 'spki', format: 'der' });
      const renewed = await issueMemberCertificate({ ca: pki.ca, memberIp: IP, publicKeySpkiDer: new Uint8Array(spki) });
      writeFileSync(join(dir, 'member.crt'), renewed.certPem);
      const r = reloader.reload();
      expect(r.ok && r.changed).toEqual([`pki.certificate (serial ${m.serial} -> ${renewed.serial})`, 'admin.tls files']);
      expect(canonical(await served())).toBe(canonical(renewed.serial));
      writeFileSync(join(dir, 'api.key'), pki.members['192.0.2.12']!.keyPem, { mode: 0o600 });
      writeFileSync(file, JSON.stringify({ ...raw, admin: { token: OLD, tls: { key: 'api.key' } } }), { mode: 0o600 });
      const refused = reloader.reload();
      expect(refused.ok).toBe(false);
      expect(!refused.ok && refused.error).toMatch(/admin\.tls .*not a usable certificate, key and CA/);
      expect(canonical(await served())).toBe(canonical(renewed.serial));
    } finally {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('planReload (pure)', () => {
  const base = {
    cluster: { name: 'test', clusterIp: '198.51.100.10' },
    member: { address: IP, interface: 'eth0' },
    pki: { certificate: '/p/member.crt', key: '/p/member.key', ca: '/p/ca.crt' },
    admin: { token: OLD, tls: {} },
  };
  const parse = (raw: unknown) => parseMemberConfig(raw, '/p/member.json', '/p');

  it('applies pki, token, TLS files, applications and log level; keeps TLS on/off and client certificates as they run', () => {
    const now = parse(base);
    const next = parse({
      ...base,
      pki: { ...base.pki, crl: 'ca.crl', allowedCertificates: [] },
      admin: { tls: { certificate: 'api.crt', key: 'api.key', requireClientCertificate: true } },
      applications: [{ name: 'deny-list', deny: ['192.0.2.13'] }],
      dataplane: { interfaces: [{ name: 'eth0', clusterIps: ['198.51.100.10'] }] },
    });
    const plan = planReload(now, next);
    expect(plan.changed).toEqual(['pki.crl', 'pki.allowedCertificates', 'admin.token', 'admin.tls.certificate', 'admin.tls.key', 'applications']);
    expect(plan.notApplied.map((n) => n.field)).toEqual(['admin.tls.requireClientCertificate', 'dataplane']);
    expect(plan.config.admin.token).toBeUndefined();
    expect(plan.config.admin.tls).toEqual({ certificate: '/p/api.crt', key: '/p/api.key', ca: '/p/ca.crt', requireClientCertificate: false });
    expect(plan.config.dataplane).toBeUndefined();
    expect(plan.config.pki.crl).toBe('/p/ca.crl');
    expect(planReload(now, parse(base))).toMatchObject({ changed: [], notApplied: [] });
    expect(planReload(now, parse({ ...base, admin: { token: OLD } })).notApplied).toEqual([{ field: 'admin.tls', reason: NEEDS_RESTART }]);
  });

  it('applies tunnels.wireguard (the endpoint is restarted with the new section, its key path made absolute)', () => {
    const dataplane = { interfaces: [{ name: 'eth0', clusterIps: ['198.51.100.10'] }] };
    const now = parse({ ...base, dataplane });
    const wireguard = { privateKeyFile: 'wg.key', peers: [{ publicKey: Buffer.alloc(32, 1).toString('base64'), allowedIps: ['203.0.113.64/28'] }] };
    const plan = planReload(now, parse({ ...base, dataplane, tunnels: { wireguard } }));
    expect(plan.changed).toEqual(['tunnels.wireguard']);
    expect(plan.notApplied).toEqual([]);
    expect(plan.config.tunnels?.wireguard).toMatchObject({ enabled: true, listenPort: 51820, privateKeyFile: '/p/wg.key', interface: 'gwwg0' });
    expect(planReload(plan.config, parse({ ...base, dataplane })).config.tunnels).toBeUndefined();
  });
});
