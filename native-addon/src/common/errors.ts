// Argument checks and the translation of native failures, shared by the wrapper modules.

/**
 * A failure inside the native addon. `call` names the wrapper call; `syscall` and `errno` are set
 * when the OS refused something (e.g. pcap_activate, pcap_inject), with the OS's text in the message.
 */
export class NativeCallError extends Error {
  readonly code: string;
  readonly call: string;
  readonly syscall: string | undefined;
  readonly errno: number | undefined;

  constructor(call: string, message: string, opts: { code?: string; syscall?: string; errno?: number; cause?: unknown } = {}) {
    super(`${call}: ${message}`, { cause: opts.cause });
    this.name = 'NativeCallError';
    this.call = call;
    this.code = opts.code ?? 'GWC_NATIVE_FAILED';
    this.syscall = opts.syscall;
    this.errno = opts.errno;
  }
}

/**
 * Runs a native call. Argument errors (TypeError, RangeError) keep their class and gain the call's
 * name if they lack it; anything else becomes a NativeCallError carrying syscall/errno when present.
 */
export function callNative<T>(call: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw translateNativeError(call, e);
  }
}

export function translateNativeError(call: string, e: unknown): Error {
  if (e instanceof NativeCallError) return e;
  if (e instanceof TypeError || e instanceof RangeError) {
    if (e.message.startsWith(call)) return e;
    const Ctor = e instanceof TypeError ? TypeError : RangeError;
    return new Ctor(`${call}: ${e.message}`, { cause: e });
  }
  const err = e as { message?: unknown; syscall?: unknown; errno?: unknown; code?: unknown };
  const opts: { code?: string; syscall?: string; errno?: number; cause?: unknown } = { cause: e };
  if (typeof err?.syscall === 'string') opts.syscall = err.syscall;
  if (typeof err?.errno === 'number') opts.errno = err.errno;
  if (typeof err?.code === 'string') opts.code = err.code;
  const text = typeof err?.message === 'string' ? err.message : String(e);
  return new NativeCallError(call, text, opts);
}

export function checkBytes(x: unknown, call: string, name: string): asserts x is Uint8Array {
  if (!(x instanceof Uint8Array)) throw new TypeError(`${call}: ${name} must be a Buffer or Uint8Array, got ${describe(x)}`);
}

export function checkBoolean(x: unknown, call: string, name: string): asserts x is boolean {
  if (typeof x !== 'boolean') throw new TypeError(`${call}: ${name} must be true or false, got ${describe(x)}`);
}

export function checkInteger(x: unknown, call: string, name: string, min: number, max: number): asserts x is number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
    throw new TypeError(`${call}: ${name} must be an integer ${min}..${max}, got ${describe(x)}`);
  }
}

/** A distribution method (003: 1 = the master forwards, 2 and 3 = every member sees the traffic). */
export function checkMethod(x: unknown, call: string, name: string): asserts x is 1 | 2 | 3 {
  if (x !== 1 && x !== 2 && x !== 3) throw new TypeError(`${call}: ${name} must be 1, 2 or 3, got ${String(x)}`);
}

/** Packet i is packets[offsets[i], offsets[i + 1]): n + 1 non-decreasing offsets within packets. */
export function checkOffsets(packets: unknown, offsets: unknown, call: string): asserts offsets is Uint32Array {
  checkBytes(packets, call, 'packets');
  if (!(offsets instanceof Uint32Array)) {
    throw new TypeError(`${call}: offsets must be a Uint32Array of n + 1 non-decreasing byte offsets into packets, got ${describe(offsets)}`);
  }
  const n = offsets.length;
  for (let i = 1; i < n; i++) {
    if (offsets[i]! < offsets[i - 1]!) {
      throw new RangeError(`${call}: offsets must be non-decreasing; offsets[${i}]=${offsets[i]} < offsets[${i - 1}]=${offsets[i - 1]}`);
    }
  }
  if (n > 0 && offsets[n - 1]! > packets.length) {
    throw new RangeError(`${call}: offsets[${n - 1}]=${offsets[n - 1]} is past the end of packets (${packets.length} bytes)`);
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x === 'object') return (x as object).constructor?.name ?? 'object';
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x);
  return `${typeof x} ${String(x)}`;
}
