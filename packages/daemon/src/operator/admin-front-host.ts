/**
 * The member's side of the admin API's front (admin-front.ts): starts the front's worker thread, runs the
 * requests it hands over in the fastify app by injection (the same routes, schemas and error codes as an
 * in-process server), and streams the answers back. The front bounds how many requests are in progress
 * here; this side only carries them.
 */
import { Worker } from 'node:worker_threads';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { BRIDGE_HEADER, type FrontCredentials, type FrontInit, type FrontTls, type FrontToMain, type MainToFront } from './admin-front-protocol.js';

/** The worker's module: next to this one once built; from the sources (tests), the built one. */
function frontModule(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../../dist/operator/admin-front.js', here) : new URL('./admin-front.js', here);
}

export class FrontListenError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

interface Running {
  aborted: boolean;
  stop?: () => void;
}

export class AdminFront {
  private readonly running = new Map<number, Running>();
  private closing: Promise<void> | undefined;
  /** Requests handed over since the start (for the measurements). */
  handedOver = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly app: FastifyInstance,
    private readonly secret: string,
    private readonly logger: Logger,
    readonly port: number,
  ) {
    worker.on('message', (m: FrontToMain) => this.onMessage(m));
  }

  /** Starts the front; resolves once it listens (rejects with FrontListenError when it cannot). */
  static start(opts: { readonly app: FastifyInstance; readonly secret: string; readonly logger: Logger; readonly init: FrontInit }): Promise<AdminFront> {
    const worker = new Worker(frontModule(), { workerData: opts.init, name: 'gwclusterd admin API' });
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => {
        worker.off('message', first);
        void worker.terminate();
        reject(e);
      };
      const first = (m: FrontToMain) => {
        if (m.t === 'listening') {
          worker.off('message', first);
          worker.off('error', fail);
          worker.on('error', (e) => opts.logger.error({ err: e.message }, 'the admin API thread failed; the admin API does not answer until a restart'));
          resolve(new AdminFront(worker, opts.app, opts.secret, opts.logger, m.port));
        } else if (m.t === 'listen-error') fail(new FrontListenError(m.message, m.code));
        else if (m.t === 'log') opts.logger[m.level]({ component: 'admin-api' }, m.message);
      };
      worker.on('message', first);
      worker.once('error', fail);
    });
  }

  private post(m: MainToFront): void {
    this.worker.postMessage(m);
  }

  private onMessage(m: FrontToMain): void {
    if (m.t === 'request') void this.run(m);
    else if (m.t === 'abort') {
      const r = this.running.get(m.id);
      if (r) {
        r.aborted = true;
        r.stop?.();
        this.running.delete(m.id);
      }
    } else if (m.t === 'log') this.logger[m.level]({ component: 'admin-api' }, m.message);
  }

  private async run(m: Extract<FrontToMain, { t: 'request' }>): Promise<void> {
    this.handedOver++;
    const r: Running = { aborted: false };
    this.running.set(m.id, r);
    try {
      const res = await this.app.inject({
        method: m.method as 'GET',
        url: m.url,
        headers: { ...m.headers, [BRIDGE_HEADER]: `${this.secret} ${m.authenticated ? 1 : 0}` },
        remoteAddress: m.remoteAddress,
        payloadAsStream: true,
        ...(m.body ? { payload: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength) } : {}),
      });
      const raw = (res.raw as unknown as { res: NodeJS.EventEmitter & { destroy(): void } }).res;
      const stream = res.stream();
      r.stop = () => {
        stream.destroy();
        raw.destroy();
        // The routes that stream stop on their response's 'close' (a client that went away).
        raw.emit('close');
      };
      if (r.aborted) return r.stop();
      this.post({ t: 'head', id: m.id, status: res.statusCode, headers: res.headers as Record<string, string | string[]> });
      stream.on('data', (chunk: Buffer) => {
        if (!r.aborted) this.post({ t: 'data', id: m.id, chunk: new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) });
      });
      stream.on('end', () => {
        this.running.delete(m.id);
        if (!r.aborted) this.post({ t: 'end', id: m.id });
      });
      stream.on('error', (e: Error) => {
        this.running.delete(m.id);
        if (!r.aborted) this.post({ t: 'fail', id: m.id, message: e.message });
      });
    } catch (e) {
      this.running.delete(m.id);
      if (!r.aborted) this.post({ t: 'fail', id: m.id, message: (e as Error).message });
    }
  }

  /** New credentials from a reload: the tokens from the next request on, the TLS files from the next handshake on. */
  update(credentials: FrontCredentials, tls?: FrontTls): void {
    this.post({ t: 'credentials', credentials, ...(tls ? { tls } : {}) });
  }

  /** Stops listening, ends every request and stream, and ends the thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const r of this.running.values()) {
        r.aborted = true;
        r.stop?.();
      }
      this.running.clear();
      const closed = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        this.worker.on('message', (m: FrontToMain) => {
          if (m.t === 'closed') {
            clearTimeout(timer);
            resolve();
          }
        });
        this.worker.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.post({ t: 'close' });
      await closed;
      await this.worker.terminate();
    })();
    return this.closing;
  }
}
