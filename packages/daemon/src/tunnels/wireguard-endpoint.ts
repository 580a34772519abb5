// The driver of one member's WireGuard endpoint: runs the pure TunnelCore over the addon's data path
// (TunnelTransport + TunnelDevice). It carries out the core's effects (send a handshake datagram, give
// keypairs to the data path, send a keepalive), feeds it the device's events and, every tickMs, the data
// path's per-keypair activity and a tick. The only clock and randomness of the tunnel plane are here.
//
// Lifecycle: constructor (nothing opened) -> start() (opens the TUN device and the UDP socket; throws
// NativeCallError when the OS refuses) -> status()/drops() at any time -> close() (idempotent).
import { randomBytes } from 'node:crypto';
import { TunnelDevice, TunnelTransport, type TunnelDeviceEvent, type TransportStats } from '@gwcluster/native-addon';
import { TunnelCore, type DataPathKeypair, type DropReason, type Endpoint, type PeerReplica, type TunnelEffect, type TunnelEvent } from './tunnel-core.js';

/** What the data path gets for one keypair besides its keys: the counter lease and a replica's seed. */
export interface KeypairExtras {
  /** No counter at or beyond this is sent (the lease, docs/tunnels.md). */
  sendLimit?: bigint;
  /** A replica's state: the send counter moves up to this, and receive counters below seedReceiveNext are refused. */
  seedSendCounter?: bigint;
  seedReceiveNext?: bigint;
}

export interface WireGuardPeerOptions {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** Inner prefixes routed to this peer and accepted as inner sources from it ('10.77.1.0/24'). */
  allowedIps: readonly string[];
  endpoint?: Endpoint;
}

export interface WireGuardEndpointOptions {
  privateKey: Uint8Array;
  peers: readonly WireGuardPeerOptions[];
  /** IPv4 address the UDP socket binds (the cluster IP). */
  listenAddress: string;
  listenPort: number;
  tunName: string;
  mtu?: number;
  /** Period of the core's timers and of the activity drain, ms. Default 100. */
  tickMs?: number;
  /** Handshake messages per second above which cookie replies are demanded. Default 1000. */
  underLoadPerSecond?: number;
  /** The inside-to-owner path: the member's own address and the port of its forward socket. */
  forwardAddress?: string;
  forwardPort?: number;
  /**
   * Tunnels are replicated (docs/tunnels.md): peers start not owned (the driver says which are), and a
   * keypair this member creates may send counters below `defaultSendLimit` until its reservation is
   * acknowledged.
   */
  replicated?: boolean;
  defaultSendLimit?: bigint;
  /** Called for each effect after it is carried out (logging, tests). Must not throw. */
  onEffect?: (effect: TunnelEffect) => void;
  /**
   * Called when the device thread stopped on an OS failure, or when handling one event threw (counted as
   * the drop reason 'internal-error'; the endpoint carries on). Must not throw.
   */
  onError?: (what: string, err: Error) => void;
}

export interface WireGuardPeerStatus {
  publicKey: string;
  allowedIps: readonly string[];
  endpoint: Endpoint | null;
  /** Wall-clock time of the latest completed handshake (ms since the epoch), null when none. */
  latestHandshakeMs: number | null;
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

export class WireGuardEndpoint {
  readonly core: TunnelCore;
  private transport?: TunnelTransport;
  private device?: TunnelDevice;
  private timer?: NodeJS.Timeout;
  private readonly latestHandshake = new Map<number, number>();
  private readonly coreDrops = new Map<DropReason | 'internal-error', number>();
  /** Per our index: the lease and a replica's seed, given to the data path with the keypair. */
  private readonly extras = new Map<number, KeypairExtras>();
  /** Called after every tick (activity drained, timers run): the replication's turn. */
  onTick?: (now: number, wallMs: number) => void;

  constructor(private readonly opts: WireGuardEndpointOptions) {
    this.core = new TunnelCore({
      privateKey: opts.privateKey,
      peers: opts.peers.map((p) => ({ publicKey: p.publicKey, presharedKey: p.presharedKey, endpoint: p.endpoint })),
      random: (n) => randomBytes(n),
      underLoadPerSecond: opts.underLoadPerSecond,
      initiallyOwned: !opts.replicated,
    });
  }

  /** Feeds the core one event (replica, ownership) and carries out its effects. */
  step(event: TunnelEvent): void {
    this.apply(this.core.step(event, performance.now(), Date.now()));
  }

  exportPeer(peer: number): PeerReplica | null {
    return this.core.exportPeer(peer, performance.now(), Date.now());
  }

  /** Sets what the data path gets with keypair `localIndex` of `peer` besides its keys, and reinstalls the peer's keypairs. */
  setExtras(peer: number, updates: ReadonlyMap<number, KeypairExtras>, install = true): void {
    for (const [idx, x] of updates) {
      this.extras.set(idx, { ...this.extras.get(idx), ...x });
      this.peerOfIndex.set(idx, peer);
    }
    if (install) this.installKeypairs(peer, this.core.dataPathKeypairs(peer));
  }

  get peerKeys(): readonly Uint8Array[] {
    return this.opts.peers.map((p) => p.publicKey);
  }

  isOwned(peer: number): boolean {
    return this.core.isOwned(peer);
  }

  /** Packets for `peer` go to the member at `to` (it owns the tunnel); null: this member encrypts them. */
  setForward(peer: number, to: Endpoint | null): void {
    this.transport?.setForward(peer, to);
  }

  /** The members whose forwarded packets this member encrypts. */
  setForwarders(addresses: readonly string[]): void {
    this.transport?.setForwarders(addresses);
  }

  private installKeypairs(peer: number, keypairs: readonly DataPathKeypair[]): void {
    const live = new Set(keypairs.map((k) => k.localIndex));
    for (const idx of [...this.extras.keys()]) if (!live.has(idx) && this.peerOfIndex.get(idx) === peer) { this.extras.delete(idx); this.peerOfIndex.delete(idx); }
    this.transport?.setKeypairs(peer, keypairs.map((k) => {
      this.peerOfIndex.set(k.localIndex, peer);
      let x = this.extras.get(k.localIndex);
      if (!x && this.opts.replicated && this.opts.defaultSendLimit !== undefined) {
        x = { sendLimit: this.opts.defaultSendLimit };
        this.extras.set(k.localIndex, x);
      }
      return { ...k, ...x };
    }));
  }

  private readonly peerOfIndex = new Map<number, number>();

  get publicKey(): Uint8Array {
    return this.core.publicKey;
  }

  /** The UDP port the socket is bound to (listenPort, or the one the OS picked for 0). */
  get port(): number {
    return this.device?.port ?? this.opts.listenPort;
  }

  start(): void {
    const transport = new TunnelTransport();
    this.opts.peers.forEach((p, i) => {
      transport.setAllowedIps(i, p.allowedIps);
      if (p.endpoint) transport.setEndpoint(i, p.endpoint);
    });
    this.transport = transport;
    this.device = new TunnelDevice({
      transport, tunName: this.opts.tunName, mtu: this.opts.mtu, listenAddress: this.opts.listenAddress,
      listenPort: this.opts.listenPort, onEvent: (e) => this.onDeviceEvent(e),
      ...(this.opts.forwardAddress ? { forwardAddress: this.opts.forwardAddress, forwardPort: this.opts.forwardPort } : {}),
    });
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 100);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.device?.close();
    this.device = undefined;
  }

  status(): WireGuardPeerStatus[] {
    return this.core.status().map((s) => {
      const c = this.transport?.peerStats(s.peer);
      return {
        publicKey: Buffer.from(s.publicKey).toString('base64'),
        allowedIps: this.opts.peers[s.peer]?.allowedIps ?? [],
        endpoint: c?.endpoint ?? s.endpoint ?? null,
        latestHandshakeMs: this.latestHandshake.get(s.peer) ?? null,
        rxBytes: c?.rxBytes ?? 0, rxPackets: c?.rxPackets ?? 0, txBytes: c?.txBytes ?? 0, txPackets: c?.txPackets ?? 0,
      };
    });
  }

  /** Drops by reason: the handshake core's and the data path's. */
  drops(): { handshake: Partial<Record<DropReason | 'internal-error', number>>; transport: Record<string, number> | null } {
    const t = this.transport?.stats();
    if (!t) return { handshake: Object.fromEntries(this.coreDrops), transport: null };
    // Packets from the inside the data path could not send: per reason, beside the decryption outcomes.
    const enc = Object.fromEntries(Object.entries(t.encrypt).filter(([k]) => k !== 'sent' && k !== 'forwarded').map(([k, v]) => [`encrypt-${k}`, v]));
    return { handshake: Object.fromEntries(this.coreDrops), transport: { ...t.decrypt, ...enc } };
  }

  /** The device thread's counters (datagrams, TUN packets, event drops), null before start(). */
  deviceStats(): ReturnType<TunnelDevice['stats']> | null {
    return this.device?.stats() ?? null;
  }

  /** A failure while handling one event: counted and reported, never thrown into the addon's callback or the timer. */
  private failed(what: string, err: unknown): void {
    this.coreDrops.set('internal-error', (this.coreDrops.get('internal-error') ?? 0) + 1);
    this.opts.onError?.(what, err instanceof Error ? err : new Error(String(err)));
  }

  private onDeviceEvent(e: TunnelDeviceEvent): void {
    try {
      if (e.type === 'handshake') this.apply(this.core.step({ kind: 'datagram', from: e.from, bytes: e.bytes }, performance.now(), Date.now()));
      else if (e.type === 'need-keypair') this.apply(this.core.step({ kind: 'need-keypair', peer: e.peer }, performance.now(), Date.now()));
      // 'error': the device thread stopped; status() shows the peers going stale.
      else if (e.type === 'error') this.opts.onError?.('the tunnel device thread stopped', e.error);
    } catch (err) {
      this.failed(`handling a ${e.type} event`, err);
    }
  }

  private tick(): void {
    try {
      this.tickUnchecked();
    } catch (err) {
      this.failed('the timer tick', err);
    }
  }

  private tickUnchecked(): void {
    if (!this.transport) return;
    const now = performance.now();
    for (const a of this.transport.activity()) {
      this.apply(this.core.step({
        kind: 'transport-activity', localIndex: a.localIndex, from: a.from, received: a.received, receivedData: a.receivedData,
        sent: a.sent, sentData: a.sentData, sendCounter: a.sendCounter, receiveNext: a.receiveNext,
      }, now, Date.now()));
    }
    this.apply(this.core.step({ kind: 'tick' }, now, Date.now()));
    this.onTick?.(now, Date.now());
  }

  private apply(effects: TunnelEffect[]): void {
    for (const e of effects) {
      switch (e.kind) {
        case 'send':
          try { this.device?.sendDatagram(e.bytes, e.to); } catch { /* a lost handshake datagram is retried by the core */ }
          break;
        case 'keypairs':
          this.installKeypairs(e.peer, e.keypairs);
          if (e.endpoint) this.transport?.setEndpoint(e.peer, e.endpoint);
          break;
        case 'keepalive':
          try { this.device?.sendKeepalive(e.peer); } catch { /* the core sends another when it is due */ }
          break;
        case 'handshake-complete':
          this.latestHandshake.set(e.peer, Date.now());
          break;
        case 'drop':
          this.coreDrops.set(e.reason, (this.coreDrops.get(e.reason) ?? 0) + 1);
          break;
      }
      this.opts.onEffect?.(e);
    }
  }
}
