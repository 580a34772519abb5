// The admin API's front (admin-front.ts, a worker thread; started by startAdminServer) on a real socket on
// loopback: it authenticates like the in-process server, serves the API description itself, carries the
// other routes to the member's thread (a stream too), caps connections per client address, and answers
// 503 GW_BUSY once as many requests as it takes are in progress and waiting.
// The worker runs the built module (dist/): `npx tsc -b` first, as for every test run.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createTestPki } from '@gwcluster/security';
import { adminPort, startAdminServer } from '../../src/operator/server.js';
import { OperatorCluster, TOKEN } from './operator-harness.js';

const IP = '192.0.2.11';
let c: OperatorCluster;
let api: FastifyInstance;
let base = '';

beforeAll(async () => {
  c = new OperatorCluster(await createTestPki([IP]));
  const m = c.add(IP);
  m.node.start();
  await c.run(500);
  api = await startAdminServer({
    node: m.node,
    channel: m.channel,
    metrics: m.metrics,
    logger: pino({ level: 'silent' }),
    token: TOKEN,
    host: '127.0.0.1',
    port: 0,
    limits: { maxBridged: 2, maxQueued: 2, maxConnectionsPerAddress: 12, headersTimeoutMs: 2000 },
  });
  base = `http://127.0.0.1:${adminPort(api)}`;
}, 90_000);

afterAll(async () => {
  await api?.close();
  await c?.close();
});

const auth = { authorization: `Bearer ${TOKEN}` };

describe('the admin API front', () => {
  it('serves the API description and the dashboard itself, and refuses like the in-process server', async () => {
    const doc = await fetch(`${base}/openapi.json`);
    expect(doc.status).toBe(200);
    expect(doc.headers.get('gwcluster-api-version')).toBe('1');
    expect(((await doc.json()) as { paths: Record<string, unknown> }).paths['/v1/cluster']).toBeDefined();
    expect((await fetch(`${base}/dashboard`)).headers.get('content-type')).toMatch(/text\/html/);
    const anon = await fetch(`${base}/v1/cluster`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { code: string }).code).toBe('GW_UNAUTHORIZED');
    // A client cannot pass itself off as the front.
    const forged = await fetch(`${base}/v1/cluster`, { headers: { 'x-gwcluster-front': 'x 1' } });
    expect(forged.status).toBe(401);
  });

  it('carries reads, validation errors, unknown routes and a stream to the member thread', async () => {
    const cluster = await fetch(`${base}/v1/cluster`, { headers: auth });
    expect(cluster.status).toBe(200);
    expect(((await cluster.json()) as { self: string }).self).toBe(IP);
    const bad = await fetch(`${base}/v1/units/5000`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('GW_BAD_REQUEST');
    expect((await fetch(`${base}/v1/nope`, { headers: auth })).status).toBe(404);
    const put = await fetch(`${base}/v1/log-level`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ level: 'debug' }) });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ level: 'debug' });
    const stream = await fetch(`${base}/v1/stream`, { headers: auth });
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = stream.body!.getReader();
    let text = '';
    while (!text.includes('event: snapshot')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const metrics = await fetch(`${base}/metrics`, { headers: auth });
    expect(metrics.status).toBe(200);
  });

  it('answers 503 GW_BUSY beyond the requests in progress and waiting, and serves them once the member thread is free', async () => {
    // Six requests written, then this (the member's) thread is kept busy: the front, on its own thread,
    // hands over 2, queues 2 and refuses 2 meanwhile; once this thread is free the 4 are answered.
    const sockets = await Promise.all(Array.from({ length: 6 }, () => openSocket()));
    const answers = sockets.map((s) => answerOf(s));
    for (const s of sockets) s.write(`GET /v1/cluster HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      // busy: the member's thread does not turn its event loop
    }
    const texts = await Promise.all(answers);
    const busy = texts.filter((t) => t.startsWith('HTTP/1.1 503'));
    expect(texts.filter((t) => t.startsWith('HTTP/1.1 200'))).toHaveLength(4);
    expect(busy).toHaveLength(2);
    for (const t of busy) expect(t).toContain('"code":"GW_BUSY"');
    expect((await fetch(`${base}/v1/members`, { headers: auth })).status).toBe(200);
  });

  it('closes connections beyond the cap for one client address at once', async () => {
    const sockets: Socket[] = [];
    let closed = 0;
    for (let i = 0; i < 20; i++) {
      const s = connect({ host: '127.0.0.1', port: adminPort(api)! });
      s.on('error', () => {});
      s.on('close', () => closed++);
      sockets.push(s);
    }
    const deadline = Date.now() + 10_000;
    while (closed < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBeGreaterThanOrEqual(8);
    for (const s of sockets) s.destroy();
  });
});

function openSocket(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: adminPort(api)! }, () => resolve(s));
    s.on('error', reject);
  });
}

/** Everything the server sends on a socket until it closes it. */
function answerOf(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(out));
  });
}
