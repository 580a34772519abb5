// Polling with a bound in time and in attempts.

import { errMessage } from './commands.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a truthy value (which is returned), bounded in time and in attempts.
 * A throwing / rejecting `fn` counts as "not yet" (its last error is reported on timeout); a call to
 * `fn` that itself hangs past the deadline also ends the wait.
 */
export async function waitFor(fn, opts = {}) {
  const { timeoutMs = 5_000, intervalMs = 100, what = 'condition' } = opts;
  if (!(timeoutMs >= 0) || !(intervalMs >= 0)) throw new RangeError('waitFor: timeoutMs and intervalMs must be >= 0');
  const start = Date.now();
  const deadline = start + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / Math.max(intervalMs, 1)) + 2;
  let attempts = 0;
  let lastError;
  let lastValue;
  const TIMEOUT = Symbol('timeout');
  while (attempts < maxAttempts) {
    attempts++;
    const remaining = Math.max(deadline - Date.now(), 1);
    let timer;
    try {
      const v = await Promise.race([
        Promise.resolve().then(fn),
        new Promise((r) => { timer = setTimeout(() => r(TIMEOUT), remaining); }),
      ]);
      if (v === TIMEOUT) { lastError = new Error('the check itself did not finish before the deadline'); break; }
      if (v) return v;
      lastValue = v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() + intervalMs > deadline) {
      // One last attempt exactly at the deadline, then give up.
      if (Date.now() >= deadline) break;
      await sleep(Math.max(deadline - Date.now(), 0));
      continue;
    }
    await sleep(intervalMs);
  }
  const detail = lastError !== undefined ? `; last error: ${errMessage(lastError)}` : `; last value: ${JSON.stringify(lastValue)}`;
  const err = new Error(`timed out after ${Date.now() - start} ms waiting for ${what} (${attempts} attempts)${detail}`);
  if (lastError !== undefined) err.cause = lastError;
  throw err;
}
