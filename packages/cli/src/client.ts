/** HTTP client of the admin API with gwctl's error taxonomy (exit codes in docs/operator-guide.md). */

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
}

export async function getJson<T>(opts: ClientOptions, path: string): Promise<T> {
  const url = new URL(path, opts.endpoint);
  let res: Response;
  try {
    res = await fetch(url, {
      headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
      signal: AbortSignal.timeout(opts.timeoutMs ?? 3000),
    });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; errors?: { code?: string }[] } };
    const cause =
      err.name === 'TimeoutError' || err.name === 'AbortError'
        ? `no answer within ${opts.timeoutMs ?? 3000} ms`
        : (err.cause?.code ?? err.cause?.errors?.[0]?.code ?? (err.cause as Error | undefined)?.message ?? err.message);
    throw new GwctlError(EXIT.unreachable, `cannot reach the gwclusterd admin API at ${opts.endpoint} (${cause}); is the daemon running, and is --endpoint right?`);
  }
  const body = (await res.json().catch(() => null)) as { code?: string; message?: string } | null;
  if (res.status === 401 || res.status === 403) throw new GwctlError(EXIT.unauthorized, body?.message ?? `authentication failed (${res.status})`);
  if (!res.ok) throw new GwctlError(EXIT.refused, `${res.status} ${body?.code ?? ''}: ${body?.message ?? res.statusText}`);
  return body as T;
}
