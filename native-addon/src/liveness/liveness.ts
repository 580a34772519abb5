// Fast liveness (liveness.h): the member's data-plane heartbeat on a native thread. Every intervalMs it
// sends each peer one authenticated datagram and reports a peer silent for (n + 0.5) x its interval as
// 'down' (once; 'up' when it is heard again). The keys come from the caller (packages/security
// livenessKeys: derived from the members' certificates); this module only moves bytes and keeps time.
import { loadBinding, type FilterBinding, type NativeLiveness, type NativeLivenessEvent, type NativeLivenessPeer, type NativeLivenessStats } from '../common/binding.js';
import { isIpv4Text } from '../common/addresses.js';
import { callNative, checkBytes, checkInteger, NativeCallError } from '../common/errors.js';

export const LIVENESS_DATAGRAM_BYTES = 64;
export const LIVENESS_KEY_BYTES = 32;
export const LIVENESS_STATE = { up: 1, leaving: 2 } as const;

export type LivenessEvent = NativeLivenessEvent;
export type LivenessPeerView = NativeLivenessPeer;
export type LivenessStats = NativeLivenessStats;

export interface LivenessOptions {
  /** This member's address: the socket binds it, and it is the sender of every heartbeat. */
  readonly address: string;
  /** UDP port (the same on every member); 0: any (tests). */
  readonly port: number;
  /** Transmit interval, ms (1..10000). */
  readonly intervalMs: number;
  /** Smallest number of missed heartbeats that is a death (adaptive upwards with measured loss). */
  readonly minPeriods: number;
  readonly maxPeriods: number;
  /** K of the adaptive rule n * P^n < 1/K. */
  readonly lossToleranceK: number;
  /** This process's incarnation (boot time, ms): receivers refuse anything older. */
  readonly incarnation: number;
  /** SCHED_FIFO priority of the thread; 0: normal scheduling. Refused priority: an 'error' event, and the thread runs on. */
  readonly realtimePriority?: number;
  readonly onEvent: (e: LivenessEvent) => void;
}

export interface LivenessPeer {
  readonly address: string;
  /** Key of this member -> peer. */
  readonly txKey: Uint8Array;
  /** Key of peer -> this member. */
  readonly rxKey: Uint8Array;
}

/** True when the addon was built with libsodium (fast liveness). */
export function livenessAvailable(binding: FilterBinding = loadBinding()): boolean {
  return binding.hasLiveness === true && !!binding.Liveness;
}

export class Liveness {
  readonly #native: NativeLiveness;
  #closed = false;

  constructor(opts: LivenessOptions, binding: FilterBinding = loadBinding()) {
    const call = 'new Liveness';
    if (!livenessAvailable(binding)) throw new NativeCallError(call, 'the addon was built without libsodium (install libsodium-dev and rebuild)', { code: 'GWC_NO_LIVENESS' });
    if (typeof opts.address !== 'string' || !isIpv4Text(opts.address)) throw new TypeError(`${call}: address must be an IPv4 address, got ${JSON.stringify(opts.address)}`);
    checkInteger(opts.port, call, 'port', 0, 65535);
    checkInteger(opts.intervalMs, call, 'intervalMs', 1, 10000);
    checkInteger(opts.minPeriods, call, 'minPeriods', 1, 100);
    checkInteger(opts.maxPeriods, call, 'maxPeriods', opts.minPeriods, 100);
    checkInteger(opts.incarnation, call, 'incarnation', 0, Number.MAX_SAFE_INTEGER);
    checkInteger(opts.realtimePriority ?? 0, call, 'realtimePriority', 0, 99);
    if (typeof opts.lossToleranceK !== 'number' || !(opts.lossToleranceK >= 1)) throw new RangeError(`${call}: lossToleranceK must be a number >= 1`);
    if (typeof opts.onEvent !== 'function') throw new TypeError(`${call}: onEvent must be a function`);
    const onEvent = opts.onEvent;
    this.#native = callNative(call, () =>
      new binding.Liveness!(
        {
          address: opts.address,
          port: opts.port,
          intervalMs: opts.intervalMs,
          minPeriods: opts.minPeriods,
          maxPeriods: opts.maxPeriods,
          lossToleranceK: opts.lossToleranceK,
          incarnation: opts.incarnation,
          realtimePriority: opts.realtimePriority ?? 0,
        },
        (e) => onEvent(e),
      ),
    );
  }

  /** Replaces the watched peers. A peer kept with the same keys keeps its state (armed, freshness). */
  setPeers(peers: readonly LivenessPeer[]): void {
    const call = 'Liveness.setPeers';
    if (!Array.isArray(peers)) throw new TypeError(`${call}: peers must be an array`);
    const seen = new Set<string>();
    const list = peers.map((p, i) => {
      if (typeof p?.address !== 'string' || !isIpv4Text(p.address)) throw new TypeError(`${call}: peers[${i}].address must be an IPv4 address`);
      if (seen.has(p.address)) throw new RangeError(`${call}: peers[${i}]: ${p.address} given twice`);
      seen.add(p.address);
      for (const k of ['txKey', 'rxKey'] as const) {
        checkBytes(p[k], call, `peers[${i}].${k}`);
        if (p[k].byteLength !== LIVENESS_KEY_BYTES) throw new RangeError(`${call}: peers[${i}].${k} must be ${LIVENESS_KEY_BYTES} bytes`);
      }
      return { address: p.address, txKey: p.txKey, rxKey: p.rxKey };
    });
    this.#call(call, (n) => n.setPeers(list));
  }

  peers(): LivenessPeerView[] {
    return this.#call('Liveness.peers', (n) => n.peers());
  }

  stats(): LivenessStats {
    return this.#call('Liveness.stats', (n) => n.stats());
  }

  boundPort(): number {
    return this.#call('Liveness.boundPort', (n) => n.boundPort());
  }

  /** Lets the process exit while the thread runs (the thread is stopped by close or at exit). */
  unref(): void {
    this.#native.unref();
  }

  /** Stops the thread; with announceLeaving every peer is told (it disarms instead of reporting a death). Idempotent. */
  close(opts: { announceLeaving?: boolean } = {}): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close({ announceLeaving: opts.announceLeaving === true });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #call<T>(call: string, fn: (n: NativeLiveness) => T): T {
    if (this.#closed) throw new NativeCallError(call, 'closed', { code: 'GWC_CLOSED' });
    return callNative(call, () => fn(this.#native));
  }
}

/** One heartbeat datagram, sealed as the native sender does (tests: forged, replayed and stale cases). */
export function sealLivenessDatagram(
  o: { state: number; intervalMs: number; from: string; to: string; incarnation: number; seq: number; key: Uint8Array },
  binding: FilterBinding = loadBinding(),
): Buffer {
  if (!binding.sealLivenessDatagram) throw new NativeCallError('sealLivenessDatagram', 'the addon was built without libsodium', { code: 'GWC_NO_LIVENESS' });
  const seal = binding.sealLivenessDatagram;
  return callNative('sealLivenessDatagram', () => seal(o.state, o.intervalMs, o.from, o.to, o.incarnation, o.seq, o.key));
}
