/**
 * HTTP(S) client of the admin API with gwctl's error taxonomy (exit codes in docs/operator-guide.md).
 * Uses node:http / node:https directly so that it can present a client certificate (mutual TLS).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Writable } from 'node:stream';

export const EXIT = { ok: 0, failure: 1, badArguments: 2, unreachable: 3, unauthorized: 4, refused: 5 } as const;

export class GwctlError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'GwctlError';
  }
}

export interface ClientOptions {
  readonly endpoint: string;
  readonly token?: string;
  readonly timeoutMs?: number;
  /** PEM files for https endpoints: the CA that signed the member certificates, and a client certificate. */
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new GwctlError(EXIT.badArguments, `${flag} ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

const TLS_AUTH_ERRORS = /certificate|CERT_|alert|handshake/i;

/** One request; resolves with status and parsed JSON (or text), maps transport failures to exit codes. */
export function request(opts: ClientOptions, method: string, path: string, body?: unknown, sink?: Writable): Promise<{ status: number; body: any; text: string }> {
  const url = new URL(path, opts.endpoint);
  const timeoutMs = opts.timeoutMs ?? 3000;
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const https = url.protocol === 'https:';
  const tls = https
    ? {
        ...(opts.caFile ? { ca: readPem('--cacert', opts.caFile) } : {}),
        ...(opts.certFile ? { cert: readPem('--cert', opts.certFile) } : {}),
        ...(opts.keyFile ? { key: readPem('--key', opts.keyFile) } : {}),
        // Member certificates name the member IP; the admin API may listen on another (management)
        // address, so the chain is checked against the CA but not the host name.
        checkServerIdentity: () => undefined,
      }
    : {};
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(url, { method, headers, timeout: timeoutMs, ...tls }, (res: IncomingMessage) => {
      if (sink && res.statusCode === 200) {
        // A binary answer (a pcap stream) goes to the sink as it arrives.
        res.pipe(sink);
        res.on('end', () => resolve({ status: 200, body: null, text: '' }));
        res.on('error', (e) => reject(e));
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = null;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = null;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
      res.on('error', (e) => reject(e));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof GwctlError) return reject(e);
      const code = e.code ?? e.message;
      if (https && TLS_AUTH_ERRORS.test(`${code} ${e.message}`)) {
        reject(new GwctlError(EXIT.unauthorized, `TLS with ${opts.endpoint} failed (${code}: ${e.message}); check --cacert (the cluster CA) and --cert/--key (a certificate from that CA)`));
        return;
      }
      reject(new GwctlError(EXIT.unreachable, `cannot reach the gwclusterd admin API at ${opts.endpoint} (${code === 'TIMEOUT' ? e.message : code}); is the daemon running, and is --endpoint right?`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** A request whose error statuses become GwctlError: 401/403 -> exit 4, 400 -> exit 2, others -> exit 5. */
export async function call<T>(opts: ClientOptions, method: string, path: string, body?: unknown, sink?: Writable): Promise<T> {
  const res = await request(opts, method, path, body, sink);
  const b = res.body as { code?: string; message?: string } | null;
  if (res.status === 401 || res.status === 403) throw new GwctlError(EXIT.unauthorized, `${b?.code ?? res.status}: ${b?.message ?? 'authentication failed'}`);
  if (res.status === 400) throw new GwctlError(EXIT.badArguments, `${b?.code ?? 400}: ${b?.message ?? 'bad request'}`);
  if (res.status < 200 || res.status >= 300) throw new GwctlError(EXIT.refused, `${b?.code ?? res.status}: ${b?.message ?? res.text.slice(0, 200)}`);
  return (res.body ?? res.text) as T;
}

export function getJson<T>(opts: ClientOptions, path: string): Promise<T> {
  return call<T>(opts, 'GET', path);
}
