// The observability kit against the members' real /metrics output: Prometheus naming (promtool check
// metrics), who exports what, build info and certificate expiry, the read-only metrics token, the log ring
// and the redacted member configuration, and the alert rules and Grafana dashboard in
// appliance/observability (promtool check rules / test rules; every metric they query is exported).
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createTestPki, type TestPki } from '@gwcluster/security';
import { arraySessions } from '../../src/operator/providers.js';
import { buildAdminServer } from '../../src/operator/server.js';
import { LogRing } from '../../src/operator/log-ring.js';
import { REDACTED, redactSecrets } from '../../src/config/redact.js';
import { OperatorCluster, TOKEN, auth } from './operator-harness.js';

const IPS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const scraper = { authorization: `Bearer ${METRICS_TOKEN}` };
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const OBS = join(ROOT, 'appliance/observability');
const DAEMON_VERSION = (JSON.parse(readFileSync(join(ROOT, 'packages/daemon/package.json'), 'utf8')) as { version: string }).version;

function promtool(args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd: OBS, ...(input !== undefined ? { input } : {}), timeout: 30_000 });
  if (r.error) throw new Error(`promtool: ${r.error.message}; install the Debian package prometheus (scripts/apt-packages.txt)`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Metric families an exposition text declares (# TYPE), with or without samples at the moment. */
function families(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) /gm)].map((m) => m[1]!));
}

/** gwcluster metric names a PromQL expression reads. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(gwclusterd?_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

let pki: TestPki;
let c: OperatorCluster;
const scrapes = new Map<string, string>();

beforeAll(async () => {
  pki = await createTestPki(IPS);
  const unitPackets = new Array<number>(1024).fill(0);
  unitPackets[7] = 10;
  const unitDrops = new Array<number>(1024).fill(0);
  unitDrops[7] = 1;
  c = new OperatorCluster(pki, {
    metricsToken: METRICS_TOKEN,
    processMetrics: true,
    providers: {
      sessions: arraySessions(() => []),
      traffic: {
        unitPackets: () => unitPackets,
        unitBytes: () => unitPackets.map((p) => p * 100),
        unitDrops: () => unitDrops,
        holdQueue: () => ({ packets: 0, bytes: 0 }),
        drops: () => ({ truncated: 1 }),
      },
      sync: { backlog: () => 7, bytesSent: () => 1000, bytesReceived: () => 900 },
    },
  });
  for (const ip of IPS) c.add(ip).node.start();
  await c.run(3500);
  for (const ip of IPS) scrapes.set(ip, (await c.get(ip).api.inject({ url: '/metrics', headers: auth })).body);
}, 60_000);

afterAll(async () => {
  await c?.close();
});

describe('metrics', () => {
  it('every member passes promtool check metrics (names, units, _total counters, help)', () => {
    for (const [ip, text] of scrapes) {
      const r = promtool(['check', 'metrics'], text);
      expect(r.out, `${ip}: ${r.out}`).toBe('');
      expect(r.status, ip).toBe(0);
    }
  });

  it('promtool would catch a badly named metric (the check above can fail)', () => {
    const r = promtool(['check', 'metrics'], '# HELP gwcluster_member_keepalive_loss loss\n# TYPE gwcluster_member_keepalive_loss counter\ngwcluster_member_keepalive_loss 1\n');
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/_total/);
  });

  it('an aggregation over every member counts each fact once', () => {
    const all = [...scrapes.values()].join('\n');
    const samples = (name: string) => [...all.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => ({ labels: m[1] ?? '', value: Number(m[2]) }));
    expect(samples('gwcluster_member_units').reduce((s, x) => s + x.value, 0)).toBe(1024);
    expect(samples('gwcluster_is_master').reduce((s, x) => s + x.value, 0)).toBe(1);
    const master = c.master().ip;
    expect(samples('gwcluster_cluster_members')).toEqual([{ labels: `{member="${master}"}`, value: 3 }]);
    expect(samples('gwcluster_cluster_units').filter((x) => x.labels.includes('state="assigned"')).map((x) => x.value)).toEqual([1024]);
    // Every member MACs its unicasts once it knows the peer (client keepalives to the master) and signs
    // the rest (the master's keepalives are broadcast: signed).
    for (const method of ['signature', 'mac']) {
      const sent = samples('gwcluster_messages_authenticated_total').filter((x) => x.labels.includes(`method="${method}"`));
      expect(sent, method).toHaveLength(3);
      expect(sent.reduce((s, x) => s + x.value, 0), method).toBeGreaterThan(0);
    }
    // The master's estimate of each other member's loss: two series in all, none from the members.
    expect(samples('gwcluster_member_keepalive_loss_ratio')).toHaveLength(2);
    // Every per-member series is labelled with the member that exports it, and only that one.
    for (const [ip, text] of scrapes) {
      for (const name of ['gwcluster_member_units', 'gwcluster_epoch', 'gwcluster_packets_total', 'gwcluster_sync_backlog_entries', 'gwcluster_failovers_total']) {
        const members = [...text.matchAll(new RegExp(`^${name}\\{[^}]*member="([^"]+)"`, 'gm'))].map((m) => m[1]);
        expect(members, `${name} on ${ip}`).toEqual([ip]);
      }
    }
  });

  it('gwcluster_build_info: package version and protocol; certificate expiry of the member certificate and the CA', () => {
    for (const [ip, text] of scrapes) {
      expect(text).toContain(`gwcluster_build_info{version="${DAEMON_VERSION}",protocol="2"} 1`);
      const memberNotAfter = Math.floor(Date.parse(new X509Certificate(Buffer.from(pki.members[ip]!.chainDer[0]!)).validTo) / 1000);
      const caNotAfter = Math.floor(Date.parse(new X509Certificate(pki.ca.certPem).validTo) / 1000);
      expect(text).toContain(`gwcluster_certificate_expiry_timestamp_seconds{member="${ip}",certificate="member"} ${memberNotAfter}`);
      expect(text).toContain(`gwcluster_certificate_expiry_timestamp_seconds{member="${ip}",certificate="ca"} ${caNotAfter}`);
      expect(memberNotAfter).toBeGreaterThan(Date.now() / 1000);
    }
  });
});

describe('read-only metrics token (admin.metricsToken)', () => {
  it('scrapes /metrics and reads the cluster', async () => {
    const api = c.get(IPS[1]!).api;
    const m = await api.inject({ url: '/metrics', headers: scraper });
    expect(m.statusCode).toBe(200);
    expect(m.body).toMatch(/^gwcluster_build_info/m);
    expect((await api.inject({ url: '/v1/cluster', headers: scraper })).statusCode).toBe(200);
    expect((await api.inject({ url: '/v1/members', headers: scraper })).statusCode).toBe(200);
  });

  it('is refused (403 GW_FORBIDDEN) on every action, and on logs, member configuration and capture', async () => {
    const api = c.get(IPS[1]!).api;
    const refused: [string, string, unknown?][] = [
      ['POST', `/v1/members/${IPS[2]}/drain`],
      ['POST', `/v1/members/${IPS[2]}/leave`],
      ['POST', '/v1/rebalance'],
      ['PATCH', '/v1/config', { changes: { rebalanceIntervalMs: 3000 } }],
      ['PUT', '/v1/log-level', { level: 'debug' }],
      ['GET', '/v1/logs'],
      ['GET', '/v1/member-config'],
      ['GET', '/v1/capture?unit=1'],
    ];
    for (const [method, url, payload] of refused) {
      const r = await api.inject({ method: method as 'GET', url, headers: scraper, ...(payload ? { payload: payload as object } : {}) });
      expect(r.statusCode, `${method} ${url}`).toBe(403);
      expect(r.json()).toMatchObject({ code: 'GW_FORBIDDEN' });
      expect(r.json().message).toMatch(/read-only/);
    }
    // Nothing happened: still three undrained members at configuration version 1.
    const members = (await api.inject({ url: '/v1/members', headers: auth })).json() as { members: { draining: boolean }[] };
    expect(members.members.filter((m) => m.draining)).toEqual([]);
    expect(((await api.inject({ url: '/v1/config', headers: auth })).json() as { version: number }).version).toBe(1);
    // A wrong token is still 401; the admin token still reads the logs.
    expect((await api.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-token-wrong-0123456' } })).statusCode).toBe(401);
    expect((await api.inject({ url: '/v1/logs', headers: auth })).statusCode).toBe(200);
  });
});

describe('logs and member configuration for diagnostics', () => {
  it('GET /v1/logs serves the recent log lines; GET /v1/member-config redacts the tokens', async () => {
    const m = c.get(IPS[0]!);
    const ring = new LogRing({ maxLines: 5 });
    const logger = pino({ level: 'info' }, ring);
    for (let i = 0; i < 8; i++) logger.info({ i }, `line ${i}`);
    const config = { admin: { port: 7401, token: TOKEN, metricsToken: METRICS_TOKEN }, pki: { key: '/etc/gwcluster/member.key' } };
    const api = buildAdminServer({ node: m.node, channel: m.channel, logger: pino({ level: 'silent' }), token: TOKEN, logs: ring, memberConfig: () => redactSecrets(config) as Record<string, unknown> });
    try {
      const r = await api.inject({ url: '/v1/logs?limit=3', headers: auth });
      expect(r.statusCode).toBe(200);
      const body = r.json() as { member: string; lines: string[]; dropped: number };
      expect(body.member).toBe(IPS[0]);
      expect(body.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['line 5', 'line 6', 'line 7']);
      expect(body.dropped).toBe(3);
      const cfg = await api.inject({ url: '/v1/member-config', headers: auth });
      expect(cfg.json()).toEqual({ member: IPS[0], config: { admin: { port: 7401, token: REDACTED, metricsToken: REDACTED }, pki: { key: '/etc/gwcluster/member.key' } } });
      expect(cfg.body).not.toContain(TOKEN);
      expect(cfg.body).not.toContain(METRICS_TOKEN);
      expect((await api.inject({ url: '/v1/logs' })).statusCode).toBe(401);
    } finally {
      await api.close();
    }
  });

  it('LogRing keeps at most maxLines lines and maxBytes bytes, oldest out first', () => {
    const ring = new LogRing({ maxLines: 100, maxBytes: 1000 });
    for (let i = 0; i < 50; i++) ring.write(`${JSON.stringify({ i, pad: 'x'.repeat(80) })}\n`);
    const kept = ring.recent();
    expect(kept.reduce((s, l) => s + l.length, 0)).toBeLessThanOrEqual(1000);
    expect((JSON.parse(kept.at(-1)!) as { i: number }).i).toBe(49);
    expect(kept.length + ring.dropped).toBe(50);
    ring.write('y'.repeat(5000));
    expect(ring.recent(1)[0]!.length).toBe(1000);
    expect(() => new LogRing({ maxLines: 0 })).toThrow(/maxLines/);
  });

  it('redactSecrets replaces tokens, secrets and passwords at any depth and keeps everything else', () => {
    expect(redactSecrets({ a: { token: 'x', list: [{ password: 'p' }], port: 1 }, clientSecret: 's', key: '/path' })).toEqual({
      a: { token: REDACTED, list: [{ password: REDACTED }], port: 1 },
      clientSecret: REDACTED,
      key: '/path',
    });
  });
});

describe('appliance/observability: alert rules and Grafana dashboard', () => {
  const exported = () => {
    const s = new Set<string>();
    for (const t of scrapes.values()) for (const f of families(t)) s.add(f);
    return s;
  };

  it('the alert rules pass promtool check rules and their unit tests', () => {
    const check = promtool(['check', 'rules', 'gwcluster-alerts.yml']);
    expect(check.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(check.status).toBe(0);
    const test = promtool(['test', 'rules', 'gwcluster-alerts.test.yml']);
    expect(test.out).toMatch(/SUCCESS/);
    expect(test.status).toBe(0);
  });

  it('every metric the alert rules read is exported by the members', () => {
    const text = readFileSync(join(OBS, 'gwcluster-alerts.yml'), 'utf8');
    const exprs = [...text.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!);
    expect(exprs.length).toBeGreaterThanOrEqual(8);
    const have = exported();
    for (const e of exprs) for (const name of metricsIn(e)) expect(have.has(name), `${name} (in ${e})`).toBe(true);
    for (const alert of ['GwclusterMasterFlapping', 'GwclusterMemberLost', 'GwclusterUnitsUnassigned', 'GwclusterSyncBacklogGrowing', 'GwclusterCertificateExpiresSoon']) expect(text).toContain(`alert: ${alert}`);
  });

  it('every dashboard query is valid PromQL and reads only metrics the members export', () => {
    const dashboard = JSON.parse(readFileSync(join(OBS, 'gwcluster-dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThanOrEqual(20);
    const have = exported();
    for (const { panel, expr } of exprs) {
      const names = metricsIn(expr);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) expect(have.has(name), `${name} (panel "${panel}")`).toBe(true);
    }
    // PromQL syntax: the queries (Grafana variables filled in) as recording rules, checked by promtool.
    const dir = mkdtempSync(join(tmpdir(), 'gwcluster-dashboard-'));
    try {
      const rules = exprs.map(({ expr }, i) => `      - record: dashboard:q${i}\n        expr: ${JSON.stringify(expr.replaceAll('$__rate_interval', '1m').replaceAll('$member', '.*'))}`);
      writeFileSync(join(dir, 'q.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const r = promtool(['check', 'rules', join(dir, 'q.yml')]);
      expect(r.out).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
