/**
 * Binding the member's sockets when its address may come up late at boot (DHCP, a bond or VLAN that
 * networkd brings up after gwclusterd starts): EADDRNOTAVAIL is retried with exponential backoff for a
 * bounded time, each failure logged; any other error, or a retry window that runs out, is the caller's.
 */
export interface BindRetryPolicy {
  /** First wait after a failed attempt, ms. */
  readonly firstDelayMs: number;
  /** Waits double up to this, ms. */
  readonly maxDelayMs: number;
  /** Give up once this much time has passed since the first attempt, ms. */
  readonly totalMs: number;
}

export const BIND_RETRY: BindRetryPolicy = { firstDelayMs: 250, maxDelayMs: 5_000, totalMs: 120_000 };

/** Error codes worth waiting out: the address is not (yet) configured on this host. */
export const TRANSIENT_BIND_CODES: ReadonlySet<string> = new Set(['EADDRNOTAVAIL']);

export class BindRetryExhausted extends Error {
  override readonly name = 'BindRetryExhausted';
  constructor(
    readonly what: string,
    readonly attempts: number,
    readonly code: string,
  ) {
    super(`${what}: still ${code} after ${attempts} attempts`);
  }
}

export interface BindRetryHooks {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Called after each transient failure, before the wait. */
  readonly onRetry: (info: { what: string; attempt: number; code: string; delayMs: number }) => void;
}

const realHooks = (onRetry: BindRetryHooks['onRetry']): BindRetryHooks => ({
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  onRetry,
});

/**
 * Runs `attempt` until it succeeds, retrying transient bind errors (TRANSIENT_BIND_CODES) under `policy`.
 * Rethrows a non-transient error at once; throws BindRetryExhausted when the window runs out.
 */
export async function bindWithRetry<T>(
  what: string,
  attempt: () => Promise<T>,
  onRetry: BindRetryHooks['onRetry'],
  policy: BindRetryPolicy = BIND_RETRY,
  hooks: BindRetryHooks = realHooks(onRetry),
): Promise<T> {
  const start = hooks.now();
  let delay = policy.firstDelayMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (!TRANSIENT_BIND_CODES.has(code)) throw e;
      const left = policy.totalMs - (hooks.now() - start);
      if (left <= 0) throw new BindRetryExhausted(what, n, code);
      const wait = Math.min(delay, left);
      hooks.onRetry({ what, attempt: n, code, delayMs: wait });
      await hooks.sleep(wait);
      delay = Math.min(delay * 2, policy.maxDelayMs);
    }
  }
}
