// The WireGuard protocol core of one member's tunnel endpoint (one static key, many peers): a pure state
// machine. Every input is one call to step(event, now); the outputs are effects as data (datagrams to send,
// keypairs for the data path, keepalives to emit), which the driver carries out. Time comes in as `now`
// (milliseconds, monotonic) plus `wallMs` for the initiation timestamp; randomness comes in through the
// injected `random` source. No socket, timer or clock inside.
//
// The data path (the addon) owns transport messages: it decrypts, checks the replay window, encrypts and
// keeps the send counters. It tells the core what happened through `transport-activity` events, and the
// core tells it which keypairs exist through `keypairs` effects.
import {
  INITIATION_MIN_INTERVAL, KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_JITTER, REKEY_TIMEOUT, COOKIE_SECRET_LIFETIME, ZERO_KEYS_AFTER,
} from './constants.js';
import { addMacs, addressBytes, consumeCookieReply, createCookieReply, mac1Valid, mac2Valid, macKeys } from './cookie.js';
import type { MacKeys } from './cookie.js';
import { parseMessage } from './messages.js';
import type { CookieReplyMessage, InitiationMessage, ResponseMessage } from './messages.js';
import { consumeInitiation, consumeResponse, createInitiation, createResponse, staticKeys, tai64n } from './noise.js';
import type { InitiatorState, StaticKeys } from './noise.js';
import { equalBytes } from './primitives.js';

export interface Endpoint {
  address: string;
  port: number;
}

export interface PeerConfig {
  /** 32-byte Curve25519 public key. */
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** Where to send initiations before the peer has been heard from (optional: a roaming peer has none). */
  endpoint?: Endpoint;
}

export interface TunnelCoreOptions {
  privateKey: Uint8Array;
  peers: PeerConfig[];
  /** Source of random bytes (ephemeral keys, indices, cookie secrets and nonces, jitter). */
  random: (n: number) => Uint8Array;
  /**
   * Handshake messages per second above which the core asks for MAC2 (answers cookie replies to messages
   * without a valid one). 0 = always under load.
   */
  underLoadPerSecond?: number;
  /** Peers start owned (default true: a member alone); false when tunnels are replicated (the driver says). */
  initiallyOwned?: boolean;
}

/** One keypair as the data path needs it. */
export interface DataPathKeypair {
  /** Our index: the receiver index of transport messages the peer sends us. */
  localIndex: number;
  /** The peer's index: the receiver index we write into our transport messages. */
  remoteIndex: number;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  /** False for a responder's keypair until the initiator has used it (whitepaper 5.4.6). */
  canSend: boolean;
}

/**
 * One keypair of a tunnel as replicated (docs/tunnels.md, "Replication and takeover"). From exportPeer,
 * sendReserved is the next send counter as the data path last reported it; in a record it is the writer's
 * reservation (no counter at or beyond it was used).
 */
export interface ReplicaKeypair {
  slot: 'current' | 'previous' | 'next';
  localIndex: number;
  remoteIndex: number;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  canSend: boolean;
  initiator: boolean;
  createdWallMs: number;
  sendReserved: bigint;
  receiveNext: bigint;
}

/** A tunnel's replicable state: what another member needs to carry it on. */
export interface PeerReplica {
  endpoint?: Endpoint;
  /** The greatest TAI64N accepted from the peer (12 bytes): replayed initiations stay refused. */
  lastTimestamp?: Uint8Array;
  lastHandshakeWallMs?: number;
  keypairs: ReplicaKeypair[];
}

export type TunnelEvent =
  /** A handshake datagram (type 1, 2 or 3) from `from`; transport datagrams go to the data path. */
  | { kind: 'datagram'; from: Endpoint; bytes: Uint8Array }
  /**
   * What the data path did on one keypair since the last report: transport messages accepted (`from` is
   * the latest authenticated source), data (non-keepalive) messages among them, messages sent, and the
   * next send counter.
   */
  | { kind: 'transport-activity'; localIndex: number; from?: Endpoint; received: number; receivedData: number; sent: number; sentData: number; sendCounter: bigint; receiveNext?: bigint }
  /** Another member's state of this peer's tunnel (this member does not own it): replaces the keypairs. */
  | { kind: 'replica'; peer: number; state: PeerReplica; wallMs: number }
  /** Whether this member owns the peer's tunnel (its outer packets' unit): only an owner runs its timers. */
  | { kind: 'ownership'; peer: number; owned: boolean }
  /** The data path holds a packet for a peer without a usable keypair. */
  | { kind: 'need-keypair'; peer: number }
  | { kind: 'tick' };

export type DropReason = 'malformed' | 'bad-mac1' | 'cookie-sent' | 'bad-mac2' | 'handshake-failed' | 'unknown-peer'
  | 'replayed-timestamp' | 'initiation-flood' | 'unknown-index' | 'bad-cookie-reply';

export type TunnelEffect =
  | { kind: 'send'; to: Endpoint; bytes: Buffer }
  /** The complete set of a peer's keypairs: the data path replaces what it had for this peer. */
  | { kind: 'keypairs'; peer: number; keypairs: DataPathKeypair[]; endpoint?: Endpoint }
  /** Send an empty transport message to the peer on its current keypair. */
  | { kind: 'keepalive'; peer: number }
  | { kind: 'handshake-complete'; peer: number; role: 'initiator' | 'responder' }
  | { kind: 'drop'; reason: DropReason; from?: Endpoint };

interface Keypair extends DataPathKeypair {
  createdAt: number;
  initiator: boolean;
  /** As the data path last reported them (transport-activity), or as replicated. */
  sendCounter: bigint;
  receiveNext: bigint;
}

interface PendingInitiation {
  state: InitiatorState;
  firstAttemptAt: number;
  sentAt: number;
  retryAfter: number;
  mac1: Uint8Array;
}

interface PeerState {
  config: PeerConfig;
  keys: MacKeys;
  endpoint?: Endpoint;
  current?: Keypair;
  previous?: Keypair;
  next?: Keypair;
  pending?: PendingInitiation;
  /** Greatest TAI64N accepted from this peer. */
  lastTimestamp?: Buffer;
  lastInitiationAcceptedAt?: number;
  cookie?: { value: Uint8Array; receivedAt: number };
  lastHandshakeAt?: number;
  lastSentAt: number;
  lastDataSentAt: number;
  lastReceivedAt: number;
  lastDataReceivedAt: number;
  /** Set when the data path asked for a keypair (or the peer rekeys): a handshake is wanted. */
  wantHandshake: boolean;
  /** This member owns the tunnel: it runs the timers and initiates. False: it holds a replica. */
  owned: boolean;
}

/** Read-only view of a peer for status output. */
export interface PeerStatus {
  peer: number;
  publicKey: Uint8Array;
  endpoint?: Endpoint;
  lastHandshakeAt?: number;
  keypairs: number;
  owned: boolean;
}

export class TunnelCore {
  private readonly local: StaticKeys;
  private readonly ourMacKeys: MacKeys;
  private readonly peers: PeerState[];
  /** Receiver index -> peer, for handshakes in flight and live keypairs. */
  private readonly indices = new Map<number, number>();
  private readonly random: (n: number) => Uint8Array;
  private readonly underLoadPerSecond: number;
  private cookieSecret?: { value: Uint8Array; createdAt: number };
  private handshakeWindow = { startedAt: -Infinity, count: 0 };

  constructor(options: TunnelCoreOptions) {
    this.local = staticKeys(options.privateKey);
    this.ourMacKeys = macKeys(this.local.publicKey);
    this.random = options.random;
    this.underLoadPerSecond = options.underLoadPerSecond ?? 1000;
    this.peers = options.peers.map((config) => ({
      config, keys: macKeys(config.publicKey), endpoint: config.endpoint,
      lastSentAt: -Infinity, lastDataSentAt: -Infinity, lastReceivedAt: -Infinity, lastDataReceivedAt: -Infinity,
      wantHandshake: false, owned: options.initiallyOwned ?? true,
    }));
  }

  get publicKey(): Uint8Array {
    return this.local.publicKey;
  }

  status(): PeerStatus[] {
    return this.peers.map((p, peer) => ({
      peer, publicKey: p.config.publicKey, endpoint: p.endpoint, lastHandshakeAt: p.lastHandshakeAt,
      keypairs: [p.current, p.previous, p.next].filter(Boolean).length, owned: p.owned,
    }));
  }

  /** The one entry point. `now` is monotonic milliseconds; `wallMs` the wall clock (initiation timestamps). */
  step(event: TunnelEvent, now: number, wallMs = now): TunnelEffect[] {
    const out: TunnelEffect[] = [];
    switch (event.kind) {
      case 'datagram': this.onDatagram(event.from, event.bytes, now, out); break;
      case 'transport-activity': this.onActivity(event, now, wallMs, out); break;
      case 'need-keypair': {
        const p = this.peers[event.peer];
        if (p?.owned) { p.wantHandshake = true; this.maybeInitiate(event.peer, now, wallMs, out); }
        break;
      }
      case 'replica': this.onReplica(event.peer, event.state, now, event.wallMs, out); break;
      case 'ownership': {
        const p = this.peers[event.peer];
        if (p && p.owned !== event.owned) {
          p.owned = event.owned;
          if (!p.owned && p.pending) { this.indices.delete(p.pending.state.senderIndex); p.pending = undefined; }
          p.wantHandshake = false;
          // A new owner's timers start from the takeover: what the previous owner last sent or heard is not known here.
          if (p.owned) { p.lastSentAt = now; p.lastReceivedAt = now; p.lastDataSentAt = -Infinity; p.lastDataReceivedAt = -Infinity; }
        }
        break;
      }
      case 'tick': this.onTick(now, wallMs, out); break;
    }
    return out;
  }

  // --- handshake messages -------------------------------------------------------------------------

  private onDatagram(from: Endpoint, bytes: Uint8Array, now: number, out: TunnelEffect[]): void {
    const parsed = parseMessage(bytes);
    if (!parsed.ok || parsed.message.type === 'transport') {
      out.push({ kind: 'drop', reason: 'malformed', from });
      return;
    }
    const msg = parsed.message;
    if (msg.type === 'cookie-reply') { this.onCookieReply(msg, from, now, out); return; }
    if (!mac1Valid(msg.bytes, this.ourMacKeys)) { out.push({ kind: 'drop', reason: 'bad-mac1', from }); return; }
    if (this.underLoad(now)) {
      const secret = this.secret(now);
      if (!mac2Valid(msg.bytes, secret, addressBytes(from.address, from.port))) {
        const nonce = this.random(24);
        out.push({ kind: 'send', to: from, bytes: createCookieReply(this.ourMacKeys, msg.sender, msg.mac1, secret, addressBytes(from.address, from.port), nonce) });
        out.push({ kind: 'drop', reason: 'cookie-sent', from });
        return;
      }
    }
    if (msg.type === 'initiation') this.onInitiation(msg, from, now, out);
    else this.onResponse(msg, from, now, out);
  }

  /** Counts handshake messages per second; above the threshold the member is under load. */
  private underLoad(now: number): boolean {
    if (now - this.handshakeWindow.startedAt >= 1000) this.handshakeWindow = { startedAt: now, count: 0 };
    this.handshakeWindow.count++;
    return this.handshakeWindow.count > this.underLoadPerSecond;
  }

  private secret(now: number): Uint8Array {
    if (!this.cookieSecret || now - this.cookieSecret.createdAt >= COOKIE_SECRET_LIFETIME) {
      this.cookieSecret = { value: this.random(32), createdAt: now };
    }
    return this.cookieSecret.value;
  }

  private onInitiation(msg: InitiationMessage, from: Endpoint, now: number, out: TunnelEffect[]): void {
    const consumed = consumeInitiation(this.local, msg);
    if (!consumed) { out.push({ kind: 'drop', reason: 'handshake-failed', from }); return; }
    const peer = this.peers.findIndex((p) => equalBytes(p.config.publicKey, consumed.peerPublicKey));
    const p = this.peers[peer];
    if (!p) { out.push({ kind: 'drop', reason: 'unknown-peer', from }); return; }
    if (p.lastTimestamp && Buffer.compare(consumed.timestamp, p.lastTimestamp) <= 0) {
      out.push({ kind: 'drop', reason: 'replayed-timestamp', from });
      return;
    }
    if (p.lastInitiationAcceptedAt !== undefined && now - p.lastInitiationAcceptedAt < INITIATION_MIN_INTERVAL) {
      out.push({ kind: 'drop', reason: 'initiation-flood', from });
      return;
    }
    const localIndex = this.newIndex(peer);
    const response = createResponse(consumed, p.config.presharedKey, this.random(32), localIndex);
    if (!response) { this.indices.delete(localIndex); out.push({ kind: 'drop', reason: 'handshake-failed', from }); return; }
    addMacs(response.message, p.keys, this.liveCookie(p, now));
    p.lastTimestamp = consumed.timestamp;
    p.lastInitiationAcceptedAt = now;
    p.owned = true; // the member that answers the handshake is the tunnel's writer
    p.endpoint = from;
    p.lastHandshakeAt = now;
    // A responder's keypair waits as `next` until the initiator's first transport message confirms it.
    this.retire(p.next);
    p.next = { localIndex, remoteIndex: consumed.peerIndex, sendKey: response.keys.sendKey, receiveKey: response.keys.receiveKey, canSend: false, createdAt: now, initiator: false, sendCounter: 0n, receiveNext: 0n };
    // The data path gets the keypair before the response leaves: the initiator's first transport message
    // may arrive (on the device thread) as soon as the response is sent.
    out.push(this.keypairsEffect(peer));
    out.push({ kind: 'send', to: from, bytes: response.message });
    this.markSent(p, now, false);
    out.push({ kind: 'handshake-complete', peer, role: 'responder' });
  }

  private onResponse(msg: ResponseMessage, from: Endpoint, now: number, out: TunnelEffect[]): void {
    const peer = this.indices.get(msg.receiver);
    const p = peer === undefined ? undefined : this.peers[peer];
    if (!p || !p.pending || p.pending.state.senderIndex !== msg.receiver) { out.push({ kind: 'drop', reason: 'unknown-index', from }); return; }
    const keys = consumeResponse(this.local, p.pending.state, p.config.presharedKey, msg);
    if (!keys) { out.push({ kind: 'drop', reason: 'handshake-failed', from }); return; }
    const localIndex = p.pending.state.senderIndex;
    p.pending = undefined;
    p.wantHandshake = false;
    p.endpoint = from;
    p.lastHandshakeAt = now;
    this.retire(p.previous);
    this.retire(p.next);
    p.next = undefined;
    p.previous = p.current;
    p.current = { localIndex, remoteIndex: msg.sender, sendKey: keys.sendKey, receiveKey: keys.receiveKey, canSend: true, createdAt: now, initiator: true, sendCounter: 0n, receiveNext: 0n };
    out.push(this.keypairsEffect(peer!));
    out.push({ kind: 'handshake-complete', peer: peer!, role: 'initiator' });
    // The initiator confirms the keypair at once (wireguard-go sends a keepalive when nothing is queued).
    out.push({ kind: 'keepalive', peer: peer! });
    this.markSent(p, now, false);
  }

  private onCookieReply(msg: CookieReplyMessage, from: Endpoint, now: number, out: TunnelEffect[]): void {
    const peer = this.indices.get(msg.receiver);
    const p = peer === undefined ? undefined : this.peers[peer];
    if (!p || !p.pending) { out.push({ kind: 'drop', reason: 'unknown-index', from }); return; }
    const cookie = consumeCookieReply(p.keys, msg, p.pending.mac1);
    if (!cookie) { out.push({ kind: 'drop', reason: 'bad-cookie-reply', from }); return; }
    p.cookie = { value: cookie, receivedAt: now };
  }

  private liveCookie(p: PeerState, now: number): Uint8Array | undefined {
    return p.cookie && now - p.cookie.receivedAt < COOKIE_SECRET_LIFETIME ? p.cookie.value : undefined;
  }

  // --- initiating -----------------------------------------------------------------------------------

  private maybeInitiate(peer: number, now: number, wallMs: number, out: TunnelEffect[]): void {
    const p = this.peers[peer]!;
    if (!p.endpoint || p.pending) return;
    this.sendInitiation(peer, now, wallMs, now, out);
  }

  private sendInitiation(peer: number, now: number, wallMs: number, firstAttemptAt: number, out: TunnelEffect[]): void {
    const p = this.peers[peer]!;
    if (!p.endpoint) return;
    if (p.pending) this.indices.delete(p.pending.state.senderIndex);
    const senderIndex = this.newIndex(peer);
    const created = createInitiation(this.local, p.config.publicKey, this.random(32), senderIndex, tai64n(wallMs));
    if (!created) { this.indices.delete(senderIndex); return; }
    const mac1 = addMacs(created.message, p.keys, this.liveCookie(p, now));
    const jitter = (new DataView(this.random(4).buffer).getUint32(0) % (REKEY_JITTER + 1));
    p.pending = { state: created.state, firstAttemptAt, sentAt: now, retryAfter: REKEY_TIMEOUT + jitter, mac1 };
    out.push({ kind: 'send', to: p.endpoint, bytes: created.message });
    this.markSent(p, now, false);
  }

  // --- transport activity and timers (whitepaper 6.2 - 6.5) ---------------------------------------

  private onActivity(e: Extract<TunnelEvent, { kind: 'transport-activity' }>, now: number, wallMs: number, out: TunnelEffect[]): void {
    const peer = this.indices.get(e.localIndex);
    const p = peer === undefined ? undefined : this.peers[peer];
    if (!p) return;
    const held = [p.current, p.previous, p.next].find((k) => k?.localIndex === e.localIndex);
    if (held) {
      if (e.sendCounter > held.sendCounter) held.sendCounter = e.sendCounter;
      if (e.receiveNext !== undefined && e.receiveNext > held.receiveNext) held.receiveNext = e.receiveNext;
    }
    // A replica: the data path may hear a stray message, but the owner's timers are not this member's.
    if (!p.owned) return;
    if (e.received > 0) {
      if (e.from) p.endpoint = e.from;
      p.lastReceivedAt = now;
      if (e.receivedData > 0) p.lastDataReceivedAt = now;
      // The initiator's first message on a responder's `next` keypair confirms it (5.4.6).
      if (p.next && p.next.localIndex === e.localIndex) {
        this.retire(p.previous);
        p.previous = p.current;
        p.current = { ...p.next, canSend: true };
        p.next = undefined;
        out.push(this.keypairsEffect(peer!));
      }
    }
    if (e.sent > 0) this.markSent(p, now, e.sentData > 0);
    const kp = p.current;
    if (kp && kp.localIndex === e.localIndex) {
      const age = now - kp.createdAt;
      // Rekey on send: after REKEY_AFTER_MESSAGES, or REKEY_AFTER_TIME for the keypair's initiator.
      if (e.sent > 0 && (e.sendCounter >= REKEY_AFTER_MESSAGES || (kp.initiator && age >= REKEY_AFTER_TIME))) p.wantHandshake = true;
      // Rekey on receive: the initiator renews before the keypair is rejected.
      if (e.received > 0 && kp.initiator && age >= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) p.wantHandshake = true;
    }
    if (p.wantHandshake) this.maybeInitiate(peer!, now, wallMs, out);
  }

  private onTick(now: number, wallMs: number, out: TunnelEffect[]): void {
    this.peers.forEach((p, peer) => {
      if (!p.owned) return; // a replica: its owner runs the timers, and replicates new keypairs
      // Handshake retry, until REKEY_ATTEMPT_TIME.
      if (p.pending && now - p.pending.sentAt >= p.pending.retryAfter) {
        if (now - p.pending.firstAttemptAt >= REKEY_ATTEMPT_TIME) {
          this.indices.delete(p.pending.state.senderIndex);
          p.pending = undefined;
          p.wantHandshake = false;
        } else {
          this.sendInitiation(peer, now, wallMs, p.pending.firstAttemptAt, out);
        }
      }
      // Passive keepalive: data received, nothing sent for KEEPALIVE_TIMEOUT.
      if (p.current?.canSend && p.lastDataReceivedAt > p.lastSentAt && now - p.lastDataReceivedAt >= KEEPALIVE_TIMEOUT) {
        out.push({ kind: 'keepalive', peer });
        this.markSent(p, now, false);
      }
      // Data sent and nothing heard for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT: the session looks dead, rehandshake.
      if (p.lastDataSentAt > p.lastReceivedAt && now - p.lastDataSentAt >= KEEPALIVE_TIMEOUT + REKEY_TIMEOUT && !p.pending) {
        p.lastReceivedAt = now; // once per silence
        p.wantHandshake = true;
        this.maybeInitiate(peer, now, wallMs, out);
      }
      // Expiry: keypairs older than REJECT_AFTER_TIME are gone; every key after ZERO_KEYS_AFTER.
      let changed = false;
      for (const slot of ['previous', 'current', 'next'] as const) {
        const kp = p[slot];
        if (kp && now - kp.createdAt >= REJECT_AFTER_TIME) { this.retire(kp); p[slot] = undefined; changed = true; }
      }
      if (p.lastHandshakeAt !== undefined && now - p.lastHandshakeAt >= ZERO_KEYS_AFTER && p.pending) {
        this.indices.delete(p.pending.state.senderIndex);
        p.pending = undefined;
      }
      if (changed) out.push(this.keypairsEffect(peer));
    });
  }

  // --- replication ----------------------------------------------------------------------------------

  /** The peer's replicable state (times converted to the wall clock: members' monotonic clocks differ). */
  exportPeer(peer: number, now: number, wallMs: number): PeerReplica | null {
    const p = this.peers[peer];
    if (!p) return null;
    const keypairs: ReplicaKeypair[] = [];
    for (const slot of ['current', 'previous', 'next'] as const) {
      const k = p[slot];
      if (!k) continue;
      keypairs.push({
        slot, localIndex: k.localIndex, remoteIndex: k.remoteIndex, sendKey: k.sendKey, receiveKey: k.receiveKey, canSend: k.canSend,
        initiator: k.initiator, createdWallMs: wallMs - (now - k.createdAt), sendReserved: k.sendCounter, receiveNext: k.receiveNext,
      });
    }
    return {
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      ...(p.lastTimestamp ? { lastTimestamp: Uint8Array.from(p.lastTimestamp) } : {}),
      ...(p.lastHandshakeAt !== undefined ? { lastHandshakeWallMs: wallMs - (now - p.lastHandshakeAt) } : {}),
      keypairs,
    };
  }

  isOwned(peer: number): boolean {
    return this.peers[peer]?.owned ?? false;
  }

  /** The keypairs of a peer as the data path holds them (the last `keypairs` effect's). */
  dataPathKeypairs(peer: number): DataPathKeypair[] {
    const e = this.keypairsEffect(peer);
    return e.kind === 'keypairs' ? e.keypairs : [];
  }

  private onReplica(peer: number, r: PeerReplica, now: number, wallMs: number, out: TunnelEffect[]): void {
    const p = this.peers[peer];
    if (!p || p.owned) return;
    for (const slot of ['current', 'previous', 'next'] as const) { this.retire(p[slot]); p[slot] = undefined; }
    for (const k of r.keypairs) {
      const other = this.indices.get(k.localIndex);
      if (other !== undefined && other !== peer) continue; // an index another peer holds here: not installed
      this.indices.set(k.localIndex, peer);
      p[k.slot] = {
        localIndex: k.localIndex, remoteIndex: k.remoteIndex, sendKey: k.sendKey, receiveKey: k.receiveKey, canSend: k.canSend,
        initiator: k.initiator, createdAt: now - (wallMs - k.createdWallMs), sendCounter: k.sendReserved, receiveNext: k.receiveNext,
      };
    }
    if (r.endpoint) p.endpoint = r.endpoint;
    if (r.lastTimestamp && (!p.lastTimestamp || Buffer.compare(Buffer.from(r.lastTimestamp), p.lastTimestamp) > 0)) p.lastTimestamp = Buffer.from(r.lastTimestamp);
    if (r.lastHandshakeWallMs !== undefined) p.lastHandshakeAt = now - (wallMs - r.lastHandshakeWallMs);
    out.push(this.keypairsEffect(peer));
  }

  // --- helpers ------------------------------------------------------------------------------------

  private markSent(p: PeerState, now: number, data: boolean): void {
    p.lastSentAt = now;
    if (data) p.lastDataSentAt = now;
  }

  private keypairsEffect(peer: number): TunnelEffect {
    const p = this.peers[peer]!;
    const keypairs = [p.current, p.previous, p.next].filter((k): k is Keypair => !!k)
      .map((k) => ({ localIndex: k.localIndex, remoteIndex: k.remoteIndex, sendKey: k.sendKey, receiveKey: k.receiveKey, canSend: k.canSend && k === p.current }));
    return { kind: 'keypairs', peer, keypairs, endpoint: p.endpoint };
  }

  private retire(kp: Keypair | undefined): void {
    if (kp) this.indices.delete(kp.localIndex);
  }

  /** A fresh random 32-bit index not in use. */
  private newIndex(peer: number): number {
    for (;;) {
      const i = new DataView(Uint8Array.from(this.random(4)).buffer).getUint32(0, true);
      if (!this.indices.has(i)) { this.indices.set(i, peer); return i; }
    }
  }
}
