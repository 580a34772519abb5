/**
 * Anti-replay state for one sender: the newest incarnation seen, and within it a sliding window over
 * seq as in IPsec ESP (RFC 4303 section 3.4.3): a seq above the highest seen advances the window; one
 * inside the window is accepted once; one at or below (highest - size) is too old.
 *
 * check() only answers; commit() records. The caller commits only after the message's signature has
 * been verified, so forged datagrams can never move the window.
 */

export type ReplayVerdict = { ok: true } | { ok: false; reason: string };

export class ReplayWindow {
  private incarnation = -1;
  /** Highest seq accepted in `incarnation`; 0 before the first. */
  private highest = 0;
  /** seen[s % size] tells whether seq s, for highest - size < s <= highest, was accepted. */
  private readonly seen: Uint8Array;

  /** size: how many seqs below the highest are still accepted out of order (RFC 4303 default 64). */
  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1 || size > 65536) throw new RangeError(`replay window size ${size} must be an integer 1..65536`);
    this.seen = new Uint8Array(size);
  }

  get newestIncarnation(): number {
    return this.incarnation;
  }

  get highestSeq(): number {
    return this.highest;
  }

  check(incarnation: number, seq: number): ReplayVerdict {
    if (incarnation < this.incarnation) {
      return { ok: false, reason: `incarnation ${incarnation} is older than ${this.incarnation}, the newest seen from this sender (a message from a process that has since restarted)` };
    }
    if (seq < 1) return { ok: false, reason: `seq ${seq} is never sent (sequences start at 1)` };
    if (incarnation > this.incarnation || seq > this.highest) return { ok: true };
    if (seq <= this.highest - this.size) {
      return { ok: false, reason: `seq ${seq} of incarnation ${incarnation} is older than the ${this.size}-message window (highest seen ${this.highest})` };
    }
    if (this.seen[seq % this.size]) return { ok: false, reason: `seq ${seq} of incarnation ${incarnation} was already received` };
    return { ok: true };
  }

  /** Records (incarnation, seq), which check() must have accepted. */
  commit(incarnation: number, seq: number): void {
    if (incarnation > this.incarnation) {
      this.incarnation = incarnation;
      this.highest = 0;
      this.seen.fill(0);
    }
    if (seq > this.highest) {
      const advance = seq - this.highest;
      if (advance >= this.size) {
        this.seen.fill(0);
      } else {
        for (let s = this.highest + 1; s < seq; s++) this.seen[s % this.size] = 0;
      }
      this.highest = seq;
    }
    this.seen[seq % this.size] = 1;
  }
}
