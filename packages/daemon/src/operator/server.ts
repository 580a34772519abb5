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
 *
 * A member's API (startAdminServer) listens in its front (admin-front.ts, a thread of its own), which
 * applies the limits and the authentication above (admin-auth.ts) and hands a bounded number of requests
 * at a time to this app on the member's thread. buildAdminServer alone serves in-process (inject, listen).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
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
import { ADMIN_ONLY_READS, authorize } from './admin-auth.js';
import { AdminFront, FrontListenError } from './admin-front-host.js';
import { BRIDGE_HEADER, type AdminLimits } from './admin-front-protocol.js';

export type { AdminLimits } from './admin-front-protocol.js';

export { ADMIN_ONLY_READS } from './admin-auth.js';

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


declare module 'fastify' {
  interface FastifyRequest {
    /** The caller presented the bearer token or an accepted client certificate (set before any route runs). */
    authenticated: boolean;
  }
}


export const ADMIN_LIMITS: AdminLimits = {
  /** Largest request body, bytes: admin bodies are small JSON documents (a config change is < 1 KiB). */
  bodyLimit: 64 * 1024,
  /** Open connections at most; more are refused by the server (node:http maxConnections). */
  maxConnections: 512,
  /** Open connections from one address at most: one greedy or slow client cannot take them all. */
  maxConnectionsPerAddress: 64,
  /** The whole request head must arrive within this, ms (slowloris: a client trickling headers). */
  headersTimeoutMs: 5_000,
  /** The whole request (head and body) must arrive within this, ms. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection is closed after this, ms. */
  keepAliveTimeoutMs: 5_000,
  /** A socket with no activity at all is closed after this, ms (GET /v1/stream writes more often). */
  connectionTimeoutMs: 30_000,
  checkEveryMs: 1_000,
  /** A request on the member's thread takes well under a millisecond (a /metrics scrape a few). */
  maxBridged: 8,
  maxQueued: 256,
  maxStreams: 32,
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
  readonly metricsToken: string | undefined;
}

const credentialsOf = new WeakMap<FastifyInstance, AdminCredentials>();
/** The front of an admin API started by startAdminServer. */
const frontOf = new WeakMap<FastifyInstance, AdminFront>();

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
  frontOf.get(app)?.update({ token: next.token, metricsToken: credentials.metricsToken }, next.tls);
}

/**
 * The admin API as a fastify app. It serves requests in-process (inject, or its own listen: tests, tools);
 * with `bridgeSecret` it also accepts requests the front (startAdminServer) authenticated already.
 */
export function buildAdminServer(opts: Omit<AdminServerOptions, 'host' | 'port'> & { readonly bridgeSecret?: string }): FastifyInstance {
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
  const credentials: AdminCredentials = { token: opts.token, metricsToken: opts.metricsToken };
  const bridged = opts.bridgeSecret ? { yes: `${opts.bridgeSecret} 1`, no: `${opts.bridgeSecret} 0` } : null;
  credentialsOf.set(app, credentials);
  const mtls = opts.tls?.requireClientCertificate ?? false;
  app.decorateRequest('authenticated', false);
  app.addHook('onRequest', async (req, reply) => {
    void reply.header(API_VERSION_HEADER, String(ADMIN_API_VERSION));
    if (bridged) {
      // A request from the front (admin-front.ts), which has authenticated it already.
      const from = req.headers[BRIDGE_HEADER];
      if (from === bridged.yes || from === bridged.no) {
        req.authenticated = from === bridged.yes;
        return;
      }
    }
    const socket = req.raw.socket as TLSSocket;
    const certified = mtls && socket.authorized === true;
    const decision = authorize(
      {
        method: req.method,
        path: req.url.split('?')[0]!,
        authorization: req.headers.authorization,
        certified,
        ...(mtls && !certified ? { certificateError: String(socket.authorizationError ?? 'no client certificate') } : {}),
      },
      { token: credentials.token, metricsToken: credentials.metricsToken, mtls },
    );
    req.authenticated = decision.authenticated;
    if (!decision.allowed) return reply.status(decision.status).send({ code: decision.code, message: decision.message });
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

/**
 * Starts the admin API for a member: the app on the member's thread, and its front (admin-front.ts) in a
 * thread of its own, which listens, authenticates and hands over a bounded number of requests at a time.
 * Closing the app closes the front.
 */
export async function startAdminServer(opts: AdminServerOptions): Promise<FastifyInstance> {
  const secret = randomBytes(16).toString('hex');
  const app = buildAdminServer({ ...opts, bridgeSecret: secret });
  app.addHook('onClose', async () => {
    await frontOf.get(app)?.close();
  });
  const limits: AdminLimits = { ...ADMIN_LIMITS, ...opts.limits };
  try {
    await app.ready();
    const tls = opts.tls ? readAdminTls(opts.tls) : undefined;
    // The API description is fixed once the routes are: the front serves it without asking this thread.
    const openapi = (await app.inject({ method: 'GET', url: '/openapi.json', headers: { [BRIDGE_HEADER]: `${secret} 0` } })).body;
    const front = await AdminFront.start({
      app,
      secret,
      logger: opts.logger,
      init: {
        host: opts.host,
        port: opts.port,
        limits,
        credentials: { token: opts.token, metricsToken: opts.metricsToken },
        ...(tls && opts.tls ? { tls: { ...tls, requireClientCertificate: opts.tls.requireClientCertificate } } : {}),
        openapi,
        basePriority: getPriority(),
        apiVersion: { header: API_VERSION_HEADER, value: String(ADMIN_API_VERSION) },
      },
    });
    frontOf.set(app, front);
  } catch (e) {
    await app.close();
    if (!(e instanceof FrontListenError)) throw e;
    const code = e.code;
    throw new AdminListenError(`admin API cannot listen on ${opts.host}:${opts.port} (${code}); check admin.listen / admin.port, and that the address is configured on this host`, code);
  }
  return app;
}

/** The port an admin API started by startAdminServer listens on (the configured one, or the one given for port 0). */
export function adminPort(app: FastifyInstance): number | undefined {
  return frontOf.get(app)?.port;
}
