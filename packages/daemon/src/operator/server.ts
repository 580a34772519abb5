/**
 * The admin API process part: fastify with the app plugin, authentication, coded errors, listen, close.
 *
 * Authentication (docs/operator-guide.md):
 * - bearer token: with admin.token set, every route but the public ones needs "Authorization: Bearer TOKEN"
 *   (401 GW_UNAUTHORIZED otherwise). Without a token the API is read-only: actions answer 403 GW_FORBIDDEN,
 *   unless mutual TLS authenticates the client.
 * - mutual TLS (admin.tls): HTTPS with the member's certificate; with requireClientCertificate, a client
 *   must present a certificate issued by the cluster CA (403 GW_FORBIDDEN otherwise).
 * - metrics token (admin.metricsToken): read-only; GET of the read routes and /metrics, not the logs, the
 *   member configuration or the capture (ADMIN_ONLY_READS); anything else is 403 GW_FORBIDDEN.
 * Public routes: /healthz, /livez, /readyz, /openapi.json, /dashboard (a page without data).
 * Every answer carries the admin API version in the gwcluster-api-version header.
 */
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { adminApp } from './admin-app.js';
import { ApiError } from './api-errors.js';
import type { MemberNode } from '../control/member-node.js';
import type { OperatorChannel } from './operator-channel.js';
import type { OperatorProviders } from './providers.js';
import type { MemberMetrics } from './metrics.js';
import type { EventLoopHealth } from './event-loop-watch.js';
import { ADMIN_API_VERSION, API_VERSION_HEADER } from '@gwcluster/contracts';
import type { LogRing } from './log-ring.js';

export class AdminListenError extends Error {
  override readonly name = 'AdminListenError';
  constructor(
    message: string,
    /** The listen error's code (EADDRNOTAVAIL, EADDRINUSE, ...). */
    readonly code: string,
  ) {
    super(message);
  }
}

export interface AdminTlsOptions {
  /** PEM files: the server certificate chain and key, and the CA that client certificates must chain to. */
  readonly certificate: string;
  readonly key: string;
  readonly ca: string;
  readonly requireClientCertificate: boolean;
}

export interface AdminServerOptions {
  readonly node: MemberNode;
  readonly channel: OperatorChannel;
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  readonly token?: string;
  /** The read-only token (admin.metricsToken): GET of the read routes and /metrics only. */
  readonly metricsToken?: string;
  readonly tls?: AdminTlsOptions;
  readonly providers?: OperatorProviders;
  readonly metrics?: MemberMetrics;
  /** This member's recent log lines (GET /v1/logs). */
  readonly logs?: LogRing;
  /** This member's configuration with the secrets redacted (GET /v1/member-config). */
  readonly memberConfig?: () => Record<string, unknown>;
  readonly streamPeriodMs?: number;
  /** Overrides of ADMIN_LIMITS (tests shorten the time-outs). */
  readonly limits?: Partial<AdminLimits>;
  /** The data plane, when the member runs one (/readyz). */
  readonly dataPlane?: { readonly running: boolean };
  /** Event-loop delay watch (/livez). */
  readonly eventLoop?: EventLoopHealth;
}

const PUBLIC = new Set(['/healthz', '/livez', '/readyz', '/openapi.json', '/dashboard']);
/** Read routes that need the admin token even so (logs, the member's own configuration, packet capture). */
export const ADMIN_ONLY_READS = new Set(['/v1/logs', '/v1/member-config', '/v1/capture']);

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller presented the bearer token or an accepted client certificate (set before any route runs). */
    authenticated: boolean;
  }
}

/**
 * Limits that keep the admin API from holding the member's event loop or sockets for a slow or greedy
 * client (fastify server options; node:http semantics).
 */
export interface AdminLimits {
  readonly bodyLimit: number;
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly connectionTimeoutMs: number;
  /** How often node:http looks for connections past headersTimeoutMs / requestTimeoutMs, ms. */
  readonly checkEveryMs: number;
}

export const ADMIN_LIMITS: AdminLimits = {
  /** Largest request body, bytes: admin bodies are small JSON documents (a config change is < 1 KiB). */
  bodyLimit: 64 * 1024,
  /** Open connections at most; more are refused by the server (node:http maxConnections). */
  maxConnections: 64,
  /** The whole request head must arrive within this, ms (slowloris: a client trickling headers). */
  headersTimeoutMs: 5_000,
  /** The whole request (head and body) must arrive within this, ms. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection is closed after this, ms. */
  keepAliveTimeoutMs: 5_000,
  /** A socket with no activity at all is closed after this, ms (GET /v1/stream writes more often). */
  connectionTimeoutMs: 30_000,
  checkEveryMs: 1_000,
};

function describeValidation(err: Error & { validation?: { instancePath?: string; message?: string; params?: Record<string, unknown>; keyword?: string }[]; validationContext?: string }): string {
  const where = err.validationContext ?? 'request';
  const parts = (err.validation ?? []).map((v) => {
    const field = (v.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.') || (v.params?.missingProperty as string | undefined) || (v.params?.additionalProperty as string | undefined) || where;
    if (v.keyword === 'pattern' && /member|address/.test(field)) return `${where} ${field}: must be a dotted-quad IPv4 address (e.g. 192.0.2.11)`;
    if (v.keyword === 'additionalProperties') return `${where}: unknown field ${String(v.params?.additionalProperty)}`;
    return `${where} ${field}: ${v.message ?? 'is invalid'}`;
  });
  return `${parts.join('; ') || err.message}; the accepted forms are in GET /openapi.json`;
}

/** What reload changes in a running admin API: the bearer token (undefined: none). */
interface AdminCredentials {
  token: string | undefined;
}

const credentialsOf = new WeakMap<FastifyInstance, AdminCredentials>();

/** The PEM contents of an admin API's TLS files, read and checked (see readAdminTls). */
export interface AdminTlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/**
 * Reads the admin API's TLS files and checks that they make a TLS context (the key belongs to the
 * certificate, the PEMs parse). Throws an Error naming the file or the problem.
 */
export function readAdminTls(tls: AdminTlsOptions): AdminTlsMaterial {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new Error(`${file}: cannot read the admin API ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const material = { cert: read(tls.certificate, 'certificate'), key: read(tls.key, 'private key'), ca: read(tls.ca, 'client CA') };
  try {
    createSecureContext(material);
  } catch (e) {
    throw new Error(`admin.tls (${tls.certificate}, ${tls.key}, ${tls.ca}): not a usable certificate, key and CA: ${(e as Error).message}`);
  }
  return material;
}

/**
 * Changes a running admin API's credentials (gwclusterd reload): the bearer token from the next request
 * on, and with `tls` the server certificate, key and client CA from the next TLS handshake on (open
 * connections keep theirs). Whether TLS is on and requireClientCertificate cannot change without a restart.
 */
export function updateAdminCredentials(app: FastifyInstance, next: { readonly token: string | undefined; readonly tls?: AdminTlsMaterial }): void {
  const credentials = credentialsOf.get(app);
  if (!credentials) throw new Error('not an admin server built by buildAdminServer');
  if (next.tls) (app.server as unknown as HttpsServer).setSecureContext({ ...next.tls });
  credentials.token = next.token;
}

export function buildAdminServer(opts: Omit<AdminServerOptions, 'host' | 'port'>): FastifyInstance {
  const limits: AdminLimits = { ...ADMIN_LIMITS, ...opts.limits };
  const serverOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.checkEveryMs,
  };
  const https = opts.tls
    ? {
        cert: readFileSync(opts.tls.certificate),
        key: readFileSync(opts.tls.key),
        ca: readFileSync(opts.tls.ca),
        requestCert: opts.tls.requireClientCertificate,
        // Checked in the onRequest hook instead, so that a client without a certificate gets a coded 403.
        rejectUnauthorized: false,
        handshakeTimeout: limits.headersTimeoutMs,
        ...serverOptions,
      }
    : null;
  // Request logs are debug-level noise for an operator; the API logs at warn and above.
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'admin-api' }, { level: 'warn' }) as FastifyBaseLogger,
    forceCloseConnections: true,
    bodyLimit: limits.bodyLimit,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.connectionTimeoutMs,
    ...(https ? { https } : { http: serverOptions }),
  }) as unknown as FastifyInstance;
  app.server.maxConnections = limits.maxConnections;
  // node:http applies headersTimeout only once a request has begun, and its periodic connection check
  // keeps re-arming the socket's idle timer; a connection that never sends a byte is closed here.
  // With TLS the handshake has its own limit, and the request bytes flow on the TLS socket.
  app.server.on(https ? 'secureConnection' : 'connection', (socket: Socket) => {
    const silent = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    silent.unref();
    socket.once('data', () => clearTimeout(silent));
    socket.once('close', () => clearTimeout(silent));
  });
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, req, reply) => {
    if (err instanceof ApiError) return reply.status(err.statusCode).send({ code: err.code, message: err.message });
    if (err.validation) return reply.status(400).send({ code: 'GW_BAD_REQUEST', message: describeValidation(err as never) });
    const status = err.statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'admin API request failed');
    if (status === 413) return reply.status(413).send({ code: 'GW_TOO_LARGE', message: `request body larger than ${limits.bodyLimit} bytes; admin requests are small JSON documents` });
    if (status === 404) return reply.status(404).send({ code: 'GW_NOT_FOUND', message: err.message });
    if (status >= 400 && status < 500) return reply.status(400).send({ code: 'GW_BAD_REQUEST', message: `${err.message}; send a JSON body with content-type application/json` });
    return reply.status(status).send({ code: 'GW_INTERNAL', message: err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'GW_NOT_FOUND', message: `no route ${req.method} ${req.url}; the routes are listed in GET /openapi.json` });
  });
  const credentials: AdminCredentials = { token: opts.token };
  credentialsOf.set(app, credentials);
  const mtls = opts.tls?.requireClientCertificate ?? false;
  app.decorateRequest('authenticated', false);
  app.addHook('onRequest', async (req, reply) => {
    void reply.header(API_VERSION_HEADER, String(ADMIN_API_VERSION));
    const path = req.url.split('?')[0]!;
    const token = credentials.token;
    const certified = mtls && (req.raw.socket as TLSSocket).authorized === true;
    req.authenticated = token ? req.headers.authorization === `Bearer ${token}` && (!mtls || certified) : certified;
    if (PUBLIC.has(path)) return;
    if (mtls && !(req.raw.socket as TLSSocket).authorized) {
      const why = (req.raw.socket as TLSSocket).authorizationError ?? 'no client certificate';
      return reply.status(403).send({ code: 'GW_FORBIDDEN', message: `client certificate refused (${String(why)}); present a certificate issued by the cluster CA (gwctl --cert FILE --key FILE --cacert FILE)` });
    }
    const metricsToken = opts.metricsToken;
    if (metricsToken && req.headers.authorization === `Bearer ${metricsToken}`) {
      if ((req.method === 'GET' || req.method === 'HEAD') && !ADMIN_ONLY_READS.has(path)) return;
      return reply.status(403).send({
        code: 'GW_FORBIDDEN',
        message: `the metrics token (admin.metricsToken) is read-only: it may GET /metrics and the read routes, not ${req.method} ${path}; use the admin token (admin.token)`,
      });
    }
    if (token) {
      if (req.headers.authorization !== `Bearer ${token}`) {
        return reply.status(401).send({
          code: 'GW_UNAUTHORIZED',
          message: `${req.headers.authorization ? 'wrong' : 'missing'} bearer token; pass the token from the member configuration (admin.token) as "Authorization: Bearer TOKEN" or gwctl --token`,
        });
      }
    } else if (!mtls && req.method !== 'GET' && req.method !== 'HEAD') {
      return reply.status(403).send({ code: 'GW_FORBIDDEN', message: 'this member has no admin.token, so its admin API is read-only; set admin.token in its personality and reload it (systemctl reload gwclusterd), or use admin.tls with client certificates (a restart)' });
    }
  });
  void app.register(adminApp, {
    node: opts.node,
    channel: opts.channel,
    ...(opts.providers ? { providers: opts.providers } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.logs ? { logs: opts.logs } : {}),
    ...(opts.memberConfig ? { memberConfig: opts.memberConfig } : {}),
    ...(opts.streamPeriodMs ? { streamPeriodMs: opts.streamPeriodMs } : {}),
    ...(opts.dataPlane ? { dataPlane: opts.dataPlane } : {}),
    ...(opts.eventLoop ? { eventLoop: opts.eventLoop } : {}),
  });
  return app;
}

export async function startAdminServer(opts: AdminServerOptions): Promise<FastifyInstance> {
  const app = buildAdminServer(opts);
  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    await app.close();
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new AdminListenError(`admin API cannot listen on ${opts.host}:${opts.port} (${code}); check admin.listen / admin.port, and that the address is configured on this host`, code);
  }
  return app;
}
