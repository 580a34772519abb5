// The admin API's connection cap and time-outs (server.ts ADMIN_LIMITS), on a real socket on loopback:
// a client that trickles its request head (slowloris) is disconnected, connections beyond the cap are
// refused, and a normal request still gets through meanwhile.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createTestPki } from '@gwcluster/security';
import { buildAdminServer } from '../../src/operator/server.js';
import { OperatorCluster, TOKEN } from './operator-harness.js';

const IP = '192.0.2.11';
let c: OperatorCluster;
let api: FastifyInstance;
let port = 0;

beforeAll(async () => {
  c = new OperatorCluster(await createTestPki([IP]));
  const m = c.add(IP);
  m.node.start();
  await c.run(500);
  api = buildAdminServer({
    node: m.node,
    channel: m.channel,
    logger: pino({ level: 'silent' }),
    token: TOKEN,
    limits: { maxConnections: 8, headersTimeoutMs: 300, requestTimeoutMs: 600, checkEveryMs: 100, connectionTimeoutMs: 2000 },
  });
  await api.listen({ host: '127.0.0.1', port: 0 });
  port = (api.server.address() as { port: number }).port;
}, 20_000);

afterAll(async () => {
  await api?.close();
  await c?.close();
});

/** Opens a connection; resolves with the socket and a promise of the time it was closed by the server. */
async function open(): Promise<{ socket: Socket; closed: Promise<number> }> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
  await new Promise<void>((r, j) => {
    socket.once('connect', () => r());
    socket.once('close', () => j(new Error('closed before connect')));
  });
  return { socket, closed };
}

async function healthz(): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return r.status;
}

describe('admin API limits', () => {
  it('closes a connection that trickles its request head past headersTimeout', async () => {
    const { socket, closed } = await open();
    const t0 = Date.now();
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 50);
    try {
      const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 3000))]);
      expect(at, 'the server kept the slow connection open').toBeGreaterThan(0);
      expect(at - t0).toBeLessThan(1500);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  it('refuses connections beyond the cap; once they are gone a request gets through', async () => {
    const held = await Promise.all(Array.from({ length: 8 }, () => open()));
    // The ninth is accepted by the kernel and closed by the server at once.
    const extra = connect({ host: '127.0.0.1', port });
    extra.on('error', () => {});
    const extraClosed = await new Promise<boolean>((r) => {
      extra.once('close', () => r(true));
      setTimeout(() => r(false), 3000);
    });
    expect(extraClosed, 'the connection beyond the cap was kept').toBe(true);
    // The held idle connections time out (headersTimeout) and free their places.
    const closedAt = await Promise.all(held.map((h) => Promise.race([h.closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))])));
    expect(closedAt.map((t) => (t > 0 ? 'closed' : 'open'))).toEqual(Array(8).fill('closed'));
    expect(await healthz()).toBe(200);
  });
});
