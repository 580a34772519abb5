/** The admin API process part: build fastify with the app plugin, listen, close gracefully. */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { adminApp } from './admin-app.js';
import type { MemberNode } from './member-node.js';

export class AdminListenError extends Error {
  override readonly name = 'AdminListenError';
}

export interface AdminServerOptions {
  readonly node: MemberNode;
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  readonly token?: string;
}

export function buildAdminServer(opts: Omit<AdminServerOptions, 'host' | 'port'>): FastifyInstance {
  // Request logs are debug-level noise for an operator; the API logs at warn and above.
  const app = Fastify({ loggerInstance: opts.logger.child({ component: 'admin-api' }, { level: 'warn' }) as FastifyBaseLogger });
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    const status = err.statusCode ?? 500;
    void reply.status(status).send({ code: err.validation ? 'GW_BAD_REQUEST' : status === 404 ? 'GW_NOT_FOUND' : 'GW_INTERNAL', message: err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'GW_NOT_FOUND', message: `no route ${req.method} ${req.url}; see GET /v1/cluster, /v1/units, /v1/events` });
  });
  if (opts.token) {
    const expected = `Bearer ${opts.token}`;
    app.addHook('onRequest', async (req, reply) => {
      if (req.url === '/healthz') return;
      if (req.headers.authorization !== expected) {
        await reply.status(401).send({ code: 'GW_UNAUTHORIZED', message: 'missing or wrong bearer token; pass the token from the member configuration (admin.token) as "Authorization: Bearer TOKEN" or gwctl --token' });
      }
    });
  }
  void app.register(adminApp, { node: opts.node });
  return app;
}

export async function startAdminServer(opts: AdminServerOptions): Promise<FastifyInstance> {
  const app = buildAdminServer(opts);
  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    await app.close();
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new AdminListenError(`admin API cannot listen on ${opts.host}:${opts.port} (${code}); check admin.listen / admin.port, and that the address is configured on this host`);
  }
  return app;
}
