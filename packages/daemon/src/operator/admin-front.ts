/**
 * The admin API's front, run in its own worker thread (admin-front-host.ts starts it): it owns the
 * listening socket, so that HTTP load of any kind (floods of requests, slowloris connections, TLS
 * handshakes, scrapes) costs this thread's event loop and never the member's, which runs the cluster
 * protocol (docs/architecture.md, "Threads and what may block").
 *
 * Here: the connection caps (in total and per client address), the head / request / idle / silent-socket
 * time-outs, TLS, the body limit, authentication (admin-auth.ts), and the routes that need nothing of the
 * member (GET /openapi.json, GET /dashboard). Every other request crosses to the member's thread over the
 * worker's message port, where fastify runs it (schemas, routes) by injection. At most `maxBridged` such
 * requests are in progress at a time and at most `maxQueued` wait for their turn; beyond that the answer is
 * 503 GW_BUSY. Streams (/v1/stream, /v1/capture) leave the bound once their head arrives and count against
 * `maxStreams` instead. So the member's thread does a bounded amount of API work whatever the load.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { authorize } from './admin-auth.js';
import { DASHBOARD_HTML } from './dashboard-page.js';
import type { FrontCredentials, FrontInit, FrontToMain, MainToFront } from './admin-front-protocol.js';
import { BRIDGE_HEADER } from './admin-front-protocol.js';

const STREAM_ROUTES = new Set(['/v1/stream', '/v1/capture']);
/** Bytes a stream's client may leave unread before whole chunks (an event, a packet) are dropped. */
const STREAM_BUFFER_BYTES = 8 << 20;

const init = workerData as FrontInit;
const port = parentPort!;
const limits = init.limits;
let credentials: FrontCredentials = init.credentials;

function post(m: FrontToMain): void {
  port.postMessage(m);
}

/**
 * This thread runs at a lower CPU priority than the member's (nice + FRONT_NICE; Linux schedules threads
 * by their own nice value): when the machine has no core to spare, the cluster protocol runs first and
 * the API answers later. Best effort: without /proc the thread keeps the process's priority.
 */
export const FRONT_NICE = 10;
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.min(19, init.basePriority + FRONT_NICE));
} catch (e) {
  post({ t: 'log', level: 'warn', message: `admin API thread: cannot lower its CPU priority (${(e as Error).message}); it competes with the cluster protocol on equal terms` });
}

interface Bridged {
  readonly id: number;
  readonly res: ServerResponse;
  readonly stream: boolean;
  /** Sent to the member's thread (not waiting in the queue). */
  sent: boolean;
  /** The member's thread counts it in maxBridged (false once a stream's head came). */
  counted: boolean;
  streaming: boolean;
  done: boolean;
  message: Extract<FrontToMain, { t: 'request' }>;
}

let nextId = 1;
let bridgedNow = 0;
let streamsNow = 0;
const queue: Bridged[] = [];
const live = new Map<number, Bridged>();
const perAddress = new Map<string, number>();
let dropped = 0;

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  sendJson(res, status, { code, message }, extra);
}

function dispatch(b: Bridged): void {
  b.sent = true;
  b.counted = true;
  bridgedNow++;
  post(b.message);
}

function release(b: Bridged): void {
  if (b.done) return;
  b.done = true;
  live.delete(b.id);
  if (b.counted) bridgedNow--;
  if (b.streaming) streamsNow--;
  const i = queue.indexOf(b);
  if (i >= 0) queue.splice(i, 1);
  while (bridgedNow < limits.maxBridged && queue.length > 0) dispatch(queue.shift()!);
}

function bridge(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer | undefined, authenticated: boolean): void {
  const stream = STREAM_ROUTES.has(path) && !(path === '/v1/stream' && /[?&]once=(true|1)(&|$)/.test(req.url ?? ''));
  if (stream && streamsNow >= limits.maxStreams) {
    return sendError(res, 503, 'GW_BUSY', `this member serves ${limits.maxStreams} streams (/v1/stream, /v1/capture) at most; close one or retry later`, { 'retry-after': '5' });
  }
  if (bridgedNow >= limits.maxBridged && queue.length >= limits.maxQueued) {
    return sendError(res, 503, 'GW_BUSY', `the admin API is busy (${limits.maxBridged} requests in progress, ${limits.maxQueued} waiting); retry in a moment`, { 'retry-after': '1' });
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== BRIDGE_HEADER) headers[k] = v;
  const id = nextId++;
  const b: Bridged = {
    id,
    res,
    stream,
    sent: false,
    counted: false,
    streaming: false,
    done: false,
    message: { t: 'request', id, method: req.method ?? 'GET', url: req.url ?? '/', headers, authenticated, remoteAddress: req.socket.remoteAddress ?? '', ...(body && body.length > 0 ? { body: new Uint8Array(body) } : {}) },
  };
  live.set(id, b);
  res.on('close', () => {
    if (b.done) return;
    if (b.sent) post({ t: 'abort', id });
    release(b);
  });
  if (bridgedNow < limits.maxBridged) dispatch(b);
  else queue.push(b);
}

function onAnswer(m: MainToFront): void {
  if (m.t === 'credentials') {
    credentials = m.credentials;
    if (m.tls && server && init.tls) (server as HttpsServer).setSecureContext({ cert: Buffer.from(m.tls.cert), key: Buffer.from(m.tls.key), ca: Buffer.from(m.tls.ca) });
    return;
  }
  if (m.t === 'close') {
    void close();
    return;
  }
  const b = live.get(m.id);
  if (!b) return;
  const res = b.res;
  if (m.t === 'head') {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(m.headers)) if (k !== 'transfer-encoding' && k !== 'connection' && k !== 'keep-alive') headers[k] = v;
    if (!res.destroyed) res.writeHead(m.status, headers);
    const type = String(m.headers['content-type'] ?? '');
    if (b.stream && (type.startsWith('text/event-stream') || type.startsWith('application/vnd.tcpdump.pcap'))) {
      // A stream: it leaves the bound on requests in progress and counts as a stream; its socket may
      // stay quiet longer than the idle limit (a capture of a unit without traffic).
      b.counted = false;
      bridgedNow--;
      b.streaming = true;
      streamsNow++;
      res.socket?.setTimeout(0);
      while (bridgedNow < limits.maxBridged && queue.length > 0) dispatch(queue.shift()!);
    }
  } else if (m.t === 'data') {
    if (res.destroyed) return;
    // A slow reader of a stream loses whole chunks (events, packets), never the member's memory.
    if (b.streaming && res.writableLength > STREAM_BUFFER_BYTES) {
      dropped++;
      return;
    }
    res.write(m.chunk);
  } else if (m.t === 'end') {
    release(b);
    if (!res.destroyed) res.end();
  } else if (m.t === 'fail') {
    release(b);
    if (res.headersSent) res.destroy();
    else sendError(res, 500, 'GW_INTERNAL', m.message);
  }
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  try {
    res.setHeader(init.apiVersion.header, init.apiVersion.value);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    const socket = req.socket as TLSSocket;
    const mtls = init.tls?.requireClientCertificate ?? false;
    const certified = mtls && socket.authorized === true;
    const decision = authorize(
      {
        method: req.method ?? 'GET',
        path,
        authorization: req.headers.authorization,
        certified,
        ...(mtls && !certified ? { certificateError: String(socket.authorizationError ?? 'no client certificate') } : {}),
      },
      { token: credentials.token, metricsToken: credentials.metricsToken, mtls },
    );
    if (!decision.allowed) {
      req.resume();
      return sendError(res, decision.status, decision.code, decision.message);
    }
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (read && path === '/openapi.json') {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(init.openapi) });
      req.resume();
      res.end(req.method === 'HEAD' ? undefined : init.openapi);
      return;
    }
    if (read && path === '/dashboard') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': Buffer.byteLength(DASHBOARD_HTML),
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        'x-frame-options': 'DENY',
      });
      req.resume();
      res.end(req.method === 'HEAD' ? undefined : DASHBOARD_HTML);
      return;
    }
    const tooLarge = () => {
      sendError(res, 413, 'GW_TOO_LARGE', `request body larger than ${limits.bodyLimit} bytes; admin requests are small JSON documents`, { connection: 'close' });
      req.socket.destroySoon();
    };
    if (Number(req.headers['content-length'] ?? 0) > limits.bodyLimit) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limits.bodyLimit) {
        over = true;
        return tooLarge();
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) bridge(req, res, path, chunks.length > 0 ? Buffer.concat(chunks) : undefined, decision.authenticated);
    });
    req.on('error', () => res.destroy());
  } catch (e) {
    post({ t: 'log', level: 'error', message: `admin API front: ${(e as Error).message}` });
    sendError(res, 500, 'GW_INTERNAL', 'the admin API front failed on this request; the daemon log has the details');
  }
}

const serverOptions = {
  headersTimeout: limits.headersTimeoutMs,
  requestTimeout: limits.requestTimeoutMs,
  keepAliveTimeout: limits.keepAliveTimeoutMs,
  connectionsCheckingInterval: limits.checkEveryMs,
};
const server: Server | HttpsServer = init.tls
  ? createHttpsServer(
      {
        cert: Buffer.from(init.tls.cert),
        key: Buffer.from(init.tls.key),
        ca: Buffer.from(init.tls.ca),
        requestCert: init.tls.requireClientCertificate,
        // Checked by authorize() instead, so that a client without a certificate gets a coded 403.
        rejectUnauthorized: false,
        handshakeTimeout: limits.headersTimeoutMs,
        ...serverOptions,
      },
      onRequest,
    )
  : createHttpServer(serverOptions, onRequest);
server.maxConnections = limits.maxConnections;
server.setTimeout(limits.connectionTimeoutMs);
server.on('connection', (socket: Socket) => {
  // One client address gets at most maxConnectionsPerAddress: a slowloris from one host cannot take
  // every connection the member serves.
  const from = socket.remoteAddress ?? '';
  const n = (perAddress.get(from) ?? 0) + 1;
  if (n > limits.maxConnectionsPerAddress) {
    socket.destroy();
    return;
  }
  perAddress.set(from, n);
  socket.once('close', () => {
    const left = (perAddress.get(from) ?? 1) - 1;
    if (left <= 0) perAddress.delete(from);
    else perAddress.set(from, left);
  });
});
// node:http applies headersTimeout only once a request has begun, and its periodic connection check keeps
// re-arming the socket's idle timer; a connection that never sends a byte is closed here. With TLS the
// handshake has its own limit, and the request bytes flow on the TLS socket.
server.on(init.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
  const silent = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
  silent.unref();
  socket.once('data', () => clearTimeout(silent));
  socket.once('close', () => clearTimeout(silent));
});

async function close(): Promise<void> {
  for (const b of [...live.values()]) {
    b.res.destroy();
    release(b);
  }
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  post({ t: 'closed', dropped });
  port.close();
}

port.on('message', onAnswer);
server.once('error', (e: NodeJS.ErrnoException) => post({ t: 'listen-error', code: e.code ?? e.message, message: e.message }));
server.listen({ host: init.host, port: init.port }, () => {
  const a = server.address();
  post({ t: 'listening', port: typeof a === 'object' && a ? a.port : init.port });
});
