// Capture: frames from one Ethernet interface, classified by a WorkUnitFilter, in batches.
import { EventEmitter } from 'node:events';
import { loadBinding, type FilterBinding, type NativeCapture, type NativeCaptureStats } from '../common/binding.js';
import { callNative, checkBoolean, checkBytes, checkInteger, NativeCallError, translateNativeError } from '../common/errors.js';
import type { WorkUnitFilter } from '../filter/filter.js';

export interface CaptureOptions {
  /** Interface name, e.g. 'eth0'. Ethernet (EN10MB) links only. */
  device: string;
  /** Classifies each frame, counts, and holds (master); must be created with `frames: true`. */
  filter: WorkUnitFilter;
  /** A BPF expression (pcap-filter(7)) applied in the kernel, e.g. 'udp port 1701'. Default: none. */
  bpf?: string;
  /** Bytes kept per frame; frames cut shorter than their IP length are counted as truncated. Default 65535. */
  snaplen?: number;
  /** Accept frames for other MACs (needed for distribution methods 2 and 3). Default true. */
  promiscuous?: boolean;
  /** Kernel capture buffer in bytes. Default 4 MiB. */
  bufferBytes?: number;
  /** Frames per 'batch' event at most. Default 256. */
  maxBatch?: number;
  binding?: FilterBinding;
}

/** One delivery: frame i is frames[offsets[i], offsets[i + 1]); its verdict and unit at index i. */
export interface CaptureBatch {
  frames: Buffer;
  offsets: Uint32Array;
  verdicts: Uint8Array;
  units: Uint16Array;
}

export type CaptureStats = NativeCaptureStats;

interface CaptureEvents {
  batch: [CaptureBatch];
  error: [NativeCallError];
  close: [];
}

/**
 * Lifecycle: `open()` activates the pcap handle (errors surface here: no such device, no
 * permission, bad BPF); `start()` begins delivering 'batch' events on the JS thread; `close()`
 * stops and releases the handle (idempotent; 'close' is emitted once). A failure while running
 * emits 'error' and closes. `inject()` works from open() to close().
 */
export class Capture extends EventEmitter<CaptureEvents> {
  readonly device: string;
  readonly #native: NativeCapture;
  #closed = false;
  #started = false;

  private constructor(device: string, native: NativeCapture) {
    super();
    this.device = device;
    this.#native = native;
  }

  static open(opts: CaptureOptions): Capture {
    const call = 'Capture.open';
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`${call}: opts must be an object { device, filter, bpf?, snaplen?, promiscuous?, bufferBytes?, maxBatch? }`);
    if (typeof opts.device !== 'string' || opts.device.length === 0 || opts.device.length > 15) {
      throw new TypeError(`${call}: opts.device must be an interface name (1..15 characters), got ${JSON.stringify(opts.device)}`);
    }
    const f = opts.filter as WorkUnitFilter | undefined;
    if (typeof f !== 'object' || f === null || !('native' in f)) throw new TypeError(`${call}: opts.filter must be a WorkUnitFilter`);
    if (!f.frames) throw new TypeError(`${call}: opts.filter must be created with frames: true (Capture delivers Ethernet frames)`);
    const bpf = opts.bpf ?? '';
    if (typeof bpf !== 'string') throw new TypeError(`${call}: opts.bpf must be a BPF expression string`);
    const snaplen = opts.snaplen ?? 65535;
    const promiscuous = opts.promiscuous ?? true;
    const bufferBytes = opts.bufferBytes ?? 4 << 20;
    const maxBatch = opts.maxBatch ?? 256;
    checkInteger(snaplen, call, 'opts.snaplen', 64, 262144);
    checkBoolean(promiscuous, call, 'opts.promiscuous');
    checkInteger(bufferBytes, call, 'opts.bufferBytes', 65536, 1 << 30);
    checkInteger(maxBatch, call, 'opts.maxBatch', 1, 65536);
    const b = opts.binding ?? loadBinding();
    const Ctor = b.Capture;
    if (!b.hasPcap || !Ctor) {
      throw new NativeCallError(call, 'the addon was built without libpcap; install libpcap-dev (scripts/apt-packages.txt) and rebuild', { code: 'GWC_NO_PCAP' });
    }
    const native = callNative(call, () => new Ctor(opts.device, f.native, bpf, snaplen, promiscuous, bufferBytes, maxBatch));
    return new Capture(opts.device, native);
  }

  /** Begins delivering 'batch' events. */
  start(): this {
    if (this.#closed) throw new NativeCallError('Capture.start', `the capture on ${this.device} is closed`, { code: 'GWC_CAPTURE_CLOSED' });
    if (this.#started) return this;
    callNative('Capture.start', () =>
      this.#native.start(
        (batch) => this.emit('batch', batch),
        (err) => {
          this.#finish();
          this.emit('error', translateNativeError('Capture', err) as NativeCallError);
        },
      ),
    );
    this.#started = true;
    return this;
  }

  /** Sends one Ethernet frame out of the interface (pcap_inject); returns the bytes sent. */
  inject(frame: Uint8Array): number {
    checkBytes(frame, 'Capture.inject', 'frame');
    if (frame.length < 14) throw new RangeError(`Capture.inject: frame must be an Ethernet frame of at least 14 bytes, got ${frame.length}`);
    return callNative('Capture.inject', () => this.#native.inject(frame));
  }

  stats(): CaptureStats {
    return callNative('Capture.stats', () => this.#native.stats());
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    callNative('Capture.close', () => this.#native.close());
    this.emit('close');
  }
}
