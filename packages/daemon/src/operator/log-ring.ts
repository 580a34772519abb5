/**
 * The member's recent log lines in memory, for GET /v1/logs and `gwctl diagnose`: a pino destination
 * (one JSON line per write) that keeps the last `maxLines` lines and at most `maxBytes` bytes of them;
 * the oldest lines go first. Nothing is written to disk; stdout (the journal) keeps the full log.
 */
export interface LogRingOptions {
  /** Lines kept at most (default 2000). */
  readonly maxLines?: number;
  /** Bytes of lines kept at most (default 1 MiB); a single longer line is cut to this. */
  readonly maxBytes?: number;
}

export class LogRing {
  readonly maxLines: number;
  readonly maxBytes: number;
  readonly #lines: string[] = [];
  #bytes = 0;
  #dropped = 0;

  constructor(opts: LogRingOptions = {}) {
    this.maxLines = opts.maxLines ?? 2000;
    this.maxBytes = opts.maxBytes ?? 1 << 20;
    if (!Number.isInteger(this.maxLines) || this.maxLines < 1) throw new RangeError(`LogRing: maxLines must be an integer >= 1, got ${this.maxLines}`);
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 256) throw new RangeError(`LogRing: maxBytes must be an integer >= 256, got ${this.maxBytes}`);
  }

  /** pino destination interface: one or more JSON lines. */
  write(chunk: string): void {
    for (const raw of chunk.split('\n')) {
      if (raw.length === 0) continue;
      const line = raw.length > this.maxBytes ? raw.slice(0, this.maxBytes) : raw;
      this.#lines.push(line);
      this.#bytes += line.length;
      while (this.#lines.length > this.maxLines || this.#bytes > this.maxBytes) {
        this.#bytes -= this.#lines.shift()!.length;
        this.#dropped++;
      }
    }
  }

  /** The last `limit` lines, oldest first. */
  recent(limit = this.maxLines): string[] {
    return this.#lines.slice(-Math.max(0, limit));
  }

  /** Lines pushed out of the ring since start. */
  get dropped(): number {
    return this.#dropped;
  }
}
