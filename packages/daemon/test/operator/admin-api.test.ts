// The admin API through inject(): every route, with bad input and missing or wrong credentials, on a
// three-member cluster over the in-memory network (real signatures, simulated time).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createTestPki, type TestPki } from '@gwcluster/security';
import { arraySessions, type SessionRecord } from '../../src/operator/providers.js';
import { buildAdminServer } from '../../src/operator/server.js';
import type { TunnelsView } from '../../src/tunnels/tunnels-view.js';
import { OperatorCluster, TOKEN, auth } from './operator-harness.js';

const IPS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const EXTRA = '192.0.2.14';

/** Every route, as [method, url, body?]: used to check that each one refuses missing or wrong credentials. */
const ROUTES: [string, string, unknown?][] = [
  ['GET', '/v1/cluster'],
  ['GET', '/v1/members'],
  ['GET', `/v1/members/${IPS[1]}`],
  ['GET', '/v1/units'],
  ['GET', '/v1/units/7'],
  ['GET', '/v1/sessions'],
  ['GET', '/v1/counters'],
  ['GET', '/v1/tunnels'],
  ['GET', '/v1/events'],
  ['GET', '/v1/stream?once=true'],
  ['GET', '/v1/config'],
  ['PATCH', '/v1/config', { changes: { rebalanceIntervalMs: 3000 } }],
  ['POST', `/v1/members/${IPS[1]}/drain`],
  ['POST', `/v1/members/${IPS[1]}/undrain`],
  ['POST', `/v1/members/${IPS[1]}/leave`],
  ['POST', `/v1/members/${IPS[1]}/join`],
  ['POST', '/v1/rebalance'],
  ['GET', '/v1/log-level'],
  ['PUT', '/v1/log-level', { level: 'debug' }],
  ['GET', '/metrics'],
];

const sessions: SessionRecord[] = Array.from({ length: 25 }, (_, i) => ({
  id: `tcp:192.0.2.${50 + (i % 5)}:${40000 + i}>198.51.100.10:443`,
  protocol: 'tcp',
  srcAddress: `192.0.2.${50 + (i % 5)}`,
  srcPort: 40000 + i,
  dstAddress: '198.51.100.10',
  dstPort: 443,
  unit: i * 40,
  member: IPS[i % 3]!,
  since: '2026-06-01T00:00:00.000Z',
  packets: i,
  bytes: i * 100,
}));

const PEER_KEY = Buffer.alloc(32, 1).toString('base64');
/** What a running WireGuard endpoint reports (the real one runs in test/e2e/wireguard-cluster.e2e.test.ts). */
const TUNNELS: TunnelsView = {
  enabled: true, running: true, publicKey: Buffer.alloc(32, 2).toString('base64'), listenAddress: '198.51.100.10', listenPort: 51820, interface: 'gwwg0',
  peers: [
    { publicKey: PEER_KEY, name: 'branch-1', allowedIps: ['203.0.113.64/28'], endpoint: '198.51.100.21:40000', unit: 77, owner: IPS[1]!, latestHandshake: '2026-06-01T00:00:00.000Z', rxBytes: 5000, rxPackets: 40, txBytes: 6000, txPackets: 41 },
    { publicKey: Buffer.alloc(32, 3).toString('base64'), allowedIps: ['203.0.113.80/28'], endpoint: null, unit: null, owner: null, latestHandshake: null, rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0 },
  ],
  drops: { handshake: { 'bad-mac1': 2 }, transport: { 'unknown-index': 1 } },
};

let pki: TestPki;
let c: OperatorCluster;

beforeAll(async () => {
  pki = await createTestPki([...IPS, EXTRA]);
  const unitPackets = new Array<number>(1024).fill(0);
  unitPackets[5] = 42;
  c = new OperatorCluster(pki, {
    requestTimeoutMs: 1500,
    providers: {
      sessions: arraySessions(() => sessions),
      traffic: {
        unitPackets: () => unitPackets,
        unitBytes: () => unitPackets.map((p) => p * 100),
        unitDrops: () => new Array(1024).fill(0),
        holdQueue: () => ({ packets: 3, bytes: 300 }),
        drops: () => ({ truncated: 1 }),
      },
      sync: null,
      tunnels: { view: () => TUNNELS },
    },
  });
  for (const ip of IPS) c.add(ip).node.start();
  await c.run(3500);
}, 30_000);

afterAll(async () => {
  await c?.close();
});

describe('authentication', () => {
  it('refuses every route without a token (401 GW_UNAUTHORIZED) and with a wrong one', async () => {
    const api = c.get(IPS[0]!).api;
    for (const [method, url, body] of ROUTES) {
      const none = await api.inject({ method: method as 'GET', url, ...(body ? { payload: body as object } : {}) });
      expect(none.statusCode, `${method} ${url}`).toBe(401);
      expect(none.json()).toMatchObject({ code: 'GW_UNAUTHORIZED' });
      expect(none.json().message).toMatch(/missing bearer token/);
      const wrong = await api.inject({ method: method as 'GET', url, headers: { authorization: 'Bearer not-the-token-at-all' }, ...(body ? { payload: body as object } : {}) });
      expect(wrong.statusCode, `${method} ${url}`).toBe(401);
      expect(wrong.json().message).toMatch(/wrong bearer token/);
    }
  });

  it('serves /healthz, /openapi.json and the dashboard page without credentials', async () => {
    const api = c.get(IPS[0]!).api;
    // Anonymous callers learn that the member is alive, not who is master; the token holder gets the role.
    expect((await api.inject('/healthz')).json()).toEqual({ ok: true });
    expect((await api.inject({ url: '/healthz', headers: { authorization: 'Bearer not-the-token-at-all' } })).json()).toEqual({ ok: true });
    expect((await api.inject({ url: '/healthz', headers: auth })).json()).toEqual({ ok: true, role: 'master' });
    // Readiness: in the cluster, holding the state (no state sync here), no data plane to wait for.
    const ready = await api.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true, checks: { cluster: true, state: true, dataplane: true } });
    const live = await api.inject('/livez');
    expect(live.statusCode).toBe(200);
    expect(live.json()).toMatchObject({ ok: true });
    // Every answer names the admin API version, errors included.
    expect(ready.headers['gwcluster-api-version']).toBe('1');
    expect((await api.inject('/v1/cluster')).headers['gwcluster-api-version']).toBe('1');
    expect((await api.inject('/openapi.json')).statusCode).toBe(200);
    const page = await api.inject('/dashboard');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('id="units"');
  });

  it('/readyz is 503 while the data plane is down; /livez is 503 when the event loop stalls', async () => {
    const m = c.get(IPS[0]!);
    const stalled = { recentMaxDelayMs: () => 3500.04, stalled: () => true };
    const down = buildAdminServer({ node: m.node, channel: m.channel, logger: pino({ level: 'silent' }), dataPlane: { running: false }, eventLoop: stalled });
    try {
      const ready = await down.inject('/readyz');
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ ready: false, checks: { cluster: true, state: true, dataplane: false } });
      const live = await down.inject('/livez');
      expect(live.statusCode).toBe(503);
      expect(live.json()).toEqual({ ok: false, eventLoopDelayMs: 3500 });
    } finally {
      await down.close();
    }
  });

  it('without admin.token the API is read-only: reads work, actions are 403 GW_FORBIDDEN', async () => {
    const m = c.get(IPS[0]!);
    const ro = buildAdminServer({ node: m.node, channel: m.channel, logger: pino({ level: 'silent' }) });
    try {
      expect((await ro.inject('/v1/cluster')).statusCode).toBe(200);
      const r = await ro.inject({ method: 'POST', url: '/v1/rebalance' });
      expect(r.statusCode).toBe(403);
      expect(r.json()).toMatchObject({ code: 'GW_FORBIDDEN' });
      expect(r.json().message).toMatch(/admin\.token/);
    } finally {
      await ro.close();
    }
  });
});

describe('OpenAPI document', () => {
  it('documents every route with its parameters and every response status', async () => {
    const doc = (await c.get(IPS[1]!).api.inject('/openapi.json')).json();
    expect(doc.openapi).toMatch(/^3\./);
    const paths = Object.keys(doc.paths);
    for (const p of ['/v1/cluster', '/v1/members', '/v1/members/{member}', '/v1/units', '/v1/units/{unit}', '/v1/sessions', '/v1/counters', '/v1/tunnels', '/v1/events', '/v1/stream', '/v1/config', '/v1/members/{member}/drain', '/v1/rebalance', '/v1/log-level', '/metrics', '/healthz', '/livez', '/readyz']) {
      expect(paths).toContain(p);
    }
    const drain = doc.paths['/v1/members/{member}/drain'].post;
    expect(Object.keys(drain.responses)).toEqual(expect.arrayContaining(['202', '400', '401', '404', '409', '503', '504']));
    expect(drain.parameters[0]).toMatchObject({ name: 'member', in: 'path' });
    const sessionsDoc = doc.paths['/v1/sessions'].get;
    expect(sessionsDoc.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['address', 'limit', 'member', 'offset', 'port', 'unit']);
  });
});

describe('reads', () => {
  it('every member answers the same cluster: master, epoch, configuration version, keepalive, members', async () => {
    const views = await Promise.all(IPS.map(async (ip) => (await c.get(ip).api.inject({ url: '/v1/cluster', headers: auth })).json()));
    const master = c.master().ip;
    for (const v of views) {
      expect(v.master).toBe(master);
      expect(v.epoch).toBe(views[0].epoch);
      expect(v.configVersion).toBe(1);
      expect(v.keepalivePeriodMs).toBe(40);
      expect(v.members.map((m: { id: string }) => m.id).sort()).toEqual(IPS);
      expect(v.units.assigned).toBe(1024);
    }
    expect(views.reduce((a, v) => a + v.units.ownedHere, 0)).toBe(1024);
    const members = (await c.get(IPS[2]!).api.inject({ url: '/v1/members', headers: auth })).json();
    expect(members.master).toBe(master);
    for (const m of members.members) {
      expect(m).toMatchObject({ role: m.id === master ? 'master' : 'member', draining: false });
      expect(m.units).toBeGreaterThan(300);
      expect(m.loss).toBe(0);
      expect(typeof m.lastHeardMsAgo).toBe('number');
    }
  });

  it('one member: 200, unknown member 404, not an address 400 naming the parameter', async () => {
    const api = c.get(IPS[1]!).api;
    expect((await api.inject({ url: `/v1/members/${IPS[2]}`, headers: auth })).json()).toMatchObject({ id: IPS[2] });
    const missing = await api.inject({ url: '/v1/members/192.0.2.99', headers: auth });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'GW_NOT_FOUND' });
    const bad = await api.inject({ url: '/v1/members/not-an-ip', headers: auth });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('GW_BAD_REQUEST');
    expect(bad.json().message).toMatch(/member: must be a dotted-quad IPv4 address/);
  });

  it('the unit table and one unit; a unit outside 0..1023 is refused', async () => {
    const api = c.get(IPS[2]!).api;
    const units = (await api.inject({ url: '/v1/units', headers: auth })).json();
    expect(units.owners).toHaveLength(1024);
    const one = (await api.inject({ url: '/v1/units/7', headers: auth })).json();
    expect(one).toEqual({ unit: 7, owner: units.owners[7], tableVersion: units.tableVersion });
    const bad = await api.inject({ url: '/v1/units/1024', headers: auth });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/unit/);
    // Only decimal digits: no exponent, hexadecimal, sign, leading zero or fraction.
    for (const u of ['1e3', '0x10', '+7', '07', '7.0', '-1', '']) {
      const r = await api.inject({ url: `/v1/units/${u}`, headers: auth });
      expect(r.statusCode, u).toBe(400);
      expect(r.json().code, u).toBe('GW_BAD_REQUEST');
    }
    expect((await api.inject({ url: '/v1/units/1023', headers: auth })).json().unit).toBe(1023);
    expect((await api.inject({ url: '/v1/units/0', headers: auth })).json().unit).toBe(0);
  });

  it('tunnels: the endpoint, each peer with its owner and counters, drops by reason; and their metrics', async () => {
    const api = c.get(IPS[0]!).api;
    const r = (await api.inject({ url: '/v1/tunnels', headers: auth })).json();
    expect(r).toEqual({ member: IPS[0], ...TUNNELS });
    const m = (await api.inject({ url: '/metrics', headers: auth })).body;
    expect(m).toContain(`gwcluster_tunnel_received_bytes_total{member="${IPS[0]}",peer="${PEER_KEY}"} 5000`);
    expect(m).toContain(`gwcluster_tunnel_sent_packets_total{member="${IPS[0]}",peer="${PEER_KEY}"} 41`);
    expect(m).toContain(`gwcluster_tunnel_latest_handshake_seconds{member="${IPS[0]}",peer="${PEER_KEY}"} ${Date.parse('2026-06-01T00:00:00.000Z') / 1000}`);
    expect(m).toContain(`gwcluster_tunnel_dropped_packets_total{member="${IPS[0]}",stage="handshake",reason="bad-mac1"} 2`);
    expect(m).toContain(`gwcluster_tunnel_dropped_packets_total{member="${IPS[0]}",stage="transport",reason="unknown-index"} 1`);
  });

  it('sessions: paged and filtered by address, port, unit and member; bad filters are 400', async () => {
    const api = c.get(IPS[0]!).api;
    const p1 = (await api.inject({ url: '/v1/sessions?limit=10', headers: auth })).json();
    expect(p1).toMatchObject({ total: 25, offset: 0, limit: 10, next: 10 });
    expect(p1.sessions).toHaveLength(10);
    const p3 = (await api.inject({ url: '/v1/sessions?limit=10&offset=20', headers: auth })).json();
    expect(p3).toMatchObject({ total: 25, next: null });
    expect(p3.sessions).toHaveLength(5);
    expect((await api.inject({ url: '/v1/sessions?address=192.0.2.51', headers: auth })).json().total).toBe(5);
    expect((await api.inject({ url: '/v1/sessions?port=40003', headers: auth })).json().total).toBe(1);
    expect((await api.inject({ url: '/v1/sessions?unit=40', headers: auth })).json().sessions[0].srcPort).toBe(40001);
    expect((await api.inject({ url: `/v1/sessions?member=${IPS[1]}`, headers: auth })).json().total).toBe(8);
    for (const q of ['port=70000', 'unit=-1', 'unit=1e3', 'unit=0x10', 'unit=1024', 'address=nowhere', 'limit=0', 'limit=5000', 'member=x']) {
      const r = await api.inject({ url: `/v1/sessions?${q}`, headers: auth });
      expect(r.statusCode, q).toBe(400);
      expect(r.json().code).toBe('GW_BAD_REQUEST');
    }
  });

  it('counters and events (limit, after); a bad limit is 400', async () => {
    const api = c.get(IPS[1]!).api;
    const counters = (await api.inject({ url: '/v1/counters', headers: auth })).json();
    expect(counters.member).toBe(IPS[1]);
    expect(counters.counters['core.rx.master-keepalive']).toBeGreaterThan(10);
    expect(counters.counters['auth.ok']).toBeGreaterThan(10);
    const ev = (await api.inject({ url: '/v1/events?limit=3', headers: auth })).json();
    expect(ev.events.length).toBeLessThanOrEqual(3);
    const all = (await api.inject({ url: '/v1/events', headers: auth })).json().events;
    expect(all.some((e: { kind: string }) => e.kind === 'role')).toBe(true);
    const after = (await api.inject({ url: `/v1/events?after=${all[0].id}`, headers: auth })).json().events;
    expect(after.length).toBe(all.length - 1);
    expect((await api.inject({ url: '/v1/events?limit=0', headers: auth })).statusCode).toBe(400);
  });

  it('the stream: server-sent events with the recent events and a snapshot of the cluster', async () => {
    const r = await c.get(IPS[2]!).api.inject({ url: '/v1/stream?once=true', headers: auth });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/event-stream/);
    const blocks = r.body.trim().split('\n\n');
    const snapshot = blocks.find((b) => b.startsWith('event: snapshot'))!;
    const data = JSON.parse(snapshot.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
    expect(data.table).toHaveLength(1024);
    expect(data.members.map((m: { id: string }) => m.id).sort()).toEqual(IPS);
    expect(blocks.some((b) => b.includes('event: event'))).toBe(true);
  });

  it('configuration: version, live settings, fixed fields', async () => {
    const cfg = (await c.get(IPS[0]!).api.inject({ url: '/v1/config', headers: auth })).json();
    expect(cfg.version).toBe(1);
    expect(cfg.settings.keepalivePeriodMs).toBe(40);
    expect(cfg.fixed).toEqual({ name: 'test', clusterIp: '198.51.100.10', port: 7400, maxClockSkewMs: 30000 });
    expect(cfg.liveFields).toContain('rebalanceIntervalMs');
  });

  it('log level: read and changed at run time; an unknown level is 400', async () => {
    const api = c.get(IPS[1]!).api;
    expect((await api.inject({ url: '/v1/log-level', headers: auth })).json()).toEqual({ level: 'silent' });
    const put = await api.inject({ method: 'PUT', url: '/v1/log-level', headers: auth, payload: { level: 'error' } });
    expect(put.json()).toEqual({ level: 'error' });
    expect(c.get(IPS[1]!).node.logLevel).toBe('error');
    const bad = await api.inject({ method: 'PUT', url: '/v1/log-level', headers: auth, payload: { level: 'loud' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/level/);
    await api.inject({ method: 'PUT', url: '/v1/log-level', headers: auth, payload: { level: 'silent' } });
  });

  it('Prometheus metrics: own units and load per member, cluster facts from the master only, per-unit traffic from the data-plane provider', async () => {
    const r = await c.get(IPS[0]!).api.inject({ url: '/metrics', headers: auth });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/plain/);
    const text = r.body;
    expect(text).toMatch(/gwcluster_keepalive_interval_seconds\{member="192\.0\.2\.11"\} 0\.04/);
    expect(text).toMatch(/gwcluster_unit_packets_total\{member="192\.0\.2\.11",unit="5"\} 42/);
    expect(text).toMatch(/gwcluster_packets_total\{member="192\.0\.2\.11"\} 42/);
    expect(text).toMatch(/gwcluster_hold_queue_packets\{member="192\.0\.2\.11"\} 3/);
    expect(text).toMatch(/gwcluster_sessions\{member="192\.0\.2\.11"\} 25/);
    expect(text).toMatch(/gwcluster_failovers_total\{member="192\.0\.2\.11"\} 0/);
    // Each member exports its own row only: the sum over the members is the whole table.
    let units = 0;
    for (const ip of IPS) {
      const t = (await c.get(ip).api.inject({ url: '/metrics', headers: auth })).body;
      const own = [...t.matchAll(/^gwcluster_member_units\{member="([^"]+)"\} (\d+)$/gm)];
      expect(own.map((m) => m[1])).toEqual([ip]);
      units += Number(own[0]![2]);
      const isMaster = ip === c.master().ip;
      expect(t).toMatch(new RegExp(`^gwcluster_is_master\\{member="${ip.replaceAll('.', '\\.')}"\\} ${isMaster ? 1 : 0}$`, 'm'));
      expect(/^gwcluster_cluster_units\{member="[^"]+",state="assigned"\} 1024$/m.test(t)).toBe(isMaster);
      expect(/^gwcluster_cluster_members\{member="[^"]+"\} 3$/m.test(t)).toBe(isMaster);
      // The master's loss estimate of each other member, from the master only.
      const loss = [...t.matchAll(/^gwcluster_member_keepalive_loss_ratio\{member="([^"]+)"\} 0$/gm)].map((m) => m[1]).sort();
      expect(loss).toEqual(isMaster ? IPS.filter((x) => x !== ip).sort() : []);
    }
    expect(units).toBe(1024);
  });

  it('an unknown route is 404 GW_NOT_FOUND pointing to the OpenAPI document', async () => {
    const r = await c.get(IPS[0]!).api.inject({ url: '/v1/nothing', headers: auth });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ code: 'GW_NOT_FOUND' });
    expect(r.json().message).toMatch(/openapi\.json/);
  });
});

describe('actions', () => {
  it('drain through a member that is not master: forwarded to the master; every member sees the member drained', async () => {
    const master = c.master().ip;
    const [via, victim] = IPS.filter((ip) => ip !== master) as [string, string];
    const r = await c.during(c.get(via).api.inject({ method: 'POST', url: `/v1/members/${victim}/drain`, headers: auth }));
    expect(r.statusCode).toBe(202);
    expect(r.json()).toMatchObject({ action: 'drain', member: victim, doneBy: master, forwarded: true });
    await c.run(1000);
    for (const ip of IPS) {
      const m = (await c.get(ip).api.inject({ url: `/v1/members/${victim}`, headers: auth })).json();
      expect(m).toMatchObject({ units: 0, draining: true });
    }
    expect(c.get(master).node.recentEvents().some((e) => e.kind === 'operator' && e.message.includes(`drain ${victim}`))).toBe(true);
    // Draining the two others too would leave nobody to take the units.
    const other = IPS.find((ip) => ip !== master && ip !== victim)!;
    const first = await c.during(c.get(via).api.inject({ method: 'POST', url: `/v1/members/${other}/drain`, headers: auth }));
    expect(first.statusCode).toBe(202);
    await c.run(500);
    const last = await c.during(c.get(via).api.inject({ method: 'POST', url: `/v1/members/${master}/drain`, headers: auth }));
    expect(last.statusCode).toBe(409);
    expect(last.json()).toMatchObject({ code: 'GW_REFUSED' });
    expect(last.json().message).toMatch(/no other member/);
    for (const ip of [victim, other]) {
      const u = await c.during(c.get(via).api.inject({ method: 'POST', url: `/v1/members/${ip}/undrain`, headers: auth }));
      expect(u.statusCode).toBe(202);
    }
    const rb = await c.during(c.get(victim).api.inject({ method: 'POST', url: '/v1/rebalance', headers: auth }));
    expect(rb.statusCode).toBe(202);
    expect(rb.json()).toMatchObject({ action: 'rebalance', doneBy: master });
    await c.run(3000);
    const members = (await c.get(victim).api.inject({ url: '/v1/members', headers: auth })).json().members as { units: number; draining: boolean }[];
    expect(members.every((m) => !m.draining && m.units >= 341)).toBe(true);
  });

  it('drain of a member that is not in the cluster is 404; a bad address is 400', async () => {
    const r = await c.during(c.get(IPS[1]!).api.inject({ method: 'POST', url: '/v1/members/192.0.2.99/drain', headers: auth }));
    expect(r.statusCode).toBe(404);
    expect(r.json().message).toMatch(/192\.0\.2\.99 is not a member/);
    const bad = await c.get(IPS[1]!).api.inject({ method: 'POST', url: '/v1/members/999.1.1.1/drain', headers: auth });
    expect(bad.statusCode).toBe(400);
  });

  it('leave and join are forwarded to the member concerned; leaving twice is refused', async () => {
    const master = c.master().ip;
    const target = IPS.find((ip) => ip !== master)!;
    const via = IPS.find((ip) => ip !== master && ip !== target)!;
    const r = await c.during(c.get(via).api.inject({ method: 'POST', url: `/v1/members/${target}/leave`, headers: auth }));
    expect(r.statusCode).toBe(202);
    expect(r.json()).toMatchObject({ doneBy: target, forwarded: true });
    await c.run(500);
    expect(c.get(target).node.core.role).toBe('left');
    expect(c.get(master).node.status().members.map((m) => m.id)).not.toContain(target);
    // A member that left is not healthy and not ready (503), whoever asks.
    const health = await c.get(target).api.inject('/healthz');
    expect(health.statusCode).toBe(503);
    expect(health.json()).toEqual({ ok: false });
    const ready = await c.get(target).api.inject({ url: '/readyz', headers: auth });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ ready: false, checks: { cluster: false, state: true, dataplane: true }, role: 'left' });
    const again = await c.during(c.get(via).api.inject({ method: 'POST', url: `/v1/members/${target}/leave`, headers: auth }));
    expect(again.statusCode).toBe(409);
    const join = await c.during(c.get(master).api.inject({ method: 'POST', url: `/v1/members/${target}/join`, headers: auth }));
    expect(join.statusCode).toBe(202);
    await c.run(3000);
    expect(c.get(target).node.core.role).toBe('member');
    const joinAgain = await c.during(c.get(master).api.inject({ method: 'POST', url: `/v1/members/${target}/join`, headers: auth }));
    expect(joinAgain.statusCode).toBe(409);
  });

  it('an action forwarded to a member that does not answer fails with 504 GW_FORWARD_TIMEOUT', async () => {
    const master = c.master().ip;
    const target = IPS.find((ip) => ip !== master)!;
    c.hub.drop = (d) => d.to === target && d.from === master;
    try {
      const r = await c.during(c.get(master).api.inject({ method: 'POST', url: `/v1/members/${target}/leave`, headers: auth }), 2000);
      expect(r.statusCode).toBe(504);
      expect(r.json()).toMatchObject({ code: 'GW_FORWARD_TIMEOUT' });
    } finally {
      c.hub.drop = () => false;
    }
    await c.run(3000);
    // Still in the cluster, and one master: when the target is the master's named successor, not hearing
    // the master made it take office, and the old master re-joined it (docs/protocol.md, "Succession").
    expect(['member', 'master']).toContain(c.get(target).node.core.role);
    expect(IPS.filter((ip) => c.get(ip).node.core.role === 'master')).toHaveLength(1);
  }, 10_000);
});

describe('cluster configuration', () => {
  it('a change through any member is validated, versioned, written to every member file and adopted by all', async () => {
    const master = c.master().ip;
    const via = IPS.find((ip) => ip !== master)!;
    const r = await c.during(c.get(via).api.inject({ method: 'PATCH', url: '/v1/config', headers: auth, payload: { changes: { keepalivePeriodMs: 80, rebalanceIntervalMs: 2500 }, baseVersion: 1 } }));
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ version: 2, doneBy: master, forwarded: true, settings: { keepalivePeriodMs: 80, rebalanceIntervalMs: 2500 } });
    await c.run(1000);
    for (const ip of IPS) {
      const m = c.get(ip);
      expect(m.node.config.cluster.configVersion).toBe(2);
      expect(m.node.core.config.keepalivePeriodMs).toBe(80);
      expect((await m.api.inject({ url: '/v1/cluster', headers: auth })).json()).toMatchObject({ configVersion: 2, keepalivePeriodMs: 80, role: ip === master ? 'master' : 'member' });
      const file = JSON.parse(readFileSync(m.configFile, 'utf8'));
      expect(file.cluster).toMatchObject({ configVersion: 2, keepalivePeriodMs: 80, rebalanceIntervalMs: 2500, name: 'test' });
      expect(file.pki.certificate).toBe('member.crt'); // the rest of the file is kept as it was
    }
    // Nobody left the cluster for it.
    expect(c.get(master).node.status().members).toHaveLength(3);
  });

  it('refuses a change based on an old version (409), an invalid value or a fixed field (422), a bad body (400)', async () => {
    const api = c.get(IPS[2]!).api;
    const conflict = await c.during(api.inject({ method: 'PATCH', url: '/v1/config', headers: auth, payload: { changes: { keepalivePeriodMs: 90 }, baseVersion: 1 } }));
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ code: 'GW_CONFIG_CONFLICT' });
    expect(conflict.json().message).toMatch(/based on configuration version 1 but the cluster runs version 2/);
    const invalid = await c.during(api.inject({ method: 'PATCH', url: '/v1/config', headers: auth, payload: { changes: { keepalivePeriodMs: 5 } } }));
    expect(invalid.statusCode).toBe(422);
    expect(invalid.json().message).toMatch(/cluster\.keepalivePeriodMs: must be >= 10/);
    const fixed = await c.during(api.inject({ method: 'PATCH', url: '/v1/config', headers: auth, payload: { changes: { clusterIp: '198.51.100.20' } } }));
    expect(fixed.statusCode).toBe(422);
    expect(fixed.json().message).toMatch(/cluster\.clusterIp cannot be changed at run time/);
    const unknown = await c.during(api.inject({ method: 'PATCH', url: '/v1/config', headers: auth, payload: { changes: { keepaliveMs: 5 } } }));
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json().message).toMatch(/keepaliveMs: unknown field/);
    const body = await api.inject({ method: 'PATCH', url: '/v1/config', headers: auth, payload: { keepalivePeriodMs: 90 } });
    expect(body.statusCode).toBe(400);
    expect(body.json().code).toBe('GW_BAD_REQUEST');
    const notJson = await api.inject({ method: 'PATCH', url: '/v1/config', headers: { ...auth, 'content-type': 'application/json' }, payload: '{nope' });
    expect(notJson.statusCode).toBe(400);
    const huge = await api.inject({ method: 'PATCH', url: '/v1/config', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify({ changes: { pad: 'x'.repeat(5 * 1024 * 1024) } }) });
    expect(huge.statusCode).toBe(413);
    expect(huge.json()).toMatchObject({ code: 'GW_TOO_LARGE' });
    expect(huge.json().message).toMatch(/larger than 65536 bytes/);
    for (const ip of IPS) expect(c.get(ip).node.config.cluster.configVersion).toBe(2);
  });

  it('a member booted with an older version is told to wait, receives the cluster configuration and joins', async () => {
    const late = c.add(EXTRA, 1);
    late.node.start();
    await c.run(3000);
    expect(late.node.config.cluster.configVersion).toBe(2);
    expect(late.node.core.role).toBe('member');
    expect(JSON.parse(readFileSync(late.configFile, 'utf8')).cluster.keepalivePeriodMs).toBe(80);
    expect(late.node.recentEvents().some((e) => e.kind === 'config' && /adopted cluster configuration version 2/.test(e.message))).toBe(true);
  });

  it('with no master known, actions that need one are 503 GW_NO_MASTER', async () => {
    const lone = new OperatorCluster(pki, { token: TOKEN });
    try {
      lone.add(IPS[0]!); // never started: role "stopped"
      const r = await lone.get(IPS[0]!).api.inject({ method: 'POST', url: '/v1/rebalance', headers: auth });
      expect(r.statusCode).toBe(503);
      expect(r.json()).toMatchObject({ code: 'GW_NO_MASTER' });
    } finally {
      await lone.close();
    }
  });
});
