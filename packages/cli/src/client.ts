/**
 * HTTP(S) client of the admin API with gwctl's error taxonomy (exit codes in docs/operator-guide.md).
 * Uses node:http / node:https directly so that it can present a client certificate (mutual TLS).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ADMIN_API_VERSION, API_VERSION_HEADER, viewProblem } from '@gwcluster/contracts';

/** A view schema of the contracts package. */
export type ViewSchema = Parameters<typeof viewProblem>[0];
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
export function request(opts: ClientOptions, method: string, path: string, body?: unknown, sink?: Writable): Promise<{ status: number; body: any; text: string; apiVersion: string | null }> {
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
        res.on('end', () => resolve({ status: 200, body: null, text: '', apiVersion: null }));
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
        const v = res.headers[API_VERSION_HEADER];
        resolve({ status: res.statusCode ?? 0, body: parsed, text, apiVersion: typeof v === 'string' ? v : null });
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

/**
 * A request whose error statuses become GwctlError: 401/403 -> exit 4, 400 -> exit 2, others -> exit 5;
 * a success answer is checked against `schema` (the contracts package's view) before anyone reads it: an
 * answer of another shape (a daemon of another release, or not a gwclusterd) is exit 1, saying which
 * admin API version the daemon speaks. With `schema` null (a text or binary answer: logs, a pcap stream
 * written to `sink`) the answer is returned as it is.
 */
export async function call<T>(opts: ClientOptions, method: string, path: string, schema: ViewSchema | null, body?: unknown, sink?: Writable): Promise<T> {
  const res = await request(opts, method, path, body, sink);
  const b = res.body as { code?: unknown; message?: unknown } | null;
  const coded = b !== null && typeof b === 'object' && typeof b.code === 'string' && typeof b.message === 'string';
  const code = coded ? (b.code as string) : String(res.status);
  const message = (fallback: string) => (coded ? (b.message as string) : res.text.trim() ? res.text.trim().slice(0, 200) : fallback);
  if (res.status === 401 || res.status === 403) throw new GwctlError(EXIT.unauthorized, `${code}: ${message('authentication failed')}`);
  if (res.status === 400) throw new GwctlError(EXIT.badArguments, `${code}: ${message('bad request')}`);
  if (res.status < 200 || res.status >= 300) throw new GwctlError(EXIT.refused, `${code}: ${message(`HTTP ${res.status}`)}`);
  if (schema === null) return (res.body ?? res.text) as T;
  const problem = res.body === null ? `not JSON: ${JSON.stringify(res.text.slice(0, 80))}` : viewProblem(schema, res.body);
  if (problem !== null) throw new GwctlError(EXIT.failure, unexpectedAnswer(opts, method, path, res.apiVersion, problem));
  return res.body as T;
}

/** The message for an answer gwctl cannot read. */
export function unexpectedAnswer(opts: ClientOptions, method: string, path: string, apiVersion: string | null, problem: string): string {
  const speaks =
    apiVersion === null
      ? `it sends no ${API_VERSION_HEADER} header (a gwclusterd older than this header, or not a gwclusterd at all)`
      : `the daemon speaks admin API version ${apiVersion}, this gwctl version ${ADMIN_API_VERSION}`;
  const advice = apiVersion !== null && apiVersion !== String(ADMIN_API_VERSION) ? '; use the gwctl of the daemon\'s release' : '';
  return `unexpected answer from ${opts.endpoint} to ${method} ${path} (${problem}); ${speaks}${advice}`;
}

export function getJson<T>(opts: ClientOptions, path: string, schema: ViewSchema): Promise<T> {
  return call<T>(opts, 'GET', path, schema);
}
