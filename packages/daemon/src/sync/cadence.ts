/**
 * When the session sync's periodic passes run (docs/state-sync.md). Pure: the time comes in.
 *
 *   - every URGENT_EVERY_MS (the driver's tick): urgent changes are collected (creation, state change)
 *     and the replicator sends what its rate limit allows;
 *   - every LAZY_EVERY_MS: lazy changes too (other sequence, ack and window movement);
 *   - every EXPIRE_EVERY_MS: expired sessions are removed and the table's statistics are taken.
 */
export const URGENT_EVERY_MS = 10;
export const LAZY_EVERY_MS = 1000;
export const EXPIRE_EVERY_MS = 1000;

export class SyncCadence {
  private lastLazy = 0;
  private lastExpire = 0;

  /** Called on every tick with the time (ms); says which slower passes are due now (and counts them run). */
  due(now: number): { readonly lazy: boolean; readonly expire: boolean } {
    const lazy = now - this.lastLazy >= LAZY_EVERY_MS;
    if (lazy) this.lastLazy = now;
    const expire = now - this.lastExpire >= EXPIRE_EVERY_MS;
    if (expire) this.lastExpire = now;
    return { lazy, expire };
  }
}
