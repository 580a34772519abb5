// Binding when the address comes up late: EADDRNOTAVAIL is retried with bounded exponential backoff,
// every other error is the caller's at once. Virtual time: the waits are recorded, not slept.
import { describe, expect, it } from 'vitest';
import { BIND_RETRY, BindRetryExhausted, bindWithRetry, type BindRetryHooks } from '../../src/control/bind-retry.js';

const errno = (code: string) => Object.assign(new Error(`bind ${code}`), { code });

function virtualTime() {
  let now = 0;
  const waits: number[] = [];
  const retries: { attempt: number; code: string; delayMs: number }[] = [];
  const hooks: BindRetryHooks = {
    now: () => now,
    sleep: async (ms) => {
      waits.push(ms);
      now += ms;
    },
    onRetry: ({ attempt, code, delayMs }) => retries.push({ attempt, code, delayMs }),
  };
  return { hooks, waits, retries };
}

describe('bindWithRetry', () => {
  it('retries EADDRNOTAVAIL with doubling waits until the address is there, logging each failure', async () => {
    const t = virtualTime();
    let calls = 0;
    const socket = await bindWithRetry(
      'cluster.port 7400 on 192.0.2.11',
      async () => {
        if (++calls < 5) throw errno('EADDRNOTAVAIL');
        return 'bound';
      },
      t.hooks.onRetry,
      { firstDelayMs: 250, maxDelayMs: 1000, totalMs: 60_000 },
      t.hooks,
    );
    expect(socket).toBe('bound');
    expect(t.waits).toEqual([250, 500, 1000, 1000]);
    expect(t.retries.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    expect(t.retries.every((r) => r.code === 'EADDRNOTAVAIL')).toBe(true);
  });

  it('gives up after the retry window with BindRetryExhausted (bounded: never waits past the window)', async () => {
    const t = virtualTime();
    const attempt = bindWithRetry('admin API on 192.0.2.11:7401', async () => Promise.reject(errno('EADDRNOTAVAIL')), t.hooks.onRetry, { firstDelayMs: 100, maxDelayMs: 400, totalMs: 1000 }, t.hooks);
    await expect(attempt).rejects.toBeInstanceOf(BindRetryExhausted);
    await expect(attempt).rejects.toThrow(/admin API on 192\.0\.2\.11:7401: still EADDRNOTAVAIL after \d+ attempts/);
    expect(t.waits.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(t.waits).toEqual([100, 200, 400, 300]);
  });

  it('does not retry other errors: a port in use or a permission problem is reported at once', async () => {
    for (const code of ['EADDRINUSE', 'EACCES']) {
      const t = virtualTime();
      await expect(bindWithRetry('x', async () => Promise.reject(errno(code)), t.hooks.onRetry, BIND_RETRY, t.hooks)).rejects.toMatchObject({ code });
      expect(t.waits).toEqual([]);
    }
  });
});
