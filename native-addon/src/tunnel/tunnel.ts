// The WireGuard data path: TunnelTransport (keypairs, batch encryption and decryption, replay window,
// cryptokey routing, counters; no I/O) and TunnelDevice (one UDP socket and one TUN device served by a
// native thread). The handshake is not here: a protocol core gives the keypairs (setKeypairs) and answers
// the handshake datagrams the device hands up.
import {
  loadBinding,
  type FilterBinding,
  type NativeTunnelActivity,
  type NativeTunnelDevice,
  type NativeTunnelDeviceStats,
  type NativeTunnelEndpoint,
  type NativeTunnelKeypair,
  type NativeTunnelTransport,
} from '../common/binding.js';
import { isIpv4Text, isIpv6Text, parseIpv4, parseIpv6 } from '../common/addresses.js';
import { callNative, checkBytes, checkInteger, checkOffsets, NativeCallError, translateNativeError } from '../common/errors.js';

/** Outcome of one datagram in decryptBatch, by index (src/tunnel/transport.h DecryptStatus). */
export const DECRYPT_STATUS = [
  'data', 'keepalive', 'malformed', 'unknown-index', 'counter-limit', 'replayed', 'auth-failed',
  'bad-inner-packet', 'source-not-allowed',
] as const;
export type DecryptStatus = (typeof DECRYPT_STATUS)[number];

/** Outcome of one packet in encryptBatch, by index (EncryptStatus). */
export const ENCRYPT_STATUS = ['sent', 'no-peer', 'no-keypair', 'no-endpoint', 'bad-packet', 'send-limit', 'forwarded'] as const;
export type EncryptStatus = (typeof ENCRYPT_STATUS)[number];

/** Counters a replay window accepts behind the greatest counter seen (128 blocks of 64 bits, RFC 6479). */
export const REPLAY_WINDOW_COUNTERS = 8128;

export type TunnelEndpoint = NativeTunnelEndpoint;
export type TunnelKeypair = NativeTunnelKeypair;
export type TunnelActivity = NativeTunnelActivity;
export type TunnelDeviceStats = NativeTunnelDeviceStats;

export interface DecryptedBatch {
  status: DecryptStatus[];
  peers: Uint32Array;
  /** The inner packets of the datagrams with status 'data' (others are empty), concatenated. */
  plaintext: Buffer;
  offsets: Uint32Array;
}

export interface EncryptedBatch {
  status: EncryptStatus[];
  peers: Uint32Array;
  datagrams: Buffer;
  offsets: Uint32Array;
  endpoints: (TunnelEndpoint | null)[];
}

export interface TransportStats {
  decrypt: Record<DecryptStatus, number>;
  encrypt: Record<EncryptStatus, number>;
}

/** True when the addon was built with libsodium (the WireGuard data path). */
export function tunnelAvailable(binding: FilterBinding = loadBinding()): boolean {
  return binding.hasTunnel === true && !!binding.TunnelTransport;
}

/** An allowed-IPs prefix 'a.b.c.d/n' or 'x::/n' as the native 18-byte record. */
export function prefixRecord(prefix: string, call = 'prefixRecord'): Uint8Array {
  const slash = prefix.indexOf('/');
  const addr = slash < 0 ? prefix : prefix.slice(0, slash);
  const bitsText = slash < 0 ? undefined : prefix.slice(slash + 1);
  const rec = new Uint8Array(18);
  if (isIpv4Text(addr)) {
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new RangeError(`${call}: ${JSON.stringify(prefix)}: prefix length must be 0..32`);
    const v = parseIpv4(addr);
    rec.set([4, bits, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
    return rec;
  }
  if (isIpv6Text(addr)) {
    const bits = bitsText === undefined ? 128 : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 128) throw new RangeError(`${call}: ${JSON.stringify(prefix)}: prefix length must be 0..128`);
    rec.set([6, bits]);
    rec.set(parseIpv6(addr), 2);
    return rec;
  }
  throw new TypeError(`${call}: ${JSON.stringify(prefix)} is not an IPv4 or IPv6 prefix (a.b.c.d/n or x::/n)`);
}

function named<T extends string>(names: readonly T[], counts: number[]): Record<T, number> {
  return Object.fromEntries(names.map((n, i) => [n, counts[i] ?? 0])) as Record<T, number>;
}

export class TunnelTransport {
  /** @internal the native object, for TunnelDevice. */
  readonly native: NativeTunnelTransport;

  constructor(opts: { binding?: FilterBinding } = {}) {
    const binding = opts.binding ?? loadBinding();
    if (!binding.TunnelTransport) {
      throw new NativeCallError('new TunnelTransport', 'the addon was built without libsodium (install libsodium-dev and rebuild)', { code: 'GWC_NO_TUNNEL' });
    }
    const Ctor = binding.TunnelTransport;
    this.native = callNative('new TunnelTransport', () => new Ctor());
  }

  /** Replaces the peer's keypairs (a handshake core's `keypairs` effect). */
  setKeypairs(peer: number, keypairs: readonly TunnelKeypair[]): void {
    const call = 'TunnelTransport.setKeypairs';
    checkInteger(peer, call, 'peer', 0, 0xffffffff);
    keypairs.forEach((k, i) => {
      checkInteger(k.localIndex, call, `keypairs[${i}].localIndex`, 0, 0xffffffff);
      checkInteger(k.remoteIndex, call, `keypairs[${i}].remoteIndex`, 0, 0xffffffff);
      checkBytes(k.sendKey, call, `keypairs[${i}].sendKey`);
      checkBytes(k.receiveKey, call, `keypairs[${i}].receiveKey`);
    });
    callNative(call, () => this.native.setKeypairs(peer, keypairs.map((k) => ({ ...k }))));
  }

  setAllowedIps(peer: number, prefixes: readonly string[]): void {
    const call = 'TunnelTransport.setAllowedIps';
    checkInteger(peer, call, 'peer', 0, 0xffffffff);
    const buf = new Uint8Array(18 * prefixes.length);
    prefixes.forEach((p, i) => buf.set(prefixRecord(p, call), 18 * i));
    callNative(call, () => this.native.setAllowedIps(peer, buf));
  }

  setEndpoint(peer: number, endpoint: TunnelEndpoint): void {
    callNative('TunnelTransport.setEndpoint', () => this.native.setEndpoint(peer, endpoint.address, endpoint.port));
  }

  /** Packets for `peer` go, unencrypted, to the member `to` owning its tunnel (null: encrypt here). */
  setForward(peer: number, to: TunnelEndpoint | null): void {
    callNative('TunnelTransport.setForward', () => (to ? this.native.setForward(peer, to.address, to.port) : this.native.setForward(peer)));
  }

  /** The members (IPv4) whose forwarded packets this member encrypts. */
  setForwarders(addresses: readonly string[]): void {
    callNative('TunnelTransport.setForwarders', () => this.native.setForwarders([...addresses]));
  }

  removePeer(peer: number): void {
    callNative('TunnelTransport.removePeer', () => this.native.removePeer(peer));
  }

  /** Decrypts transport messages (datagram i = datagrams[offsets[i], offsets[i+1])) received from `from`. */
  decryptBatch(datagrams: Uint8Array, offsets: Uint32Array, from?: TunnelEndpoint): DecryptedBatch {
    const call = 'TunnelTransport.decryptBatch';
    checkOffsets(datagrams, offsets, call);
    const r = callNative(call, () => (from ? this.native.decryptBatch(datagrams, offsets, from.address, from.port) : this.native.decryptBatch(datagrams, offsets)));
    return { ...r, status: Array.from(r.status, (s) => DECRYPT_STATUS[s] ?? 'malformed') };
  }

  /** Encrypts inner packets to `peer`, or (peer = -1) to the peer whose allowed IPs hold each destination. */
  encryptBatch(peer: number, packets: Uint8Array, offsets: Uint32Array): EncryptedBatch {
    const call = 'TunnelTransport.encryptBatch';
    checkInteger(peer, call, 'peer', -1, 0xffffffff);
    checkOffsets(packets, offsets, call);
    const r = callNative(call, () => this.native.encryptBatch(peer, packets, offsets));
    return { ...r, status: Array.from(r.status, (s) => ENCRYPT_STATUS[s] ?? 'bad-packet') };
  }

  /** What happened per keypair since the last call (feeds a handshake core's timers). */
  activity(): TunnelActivity[] {
    return callNative('TunnelTransport.activity', () => this.native.activity());
  }

  peerStats(peer: number) {
    return callNative('TunnelTransport.peerStats', () => this.native.peerStats(peer));
  }

  stats(): TransportStats {
    const s = callNative('TunnelTransport.stats', () => this.native.stats());
    return { decrypt: named(DECRYPT_STATUS, s.decrypt), encrypt: named(ENCRYPT_STATUS, s.encrypt) };
  }
}

export interface TunnelDeviceOptions {
  transport: TunnelTransport;
  /** TUN interface name (1..15 characters); created and brought up. Addresses and routes are the caller's. */
  tunName: string;
  /** Default 1420 (WireGuard's: 1500 minus 80 bytes of IPv6 + UDP + WireGuard overhead). */
  mtu?: number;
  /** The IPv4 address the UDP socket binds (the cluster IP), default 0.0.0.0. */
  listenAddress?: string;
  /** Default 51820; 0 picks a free port (see boundPort). */
  listenPort?: number;
  /** The inside-to-owner path: the member's own address and port of its forward socket (docs/tunnels.md). */
  forwardAddress?: string;
  forwardPort?: number;
  /** On the JS thread; must not throw. */
  onEvent: (event: TunnelDeviceEvent) => void;
  binding?: FilterBinding;
}

export type TunnelDeviceEvent =
  /** A handshake message (initiation, response or cookie reply) for the protocol core. */
  | { type: 'handshake'; bytes: Buffer; from: TunnelEndpoint }
  /** A packet for this peer found no keypair that may send (at most every 250 ms per peer). */
  | { type: 'need-keypair'; peer: number }
  /** The device thread stopped on an OS failure. */
  | { type: 'error'; error: NativeCallError };

export class TunnelDevice {
  private readonly native: NativeTunnelDevice;
  private closed = false;

  constructor(opts: TunnelDeviceOptions) {
    const call = 'new TunnelDevice';
    const binding = opts.binding ?? loadBinding();
    if (!binding.TunnelDevice) throw new NativeCallError(call, 'the addon was built without libsodium (install libsodium-dev and rebuild)', { code: 'GWC_NO_TUNNEL' });
    if (typeof opts.tunName !== 'string' || opts.tunName.length < 1 || opts.tunName.length > 15 || /[\s/]/.test(opts.tunName)) {
      throw new TypeError(`${call}: tunName must be an interface name of 1..15 characters without spaces or '/', got ${JSON.stringify(opts.tunName)}`);
    }
    const listenAddress = opts.listenAddress ?? '0.0.0.0';
    if (!isIpv4Text(listenAddress)) throw new TypeError(`${call}: listenAddress must be an IPv4 address, got ${JSON.stringify(listenAddress)}`);
    const listenPort = opts.listenPort ?? 51820;
    checkInteger(listenPort, call, 'listenPort', 0, 65535);
    const mtu = opts.mtu ?? 1420;
    checkInteger(mtu, call, 'mtu', 576, 65535);
    const onEvent = opts.onEvent;
    const Ctor = binding.TunnelDevice;
    this.native = callNative(call, () => new Ctor(opts.transport.native, { tunName: opts.tunName, mtu, listenAddress, listenPort, ...(opts.forwardAddress ? { forwardAddress: opts.forwardAddress, forwardPort: opts.forwardPort ?? 0 } : {}) }, (e) => {
      if (e.type === 'error') onEvent({ type: 'error', error: translateNativeError('TunnelDevice', e.error) as NativeCallError });
      else onEvent(e);
    }));
  }

  get port(): number {
    return callNative('TunnelDevice.boundPort', () => this.native.boundPort());
  }

  /** Sends a handshake message from the listen socket. */
  sendDatagram(bytes: Uint8Array, to: TunnelEndpoint): void {
    callNative('TunnelDevice.sendDatagram', () => this.native.sendDatagram(bytes, to.address, to.port));
  }

  /** Sends an empty transport message on the peer's sending keypair. */
  sendKeepalive(peer: number): EncryptStatus {
    return ENCRYPT_STATUS[callNative('TunnelDevice.sendKeepalive', () => this.native.sendKeepalive(peer))] ?? 'bad-packet';
  }

  stats(): TunnelDeviceStats {
    return callNative('TunnelDevice.stats', () => this.native.stats());
  }

  /** Keeps (ref) or does not keep (unref) the process alive for events. */
  ref(): void { this.native.ref(); }
  unref(): void { this.native.unref(); }

  /** Stops the thread, closes the socket and the TUN device (the interface disappears). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}
