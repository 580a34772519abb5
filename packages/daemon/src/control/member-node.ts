/**
 * The driver of one member: it runs the pure protocol core (ClusterMember) with real time, a transport,
 * signed envelopes, applications, the cluster address and logs. Everything with a side effect lives here;
 * every protocol decision lives in the core.
 *
 * Lifecycle: construct -> start() -> ... -> stop(). start() assumes the transport is open; stop() leaves the
 * cluster (EXIT CLUSTER to the master, or to every member when master), releases the cluster IP and stops
 * the tick timer; it does not close the transport (its owner does).
 */
import { SOFTWARE_VERSION } from '../version.js';
import type { Logger } from 'pino';
import { ClusterMember, coreConfig, type ClusterStatus, type CoreEffect, type CoreEvent, type CoreInput, type CoreView, type DataPlaneView } from '@gwcluster/cluster-core';
import { KeyedRateLimit, MessageMacKeys, MessageOpener, MessageSealer, SyncCipher, TrustStore, livenessKeys, loadPrivateKey, type KeyedRateLimitOptions, type LivenessKeys } from '@gwcluster/security';
import type { KeyObject } from 'node:crypto';
import type { ClusterMessage, MemberId, StateSync, UnitLoad, WorkUnit } from '@gwcluster/wire';
import type { MemberConfig } from '../config/config.js';
import { configChangedEvent, coreSettings, holdsHandedOverUnits } from '../config/cluster-config.js';
import type { Transport } from '@gwcluster/cluster-core';
import type { ClusterAddress } from './cluster-address.js';
import { announceAddress, NoAddressHolder, type AddressHolder } from './held-addresses.js';
import { approveJoin, type ClusterApplication } from './applications.js';
import { DROP_LOG_EVERY_MS, IoFirstTicker, LogThrottle, tickPeriodMs } from './timing.js';
import { openStateSync, sealStateSync } from '../sync/sealed-sync.js';

export interface Credentials {
  /** DER certificates, leaf first, CA excluded. */
  readonly certChainDer: readonly Uint8Array[];
  readonly keyPem: string;
  readonly caPem: string;
  readonly crlPem?: string;
}

/** What the data plane (native addon) is told; it must not block and must not call back synchronously. */
export interface DataPlaneHooks {
  /**
   * Called after every batch of core events with the core's current table (CoreView.dataPlaneView()).
   * Must not block and must not call back into the node synchronously.
   */
  sync(view: DataPlaneView): void;
  /** WORK DE-ASSIGN with state sync: hand the units' sessions to `to`, then submit `handover-done`. */
  handover?(requestId: number, units: readonly WorkUnit[], to: MemberId | ''): void;
  stats?(): Record<string, number>;
}

/**
 * Fast liveness (the native heartbeat thread, dataplane/liveness-link.ts): the node tells it which peers
 * to watch, with their keys, whenever the members or their certificates change; its reports come back
 * through MemberNode.livenessReport().
 */
export interface LivenessLink {
  setPeers(peers: readonly { readonly address: MemberId; readonly txKey: Uint8Array; readonly rxKey: Uint8Array }[]): void;
  /** Counters for status and metrics (node counters `liveness.<name>`). */
  stats?(): Record<string, number>;
}

export interface ClusterEvent {
  readonly id: number;
  readonly at: string;
  readonly epoch: number;
  readonly kind: string;
  readonly message: string;
  readonly fields?: Readonly<Record<string, unknown>>;
}

export interface MemberNodeOptions {
  readonly config: MemberConfig;
  readonly credentials: Credentials;
  readonly transport: Transport;
  readonly clusterAddress: ClusterAddress;
  /** Carries out the core's `addresses` effect (address pool, own-address takeover); none: ignored. */
  readonly addressHolder?: AddressHolder;
  readonly applications?: readonly ClusterApplication[];
  readonly logger: Logger;
  readonly dataPlane?: DataPlaneHooks;
  /** Fast liveness; none: deaths are found by the keepalive watchdog alone. */
  readonly liveness?: LivenessLink;
  /** Monotonic clock, ms. Default: performance.now(). */
  readonly clock?: () => number;
  /** Wall clock, ms since the epoch (message timestamps). Default: Date.now(). */
  readonly wallClock?: () => number;
  /** Default: wall clock at construction. */
  readonly incarnation?: number;
  /** The software release this member announces (default: gwclusterd's package version). */
  readonly softwareVersion?: string;
  /** Run the tick timer (default true); tests may tick by hand. */
  readonly autoTick?: boolean;
  /** Signed JOIN REPLY NAKs to joiners whose certificate was refused. Default UNTRUSTED_JOIN_ANSWERS. */
  readonly untrustedJoinAnswers?: KeyedRateLimitOptions;
}

const EVENT_RING = 500;

/** Fast liveness: the peer list is re-derived at least this often, ms (certificates arrive with messages). */
const LIVENESS_REFRESH_MS = 250;

/** At most one certificate probe (an empty StateAck with the certificate) per peer this often, ms. */
const SYNC_PROBE_EVERY_MS = 200;

/**
 * A refused certificate's JOIN REQUEST is answered (a signature, a log line and a recorded event each)
 * at most twice a second per source and 20 times a second overall: a replayed other-CA join must not
 * make the master sign thousands of NAKs or push the event history out. The rest are counted
 * (node counter untrusted-join.rate-limited). A real joiner re-sends every join timeout, so it still
 * hears why it is refused.
 */
export const UNTRUSTED_JOIN_ANSWERS: KeyedRateLimitOptions = { perSecond: 2, burst: 4, overall: { perSecond: 20, burst: 40 } };

/**
 * Sees every authenticated message before the protocol core does (operator/operator-channel.ts). Returns true
 * when it consumed the message (operator-plane messages), false to let the core have it. Called on the
 * receive path, never concurrently; must not block.
 */
export type ControlHandler = (from: MemberId, message: ClusterMessage) => boolean;

/** Hears every recorded cluster event, after it was logged. Must not throw or block. */
export type ClusterEventListener = (event: ClusterEvent) => void;

export class MemberNode {
  /** The protocol core, read-only: only this driver steps it (submit() feeds it events). */
  readonly core: CoreView;
  readonly #member: ClusterMember;
  readonly self: MemberId;
  private readonly sealer: MessageSealer;
  private readonly opener: MessageOpener;
  /** Seals the records of outgoing StateSyncs for their receiver and opens received ones (sync/sealed-sync.ts). */
  readonly syncCipher: SyncCipher;
  /** Pairwise MAC keys of the sealer and opener (the frequent unicasts go out with a MAC, security/message-mac.ts). */
  private readonly macKeys: MessageMacKeys;
  /** This member's certificate key, read by the SyncCipher, the MAC keys and fast liveness; replaced on reload. */
  private syncKey: KeyObject;
  /** Last certificate probe per peer (clock ms): see sendStateSync. */
  private readonly certificateProbes = new Map<string, number>();
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly wallClock: () => number;
  private timer: NodeJS.Timeout | null = null;
  private apps: readonly ClusterApplication[];
  private readonly events: ClusterEvent[] = [];
  private eventSeq = 0;
  private readonly dropLog = new LogThrottle(DROP_LOG_EVERY_MS);
  private readonly untrustedJoins: KeyedRateLimit;
  readonly counters: Record<string, number> = {};
  private stepping = false;
  /** The role of the last `role` effect (when to announce the own address). */
  private lastRole: string = 'stopped';
  private readonly addressHolder: AddressHolder;
  private readonly queued: CoreEvent[] = [];
  private controlHandler: ControlHandler | null = null;
  /** Handlers of other planes (state sync), asked before the operator plane and the core. */
  private readonly planeHandlers: ControlHandler[] = [];
  private readonly listeners = new Set<ClusterEventListener>();
  private tickEveryMs = 0;
  /** Datagrams handed to receive(): the tick runs after those already waiting (IoFirstTicker). */
  private datagramsIn = 0;
  private readonly ticker = new IoFirstTicker(
    () => {
      if (this.timer) this.tick();
    },
    () => this.datagramsIn,
  );
  /** The configuration in force: the file's, then each adopted cluster configuration (adoptConfig). */
  config: MemberConfig;
  /** Fast liveness: keys per peer (derived once per certificate and own key) and what was last given. */
  private readonly livenessKeyCache = new Map<MemberId, { fingerprint: string; privateKey: KeyObject; keys: LivenessKeys }>();
  private livenessPeersGiven = '';
  private lastLivenessRefresh = -Infinity;
  private lastLivenessMembers = -1;
  /** The members fast liveness watches (and sends heartbeats to). */
  private livenessMembers: readonly MemberId[] = [];
  /** The members as of the last step (who may be asked for a certificate). */
  private knownMembers: ReadonlySet<MemberId> = new Set();

  constructor(private readonly opts: MemberNodeOptions) {
    const c = opts.config;
    this.config = c;
    this.self = c.member.address;
    this.clock = opts.clock ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? (() => Date.now());
    this.apps = opts.applications ?? [];
    this.#member = new ClusterMember(coreConfig(this.self, c.cluster.configVersion, { ...coreSettings(c), softwareVersion: opts.softwareVersion ?? SOFTWARE_VERSION }));
    this.core = this.#member;
    const trust = new TrustStore({
      caCertPem: opts.credentials.caPem,
      ...(opts.credentials.crlPem ? { crlPem: opts.credentials.crlPem } : {}),
      ...(c.pki.allowedCertificates ? { allowedFingerprints: c.pki.allowedCertificates } : {}),
    });
    this.syncKey = loadPrivateKey(opts.credentials.keyPem);
    this.macKeys = new MessageMacKeys({
      cluster: c.cluster.name,
      self: this.self,
      privateKey: () => this.syncKey,
      // As the SyncCipher's: the peer's certificate as this member verified it.
      peerPublicKey: (peer) => this.opener.certificateOf(peer)?.publicKey,
    });
    this.sealer = new MessageSealer({
      cluster: c.cluster.name,
      memberIp: this.self,
      certChainDer: opts.credentials.certChainDer,
      privateKeyPem: opts.credentials.keyPem,
      incarnation: opts.incarnation ?? this.wallClock(),
      macKeys: this.macKeys,
      // Every unicast names the recipient's process as this member last heard from it, so a later process
      // of the recipient refuses it (a replay captured before that process started).
      recipientIncarnation: (recipient) => this.opener.incarnationOf(recipient),
    });
    this.addressHolder = opts.addressHolder ?? new NoAddressHolder();
    this.opener = new MessageOpener({ cluster: c.cluster.name, self: this.self, trust, maxClockSkewMs: c.cluster.maxClockSkewMs, macKeys: this.macKeys, selfIncarnation: this.sealer.incarnation });
    this.syncCipher = new SyncCipher({
      cluster: c.cluster.name,
      self: this.self,
      incarnation: this.sealer.incarnation,
      privateKey: () => this.syncKey,
      // The peer's certificate as this member verified it (a join, a keepalive, a state-sync message).
      peerPublicKey: (peer) => this.opener.certificateOf(peer)?.publicKey,
    });
    this.untrustedJoins = new KeyedRateLimit(opts.untrustedJoinAnswers ?? UNTRUSTED_JOIN_ANSWERS);
    // Every line carries the member id; epoch and role are added per line (they change over time).
    this.log = opts.logger.child({ member: this.self });
    opts.transport.onReceive((bytes, from) => this.receive(bytes, from));
  }

  /** Logger fields that change over time. */
  private get context(): { epoch: number; role: string } {
    const st = this.core;
    return { epoch: st.epoch, role: st.role };
  }

  start(): void {
    this.log.info({ ...this.context, incarnation: this.sealer.incarnation, cluster: this.opts.config.cluster.name }, 'member starting');
    this.step({ type: 'start', now: this.clock() });
    if (this.opts.autoTick !== false) this.startTimer();
  }

  private startTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.tickEveryMs = tickPeriodMs(this.config.cluster.keepalivePeriodMs);
    // The tick runs after the I/O already waiting (a stalled loop reads its keepalives before judging timeouts).
    this.timer = setInterval(() => this.ticker.request(), this.tickEveryMs);
  }

  /**
   * Adopts a cluster configuration (already validated and persisted by the caller): the core takes the
   * new version and live timings, the tick timer follows a changed keepalive period.
   */
  adoptConfig(next: MemberConfig): void {
    this.config = next;
    this.step({ ...configChangedEvent(next), now: this.clock() });
    if (this.timer && tickPeriodMs(next.cluster.keepalivePeriodMs) !== this.tickEveryMs) this.startTimer();
  }

  /**
   * Installs reloaded credentials (gwclusterd reload): from now on messages are checked against `trust`
   * (a peer whose cached certificate it refuses, a revoked one for instance, is forgotten, so its next
   * message is refused) and signed with the given chain and key, keeping the incarnation and sequence.
   * The caller has checked that the chain and key belong together and are for this member; on a throw
   * (SecurityConfigError) nothing was changed.
   */
  replaceCredentials(credentials: Credentials, trust: TrustStore): void {
    const now = this.wallClock();
    this.sealer.replaceCredentials(credentials.certChainDer, credentials.keyPem, now);
    // The sync cipher, MAC keys and fast liveness read this key: each derives its pairwise keys again.
    // During the sealer's certificate grace nothing is MAC'd; a peer that missed the new certificate
    // fails this member's MACs (bad-signature) and is sent it on that failure (receive()).
    this.syncKey = loadPrivateKey(credentials.keyPem);
    this.opener.replaceTrust(trust, now);
  }

  /** Replaces the applications asked about joiners and told about membership (gwclusterd reload). */
  replaceApplications(apps: readonly ClusterApplication[]): void {
    this.apps = apps;
  }

  /** Installs the operator plane's message hook (one at a time). */
  setControlHandler(handler: ControlHandler | null): void {
    this.controlHandler = handler;
  }

  /** Adds a message hook for another plane (state sync); same contract as ControlHandler. */
  addPlaneHandler(handler: ControlHandler): void {
    this.planeHandlers.push(handler);
  }

  /** Seals and sends an operator-plane message (best effort; the caller retransmits). */
  sendControl(to: MemberId | 'broadcast', message: ClusterMessage, opts?: { includeCertificate?: boolean }): void {
    if (message.type === 'state-sync' && to !== 'broadcast') this.sendStateSync(to, message, opts);
    else this.send(to, message, opts);
  }

  /**
   * A StateSync leaves with its records sealed for `to`. Without a verified certificate of `to` nothing
   * can be sealed: the records stay unsent (the replicator re-sends them after its timeout) and `to` gets,
   * at most every SYNC_PROBE_EVERY_MS, an empty StateAck carrying this member's certificate, so that it
   * can seal for this member and sends its own certificate with its next StateSync.
   */
  private sendStateSync(to: MemberId, message: StateSync, opts?: { includeCertificate?: boolean }): void {
    const sealed = sealStateSync(this.syncCipher, to, message);
    if (sealed) {
      this.send(to, sealed, opts);
      return;
    }
    this.count('sync.no-peer-certificate');
    this.probeCertificate(to);
  }

  /** An empty StateAck carrying this member's certificate: `to` answers with its own (answerCertificateProbe). */
  private probeCertificate(to: MemberId): void {
    const now = this.clock();
    const last = this.certificateProbes.get(to);
    if (last !== undefined && now - last < SYNC_PROBE_EVERY_MS) return;
    this.certificateProbes.set(to, now);
    this.count('sync.certificate-probe-sent');
    this.send(to, { type: 'state-ack', seqs: [] }, { includeCertificate: true });
  }

  private answerCertificateProbe(to: MemberId): void {
    const now = this.clock();
    const key = `answer/${to}`;
    const last = this.certificateProbes.get(key);
    if (last !== undefined && now - last < SYNC_PROBE_EVERY_MS) return;
    this.certificateProbes.set(key, now);
    this.count('sync.certificate-probe-answered');
    this.send(to, { type: 'state-ack', seqs: [0] }, { includeCertificate: true });
  }

  onEvent(listener: ClusterEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records a cluster event from outside the core (operator actions) and logs it with its correlation id. */
  note(level: 'info' | 'warn' | 'error', kind: string, message: string, fields?: Record<string, unknown>): ClusterEvent {
    const e = this.record(kind, message, fields);
    this.log[level]({ ...this.context, ...(fields ?? {}), correlationId: e.id }, message);
    return e;
  }

  /** The level of this member's logs, changed at run time by the admin API. */
  get logLevel(): string {
    return this.log.level;
  }

  set logLevel(level: string) {
    this.log.level = level;
  }

  tick(): void {
    this.step({ type: 'tick', now: this.clock() });
  }

  /**
   * A fast-liveness report: `down` (the peer's heartbeats stopped) or `up` (heard, first or again). The core
   * acts on `down` once the peer's keepalives are late as well, and while `up` gives a late keepalive
   * longer before it is a death (docs/protocol.md, "Fast liveness").
   */
  livenessReport(report: { readonly type: 'down'; readonly peer: MemberId; readonly silentMs: number; readonly periods: number } | { readonly type: 'up'; readonly peer: MemberId }): void {
    this.count(`liveness.${report.type}`);
    if (report.type === 'down') {
      this.log.warn({ ...this.context, peer: report.peer, silentMs: Math.round(report.silentMs), periods: report.periods }, `no heartbeat from ${report.peer} for ${Math.round(report.silentMs)} ms (fast liveness)`);
      this.step({ type: 'peer-silent', now: this.clock(), peer: report.peer, silentMs: report.silentMs });
    } else {
      this.log.info({ ...this.context, peer: report.peer }, `hears heartbeats from ${report.peer} (fast liveness vouches for it)`);
      this.step({ type: 'peer-alive', now: this.clock(), peer: report.peer });
    }
  }

  /**
   * Gives fast liveness the members to watch (every member but this one whose certificate this member
   * has verified: the keys come from it), when that set or a key changed. Certificates arrive with
   * messages, so it is also re-checked every LIVENESS_REFRESH_MS.
   */
  private refreshLiveness(members: readonly MemberId[], now: number): void {
    const link = this.opts.liveness;
    if (!link) return;
    this.lastLivenessRefresh = now;
    const peers: { address: MemberId; txKey: Uint8Array; rxKey: Uint8Array }[] = [];
    const given: string[] = [];
    for (const m of members) {
      if (m === this.self) continue;
      const cert = this.opener.certificateOf(m);
      if (!cert) continue;
      let entry = this.livenessKeyCache.get(m);
      if (!entry || entry.fingerprint !== cert.fingerprint || entry.privateKey !== this.syncKey) {
        const keys = livenessKeys({ cluster: this.config.cluster.name, self: this.self, peer: m, privateKey: this.syncKey, peerPublicKey: cert.publicKey });
        if (!keys) continue;
        entry = { fingerprint: cert.fingerprint, privateKey: this.syncKey, keys };
        this.livenessKeyCache.set(m, entry);
      }
      peers.push({ address: m, txKey: entry.keys.tx, rxKey: entry.keys.rx });
      given.push(`${m}/${entry.fingerprint}`);
    }
    const key = given.sort().join(',');
    if (key === this.livenessPeersGiven) return;
    this.livenessPeersGiven = key;
    for (const m of [...this.livenessKeyCache.keys()]) if (!members.includes(m)) this.livenessKeyCache.delete(m);
    try {
      link.setPeers(peers);
    } catch (err) {
      this.count('liveness.set-peers-failed');
      this.log.error({ ...this.context, err: (err as Error).message }, 'fast liveness refused the peer list');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.core.role !== 'left' && this.core.role !== 'stopped') this.step({ type: 'leave', now: this.clock() });
    await this.opts.clusterAddress.release();
    await this.addressHolder.releaseAll();
  }

  /** Feeds an operator or data-plane event to the core. */
  submit(event: CoreInput): void {
    this.step({ ...event, now: this.clock() } as CoreEvent);
  }

  reportLoad(load: number, busiestUnits: readonly UnitLoad[]): void {
    this.step({ type: 'load-report', now: this.clock(), load, busiestUnits });
  }

  status(): ClusterStatus & { security: Readonly<Record<string, number>>; transport: Readonly<Record<string, number>>; node: Readonly<Record<string, number>> } {
    const node: Record<string, number> = { ...this.counters };
    for (const [k, v] of Object.entries(this.opts.dataPlane?.stats?.() ?? {})) node[`dataplane.${k}`] = v;
    for (const [k, v] of Object.entries(this.opts.liveness?.stats?.() ?? {})) node[`liveness.${k}`] = v;
    const security: Record<string, number> = { ...this.opener.counters };
    for (const [k, v] of Object.entries(this.sealer.counters)) security[`sealed.${k}`] = v;
    for (const [k, v] of Object.entries(this.syncCipher.counters)) security[`sync.${k}`] = v;
    return { ...this.core.status(this.clock()), security, transport: this.opts.transport.counters, node };
  }

  recentEvents(limit = 100): readonly ClusterEvent[] {
    return this.events.slice(-limit);
  }

  private count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
  }

  private record(kind: string, message: string, fields?: Record<string, unknown>): ClusterEvent {
    const e: ClusterEvent = { id: ++this.eventSeq, at: new Date(this.wallClock()).toISOString(), epoch: this.context.epoch, kind, message, ...(fields ? { fields } : {}) };
    this.events.push(e);
    if (this.events.length > EVENT_RING) this.events.splice(0, this.events.length - EVENT_RING);
    if (this.listeners.size > 0) queueMicrotask(() => {
      for (const l of this.listeners) {
        try {
          l(e);
        } catch {
          /* a listener must not break the member */
        }
      }
    });
    return e;
  }

  // ----------------------------------------------------------------------------------------------

  private receive(bytes: Uint8Array, fromIp: string): void {
    this.datagramsIn++;
    if (fromIp === this.self) {
      this.count('rx.own-broadcast'); // our own broadcast looped back
      return;
    }
    const opened = this.opener.open(bytes, this.wallClock(), { sourceIp: fromIp });
    if (opened.ok) {
      if (Math.abs(opened.clockSkewMs) > this.config.cluster.maxClockSkewMs && this.dropLog.allow(`clock-skew/${fromIp}`, this.clock())) {
        // Reported, never acted on: freshness is the replay window's (security/envelope.ts).
        this.log.warn({ ...this.context, from: fromIp, skewMs: Math.round(opened.clockSkewMs) }, `clock of ${fromIp} differs from this member's by ${Math.round(opened.clockSkewMs)} ms (more than maxClockSkewMs ${this.config.cluster.maxClockSkewMs}); messages are still accepted, but check NTP on both`);
      }
      // Every plane below acts only on messages addressed to this member or broadcast: the opener has
      // checked SignedMessage.recipient.
      let message = opened.signed.message;
      if (message.type === 'state-sync') {
        const m = openStateSync(this.syncCipher, opened.signed.sender, message);
        if (!m.ok) {
          this.count(`drop.sync-${m.code}`);
          if (this.dropLog.allow(`sync-${m.code}`, this.clock())) this.log.warn({ ...this.context, from: fromIp, code: m.code, dropped: this.counters[`drop.sync-${m.code}`] }, `dropped state sync: ${m.reason}`);
          return;
        }
        message = m.message;
      } else if (message.type === 'state-ack' && message.seqs.length === 0) {
        // A certificate probe: the sender could not seal for us, it knows our certificate now (the probe
        // carried its own); answer with ours (seq 0 is never a StateSync's, and is never answered).
        this.answerCertificateProbe(opened.signed.sender);
      }
      for (const h of this.planeHandlers) if (h(opened.signed.sender, message)) return;
      if (this.controlHandler?.(opened.signed.sender, message)) return;
      this.step({ type: 'message', now: this.clock(), from: opened.signed.sender, message });
      return;
    }
    this.count(`drop.${opened.code}`);
    if (opened.code === 'unknown-signer' && opened.sender === fromIp && this.knownMembers.has(fromIp)) {
      // A member whose certificate this member never saw (it restarted since that member last sent one):
      // ask for it, as a StateSync that cannot be sealed does (at most every SYNC_PROBE_EVERY_MS).
      this.probeCertificate(fromIp);
    }
    if (opened.code === 'bad-signature' && opened.mac && opened.sender === fromIp && this.knownMembers.has(fromIp)) {
      // A MAC that does not verify from a member: usually one of the pair changed its key (reload) and
      // the other has not seen the new certificate. Exchange certificates (at most every SYNC_PROBE_EVERY_MS):
      // the probe carries this member's, the answer the peer's.
      this.probeCertificate(fromIp);
    }
    if (opened.code === 'certificate-rejected' && opened.signed?.message.type === 'join-request' && opened.sender === fromIp) {
      if (this.untrustedJoins.take(fromIp, this.clock())) {
        this.step({ type: 'untrusted-join', now: this.clock(), from: opened.sender, nonce: opened.signed.message.nonce, reason: opened.reason });
      } else {
        this.count('untrusted-join.rate-limited');
      }
    }
    if (this.dropLog.allow(opened.code, this.clock())) {
      this.log.warn({ ...this.context, from: fromIp, code: opened.code, dropped: this.counters[`drop.${opened.code}`] }, `dropped datagram: ${opened.reason}`);
    }
  }

  private step(event: CoreEvent): void {
    // Effects may feed events back (application verdicts); queue them so step() is never re-entered.
    this.queued.push(event);
    if (this.stepping) return;
    this.stepping = true;
    try {
      while (this.queued.length > 0) {
        const e = this.queued.shift()!;
        let effects: CoreEffect[];
        try {
          effects = this.#member.step(e);
        } catch (err) {
          // A bug in the core must not take the member down; it is logged loudly and counted.
          this.count('core.exception');
          this.log.error({ ...this.context, err, event: e.type }, 'protocol core threw while handling an event');
          continue;
        }
        for (const effect of effects) this.carryOut(effect);
      }
      const view = this.core.dataPlaneView(holdsHandedOverUnits(this.opts.config));
      this.opts.dataPlane?.sync(view);
      if (view.members.length !== this.knownMembers.size || view.members.some((m) => !this.knownMembers.has(m))) this.knownMembers = new Set(view.members);
      const now = this.clock();
      if (this.opts.liveness) {
        // While it (re-)joins or offers, a member keeps sending heartbeats to the members it knew: its
        // process is alive, and a master that still lists it must not find it silent and remove it as
        // dead in the middle of its re-join. Only a role with a table (member, master) shrinks the set.
        const between = this.core.role === 'joining' || this.core.role === 'offering' || this.core.role === 'waiting-config';
        const watch = between ? [...new Set([...view.members, ...this.livenessMembers])] : view.members;
        if (watch.length !== this.lastLivenessMembers || now - this.lastLivenessRefresh >= LIVENESS_REFRESH_MS) {
          this.lastLivenessMembers = watch.length;
          this.livenessMembers = watch;
          this.refreshLiveness(watch, now);
        }
      }
    } finally {
      this.stepping = false;
    }
  }

  private send(to: MemberId | 'broadcast', message: ClusterMessage, opts?: { includeCertificate?: boolean }): void {
    const bytes = this.sealer.seal(message, to, this.wallClock(), opts);
    if (to === 'broadcast') this.opts.transport.broadcast(bytes);
    else this.opts.transport.send(to, bytes);
  }

  private carryOut(effect: CoreEffect): void {
    switch (effect.type) {
      case 'send':
        this.send(effect.to, effect.message);
        break;
      case 'role': {
        const e = this.record('role', `role ${effect.role}`, { master: effect.master });
        // Neighbours that a survivor's takeover pointed at the survivor come back: when this member
        // starts joining (before the master's replies, which a neighbour entry would send to the survivor)
        // and when it is in the cluster again (the survivor has let go by then); every time, since a member
        // declared dead by mistake was taken over while it lived.
        const inCluster = effect.role === 'member' || effect.role === 'master';
        if (this.config.cluster.memberAddressTakeover && ((effect.role === 'joining' && this.lastRole !== 'joining') || (inCluster && this.lastRole !== 'member' && this.lastRole !== 'master'))) {
          void announceAddress(this.self, this.config.member.interface).catch((err: Error) => this.log.warn({ ...this.context, err: err.message }, 'gratuitous ARP for the own address failed'));
        }
        this.lastRole = effect.role;
        this.log.info({ ...this.context, master: effect.master, correlationId: e.id }, `role is now ${effect.role}`);
        break;
      }
      case 'announce-cluster-ip':
        this.record('cluster-ip', `taking cluster IP ${this.config.cluster.clusterIp}`);
        void this.opts.clusterAddress.take();
        break;
      case 'release-cluster-ip':
        this.record('cluster-ip', `releasing cluster IP ${this.config.cluster.clusterIp}`);
        void this.opts.clusterAddress.release();
        break;
      case 'addresses': {
        const e = this.record('addresses', `answering for [${effect.gained.map((h) => h.address).join(', ')}], no longer for [${effect.lost.map((h) => h.address).join(', ')}]`, {
          gained: effect.gained.map((h) => h.address),
          lost: effect.lost.map((h) => h.address),
          reason: effect.reason,
        });
        this.log.info({ ...this.context, gained: effect.gained, lost: effect.lost, reason: effect.reason, correlationId: e.id }, 'addresses answered here changed');
        this.addressHolder.change(effect.gained, effect.lost, effect.moves ?? []);
        break;
      }
      case 'ownership':
        this.log.debug({ ...this.context, gained: effect.gained.length, lost: effect.lost.length, reason: effect.reason }, 'own units changed');
        break;
      case 'assignment-acked':
        break;
      case 'handover':
        if (this.opts.dataPlane?.handover) this.opts.dataPlane.handover(effect.requestId, effect.units, effect.to);
        else this.step({ type: 'handover-done', now: this.clock(), requestId: effect.requestId });
        break;
      case 'ask-applications': {
        const joiner = effect.joiner;
        void approveJoin(this.apps, joiner).then((v) => {
          this.step({ type: 'application-verdict', now: this.clock(), joiner, accepted: v.accept, reason: v.accept ? '' : v.reason });
        });
        break;
      }
      case 'membership': {
        const e = this.record('membership', `joined [${effect.joined.join(', ')}] left [${effect.left.join(', ')}]`, { joined: effect.joined, left: effect.left });
        this.log.info({ ...this.context, joined: effect.joined, left: effect.left, correlationId: e.id }, 'membership changed');
        for (const app of this.apps) {
          try {
            app.membersChanged?.({ joined: effect.joined, left: effect.left });
          } catch (err) {
            this.log.error({ ...this.context, err, application: app.name }, 'application failed in membersChanged');
          }
        }
        break;
      }
      case 'log': {
        const e = effect.level === 'debug' ? null : this.record('protocol', effect.msg, effect.fields as Record<string, unknown> | undefined);
        this.log[effect.level]({ ...this.context, ...(effect.fields ?? {}), ...(e ? { correlationId: e.id } : {}) }, effect.msg);
        break;
      }
    }
  }
}
