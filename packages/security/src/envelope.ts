/**
 * Signed envelopes (proto Envelope / SignedMessage): MessageSealer turns a ClusterMessage into a
 * datagram; MessageOpener authenticates a datagram and hands out its SignedMessage, or a coded reason.
 * The frequent member-to-member unicasts (MAC_ELIGIBLE) carry a pairwise HMAC instead of a signature
 * when sealer and opener share MessageMacKeys (message-mac.ts); everything else is signed.
 *
 * Both are synchronous and do no I/O; time comes in as `nowMs` (wall clock, ms since the epoch).
 * Neither is safe to share between threads; one sealer per process incarnation, one opener per socket.
 *
 * Freshness does not depend on members' clocks agreeing (docs/decisions.md, "Freshness without
 * clocks"): a message is fresh when its (incarnation, seq) passes the receiver's per-sender replay
 * window. sent_at_ms is only compared with the receiver's clock to count and report skew. Each message
 * names its recipient inside the signature, so a receiver's window only ever has to cover messages
 * addressed to it:
 *  - a unicast carries the recipient's member IP; replayed to any other member it fails 'wrong-recipient';
 *    replayed to its recipient it fails that recipient's window, which saw it.
 *  - a broadcast reaches every member at the same moment, so every member's window records it when it
 *    arrives; a later replay to any of them fails their own window. A member that lost the original
 *    accepts one replay of it, as it would have accepted the original (the window admits each seq once).
 * A receiver that restarts starts with empty windows, so a unicast also names the recipient's process
 * (recipient_incarnation, as the sender last heard it): the next process refuses what was addressed to
 * the one before ('stale-recipient'). Remaining gap: a unicast sealed before its sender knew the
 * recipient's process carries 0 and is accepted once by a restarted recipient (docs/security.md, "Remaining").
 */
import { X509Certificate, sign as signData, verify as verifySignature, type KeyObject } from 'node:crypto';
import {
  LIMITS,
  PROTOCOL_VERSION,
  decodeEnvelope,
  decodeSignedMessage,
  encodeEnvelope,
  encodeSignedMessage,
  isMemberId,
  peekSignedHeader,
  type ClusterMessage,
  type MemberId,
  type ClusterMessageType,
  type SignedMessage,
  type WireErrorCode,
} from '@gwcluster/wire';
import { SecurityConfigError } from './errors.js';
import { loadPrivateKey } from './keys.js';
import { MessageMacKeys, messageMac, messageMacMatches } from './message-mac.js';
import { KeyedRateLimit, type KeyedRateLimitOptions } from './rate-limit.js';
import { ReplayWindow } from './replay.js';
import type { TrustFailureCode, TrustStore, TrustedChain } from './trust.js';

/**
 * Messages that carry the certificate chain by default (proto SignedMessage.cert_chain): the join and
 * election messages, which may reach members that never heard from the sender, and MASTER KEEPALIVE,
 * from which members learn the master's certificate. Others rely on the receiver's cache.
 */
export const CARRIES_CERTIFICATE: Readonly<Record<ClusterMessageType, boolean>> = {
  'join-request': true,
  'join-reply': true,
  'master-offer': true,
  'other-master-exists': true,
  'master-keepalive': true,
  'exit-cluster': true,
  'client-keepalive': false,
  'work-assign': false,
  'work-deassign': false,
  'work-ack': false,
  'state-sync': false,
  'state-ack': false,
  // Rare, and may reach a member that restarted and does not know the sender's certificate yet.
  'pool-affinity': true,
  // Operator plane: rare, and may reach a member that has not cached the sender's certificate.
  'operator-request': true,
  'operator-reply': true,
  'config-update': true,
  'config-status': true,
};

/**
 * Messages that go out with a pairwise MAC (Envelope.mac, message-mac.ts) instead of a signature when
 * the sealer has MAC keys: the frequent member-to-member unicasts. Each is only ever sent to one member
 * (cluster-core: ClientKeepalive to the master, WorkAssign/WorkDeassign from the master to a member,
 * WorkAck back; daemon: StateSync/StateAck between replication peers). A MAC is still only used for a
 * message addressed to one member that carries no certificate chain, towards a member whose
 * certificate the sender has verified; anything else is signed. The rest are signed always: broadcasts
 * (every member must be able to check them, which a pairwise key cannot give), and the join, election
 * and operator messages, which are rare and may reach a member that does not know the sender yet.
 */
export const MAC_ELIGIBLE: Readonly<Record<ClusterMessageType, boolean>> = {
  'join-request': false,
  'join-reply': false,
  'master-offer': false,
  'other-master-exists': false,
  'master-keepalive': false,
  'exit-cluster': false,
  'client-keepalive': true,
  'work-assign': true,
  'work-deassign': true,
  'work-ack': true,
  'state-sync': true,
  'state-ack': true,
  'pool-affinity': false,
  'operator-request': false,
  'operator-reply': false,
  'config-update': false,
  'config-status': false,
};

const SIGN_OPTIONS = { dsaEncoding: 'ieee-p1363' } as const;
/** IEEE P1363 ECDSA P-256 signature: r || s, 32 octets each. */
const SIGNATURE_BYTES = 64;

export interface MessageSealerOptions {
  /** Cluster name, at most LIMITS.maxClusterNameChars characters. */
  readonly cluster: string;
  /** This member's IP; must be the leaf certificate's subjectAltName IP. */
  readonly memberIp: string;
  /** DER, leaf first, then intermediates; the CA excluded. At most LIMITS.maxCertificates. */
  readonly certChainDer: readonly Uint8Array[];
  /** The leaf's private key, PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** This process's boot identifier (ms of wall clock at process start; proto SignedMessage.incarnation). */
  readonly incarnation: number;
  /**
   * Pairwise MAC keys (the same instance as the member's MessageOpener): MAC_ELIGIBLE unicasts without
   * a certificate chain go out with a MAC when there is a key towards their recipient. Without it every
   * message is signed.
   */
  readonly macKeys?: MessageMacKeys;
  /**
   * The incarnation of a recipient as this member knows it (MessageOpener.incarnationOf, the liveness
   * heartbeats), written into every unicast (SignedMessage.recipient_incarnation) so that the recipient's
   * later processes refuse it; undefined or 0: not known (the field is 0 and binds nothing).
   */
  readonly recipientIncarnation?: (recipient: MemberId) => number | undefined;
}

/** MessageSealer.counters: how the sealed messages were authenticated. */
export interface SealCounters {
  signature: number;
  mac: number;
}

export interface SealOptions {
  /** Carry the certificate chain. Default: CARRIES_CERTIFICATE[message.type]. */
  readonly includeCertificate?: boolean;
}

/** The sealer's chain (copied) and key, checked: sizes, the leaf parses, the key is the leaf's, the leaf is for memberIp. */
function checkedCredentials(certChainDer: readonly Uint8Array[], privateKeyPem: string, memberIp: string): { chain: readonly Uint8Array[]; key: KeyObject } {
  if (certChainDer.length < 1 || certChainDer.length > LIMITS.maxCertificates) {
    throw new SecurityConfigError('bad-certificate', `certificate chain has ${certChainDer.length} certificates; allowed 1..${LIMITS.maxCertificates} (leaf first, CA excluded)`);
  }
  const oversized = certChainDer.findIndex((c) => c.length > LIMITS.maxCertificateBytes);
  if (oversized >= 0) throw new SecurityConfigError('bad-certificate', `certificate ${oversized} of the chain is larger than ${LIMITS.maxCertificateBytes} bytes`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(Buffer.from(certChainDer[0]!));
  } catch (e) {
    throw new SecurityConfigError('bad-certificate', `leaf certificate does not parse: ${(e as Error).message}`);
  }
  const key = loadPrivateKey(privateKeyPem);
  if (!leaf.checkPrivateKey(key)) throw new SecurityConfigError('key-mismatch', `the private key does not belong to certificate ${leaf.subject}`);
  if (leaf.checkIP(memberIp) === undefined) {
    throw new SecurityConfigError('bad-member-ip', `certificate ${leaf.subject} (${leaf.subjectAltName ?? 'no subjectAltName'}) is not for member IP ${memberIp}`);
  }
  return { chain: certChainDer.map((c) => new Uint8Array(c)), key };
}

/** Signs outgoing messages. seq starts at 1 and increases by one per seal() of this sealer. */
export class MessageSealer {
  readonly cluster: string;
  readonly memberIp: string;
  readonly incarnation: number;
  private chain: readonly Uint8Array[];
  private key: KeyObject;
  private seq = 0;
  private readonly macKeys: MessageMacKeys | undefined;
  private readonly recipientIncarnation: ((recipient: MemberId) => number | undefined) | undefined;
  readonly counters: SealCounters = { signature: 0, mac: 0 };
  /** After a credentials change, every message carries the certificate until then (wall ms). */
  private certificateInEveryMessageUntilMs = -Infinity;

  /** Throws SecurityConfigError when the key does not match the leaf, or the leaf is not for memberIp. */
  constructor(opts: MessageSealerOptions) {
    if (opts.cluster.length > LIMITS.maxClusterNameChars) {
      throw new SecurityConfigError('bad-option', `cluster name "${opts.cluster}" is longer than ${LIMITS.maxClusterNameChars} characters`);
    }
    if (!isMemberId(opts.memberIp)) throw new SecurityConfigError('bad-member-ip', `member IP "${opts.memberIp}" is not a dotted-quad IPv4 address`);
    if (!Number.isSafeInteger(opts.incarnation) || opts.incarnation < 0) throw new SecurityConfigError('bad-option', `incarnation ${opts.incarnation} must be a non-negative integer`);
    this.cluster = opts.cluster;
    this.memberIp = opts.memberIp;
    this.incarnation = opts.incarnation;
    ({ chain: this.chain, key: this.key } = checkedCredentials(opts.certChainDer, opts.privateKeyPem, opts.memberIp));
    if (opts.macKeys && (opts.macKeys.self !== opts.memberIp || opts.macKeys.cluster !== opts.cluster)) {
      throw new SecurityConfigError('bad-option', `MAC keys are for ${opts.macKeys.self} in "${opts.macKeys.cluster}", the sealer for ${opts.memberIp} in "${opts.cluster}"`);
    }
    this.macKeys = opts.macKeys;
    this.recipientIncarnation = opts.recipientIncarnation;
  }

  /**
   * Signs with a new certificate chain and key from now on (a renewed certificate, gwclusterd reload),
   * keeping the incarnation and the message counter, so peers see the same sender carry on. For
   * `certificateGraceMs` after `nowMs` every message carries the new chain, so that peers that cached the
   * old certificate learn the new one from whichever message reaches them first; no message is MAC'd
   * meanwhile (a MAC'd message carries no certificate). The MAC keys follow the private key their
   * options return (the caller switches it with this call). Throws
   * SecurityConfigError like the constructor and then keeps the old credentials.
   */
  replaceCredentials(certChainDer: readonly Uint8Array[], privateKeyPem: string, nowMs: number, certificateGraceMs = 5000): void {
    const next = checkedCredentials(certChainDer, privateKeyPem, this.memberIp);
    this.chain = next.chain;
    this.key = next.key;
    this.certificateInEveryMessageUntilMs = nowMs + certificateGraceMs;
  }

  /** The seq the last seal() used (0 before the first). */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * The datagram for `message` addressed to `recipient` (a member IP, or 'broadcast': every member),
   * sent at wall clock `nowMs`. Only the recipient accepts it. Authenticated by a pairwise MAC when the
   * message is MAC_ELIGIBLE, addressed to one member, carries no certificate chain and the MAC keys give
   * a key towards the recipient; by a signature otherwise. Throws only on a message the codec cannot
   * encode or a recipient that is not a member IP (programming errors, not input).
   */
  seal(message: ClusterMessage, recipient: MemberId | 'broadcast', nowMs: number, opts?: SealOptions): Uint8Array {
    if (recipient !== 'broadcast' && !isMemberId(recipient)) throw new TypeError(`recipient "${recipient}" is neither a member IP nor 'broadcast'`);
    const includeCertificate = (opts?.includeCertificate ?? CARRIES_CERTIFICATE[message.type]) || nowMs <= this.certificateInEveryMessageUntilMs;
    const signed = encodeSignedMessage({
      cluster: this.cluster,
      sender: this.memberIp,
      certChain: includeCertificate ? this.chain : [],
      incarnation: this.incarnation,
      seq: ++this.seq,
      sentAtMs: Math.max(0, Math.floor(nowMs)),
      message,
      recipient,
      version: PROTOCOL_VERSION,
      recipientIncarnation: recipient === 'broadcast' ? 0 : knownIncarnation(this.recipientIncarnation?.(recipient)),
    });
    const macKey = recipient !== 'broadcast' && !includeCertificate && MAC_ELIGIBLE[message.type] ? this.macKeys?.sendKey(recipient) : undefined;
    if (macKey) {
      this.counters.mac++;
      return encodeEnvelope({ version: PROTOCOL_VERSION, signed, signature: new Uint8Array(0), mac: messageMac(macKey, signed) });
    }
    this.counters.signature++;
    const signature = signData('sha256', signed, { key: this.key, ...SIGN_OPTIONS });
    return encodeEnvelope({ version: PROTOCOL_VERSION, signed, signature });
  }
}

// ------------------------------------------------------------------------------------------------

export type OpenFailureCode =
  | WireErrorCode
  /** SignedMessage.cluster names another cluster. */
  | 'wrong-cluster'
  /** SignedMessage.recipient is another member: a unicast replayed (or misdelivered) to this one. */
  | 'wrong-recipient'
  /** SignedMessage.recipient_incarnation names another process of this member: captured on its way to an earlier one. */
  | 'stale-recipient'
  /** The chain of a certificate not verified before was not checked: its source used up its verification budget. */
  | 'rate-limited'
  /** The presented chain failed the TrustStore (see certificateCode) but the signature verifies with its leaf. */
  | 'certificate-rejected'
  /** No chain in the message and no verified certificate cached for the sender. */
  | 'unknown-signer'
  /** The signature does not verify with the sender's certificate, or the MAC with the pair's key (OpenFailure.mac). */
  | 'bad-signature'
  /** The datagram's source address (OpenOptions.sourceIp) is not the signed sender. */
  | 'sender-mismatch'
  /** Older incarnation, duplicate seq, or seq below the anti-replay window. */
  | 'replay';

export type OpenOutcome = 'ok' | OpenFailureCode;

/** In the order open() applies the checks (cheapest first; the signature last). */
export const OPEN_OUTCOMES: readonly OpenOutcome[] = [
  'ok',
  'decode',
  'unsupported-version',
  'limit',
  'invalid',
  'wrong-cluster',
  'wrong-recipient',
  'stale-recipient',
  'sender-mismatch',
  'replay',
  'unknown-signer',
  'rate-limited',
  'certificate-rejected',
  'bad-signature',
];

/** MessageOpener.counters: one per outcome, and 'clock-skew': accepted messages whose sent_at_ms was more than maxClockSkewMs off. */
export type OpenCounter = OpenOutcome | 'clock-skew';

export interface Opened {
  readonly ok: true;
  readonly signed: SignedMessage;
  /** SHA-256 fingerprint of the sender's leaf certificate, "AB:CD:..." */
  readonly fingerprint: string;
  /** nowMs - sent_at_ms: the sender's clock offset plus transit time, ms. Informational. */
  readonly clockSkewMs: number;
}

export interface OpenFailure {
  readonly ok: false;
  readonly code: OpenFailureCode;
  /** What was wrong, with which sender and value; for logs. */
  readonly reason: string;
  /** The (unauthenticated) sender field, when the signed message decoded. For logs and NAKs only. */
  readonly sender?: string;
  /**
   * Only with 'certificate-rejected': the message, whose signature verifies with the presented (but not
   * admitted) certificate. Lets a master answer a joiner with JoinReply NAK CERTIFICATE_REJECTED; it is
   * NOT authenticated and must not change cluster state.
   */
  readonly signed?: SignedMessage;
  /** Only with 'certificate-rejected': why the TrustStore refused the chain. */
  readonly certificateCode?: TrustFailureCode;
  /**
   * The envelope carried a MAC rather than a signature. With 'bad-signature' the usual cause is a key
   * change one side has not learnt yet (a reload): the receiver may send the sender its certificate.
   */
  readonly mac?: true;
}

export type OpenResult = Opened | OpenFailure;

export interface MessageOpenerOptions {
  readonly cluster: string;
  /** This member's IP: messages addressed to another member are dropped ('wrong-recipient'). */
  readonly self: MemberId;
  readonly trust: TrustStore;
  /**
   * |nowMs - sent_at_ms| above which an accepted message is counted as 'clock-skew' (the driver warns:
   * check NTP), ms. Never a reason to drop: freshness is the replay window's. Default 30000.
   */
  readonly maxClockSkewMs?: number;
  /**
   * Chain verifications of certificates not verified before (or changed), per source: the cost an
   * unauthenticated sender can impose. Default 10/s, burst 20, per source; 100/s, burst 200, overall.
   */
  readonly chainVerifications?: KeyedRateLimitOptions;
  /**
   * Anti-replay window per sender and scope (its broadcasts; its unicasts to this member), in seqs
   * (RFC 4303 3.4.3). Default 64.
   */
  readonly replayWindow?: number;
  /** Senders whose certificate and replay state are kept; least recently used evicted. Default 4096. */
  readonly maxSenders?: number;
  /**
   * Pairwise MAC keys (the same instance as the member's MessageSealer). Without them a MAC'd message
   * fails 'bad-signature' ("this member does not accept MACs").
   */
  readonly macKeys?: MessageMacKeys;
  /**
   * This process's incarnation (the MessageSealer's): a unicast whose recipient_incarnation is set and
   * differs was addressed to another process of this member ('stale-recipient'). Absent: not checked.
   */
  readonly selfIncarnation?: number;
}

export interface OpenOptions {
  /**
   * The datagram's UDP source address. When given it must equal the signed sender ('sender-mismatch'):
   * members talk from their member IP, so anything else is a relay or a spoof.
   */
  readonly sourceIp?: string;
}

/** What the opener remembers about one sender. Updated only by messages that pass every check. */
interface SenderState {
  chain: readonly Uint8Array[];
  trusted: TrustedChain;
  /**
   * One anti-replay window per delivery scope: the sender's broadcasts, and its unicasts to this member.
   * The two arrive on different sockets (udp-transport.ts binds the member address and the broadcast
   * address), which the event loop reads in either order, and a stalled loop reads up to a few dozen
   * datagrams from one before the other. The sender's seq counts every message it sends to anyone, so
   * one window over both scopes dropped a burst of one scope read after the other as "older than the
   * window" (a JOIN REPLY, MASTER KEEPALIVEs after a restart). Within one scope datagrams arrive in order.
   */
  readonly replay: { readonly broadcast: ReplayWindow; readonly unicast: ReplayWindow };
  /** The newest incarnation seen in either scope: an older one is a replay in both. */
  incarnation: number;
}

export const DEFAULT_CHAIN_VERIFICATIONS: KeyedRateLimitOptions = { perSecond: 10, burst: 20, overall: { perSecond: 100, burst: 200 } };

export class MessageOpener {
  readonly cluster: string;
  readonly self: MemberId;
  readonly maxClockSkewMs: number;
  readonly replayWindow: number;
  readonly maxSenders: number;
  /** Datagrams opened, by outcome ('ok' and every failure code), and 'clock-skew'. For metrics. */
  readonly counters: Record<OpenCounter, number>;
  private trust: TrustStore;
  private readonly senders = new Map<string, SenderState>();
  private readonly chainBudget: KeyedRateLimit;
  private readonly macKeys: MessageMacKeys | undefined;
  private readonly selfIncarnation: number | undefined;

  constructor(opts: MessageOpenerOptions) {
    this.cluster = opts.cluster;
    if (!isMemberId(opts.self)) throw new SecurityConfigError('bad-member-ip', `opener's own member IP "${opts.self}" is not a dotted-quad IPv4 address`);
    this.self = opts.self;
    this.trust = opts.trust;
    this.chainBudget = new KeyedRateLimit({ maxKeys: opts.maxSenders ?? 4096, ...(opts.chainVerifications ?? DEFAULT_CHAIN_VERIFICATIONS) });
    this.maxClockSkewMs = opts.maxClockSkewMs ?? 30_000;
    this.replayWindow = opts.replayWindow ?? 64;
    this.maxSenders = opts.maxSenders ?? 4096;
    if (opts.macKeys && (opts.macKeys.self !== opts.self || opts.macKeys.cluster !== opts.cluster)) {
      throw new SecurityConfigError('bad-option', `MAC keys are for ${opts.macKeys.self} in "${opts.macKeys.cluster}", the opener for ${opts.self} in "${opts.cluster}"`);
    }
    this.macKeys = opts.macKeys;
    this.selfIncarnation = opts.selfIncarnation;
    if (!(this.maxClockSkewMs >= 0)) throw new SecurityConfigError('bad-option', `maxClockSkewMs ${this.maxClockSkewMs} must be >= 0`);
    if (!Number.isInteger(this.replayWindow) || this.replayWindow < 1 || this.replayWindow > 65536) {
      throw new SecurityConfigError('bad-option', `replayWindow ${this.replayWindow} must be an integer 1..65536`);
    }
    if (!Number.isInteger(this.maxSenders) || this.maxSenders < 1) throw new SecurityConfigError('bad-option', `maxSenders ${this.maxSenders} must be a positive integer`);
    this.counters = Object.fromEntries([...OPEN_OUTCOMES, 'clock-skew'].map((o) => [o, 0])) as Record<OpenCounter, number>;
  }

  /** Number of senders whose certificate and replay state are kept. */
  get knownSenders(): number {
    return this.senders.size;
  }

  /** The verified certificate facts cached for `sender`, if any. */
  certificateOf(sender: string): TrustedChain | undefined {
    return this.senders.get(sender)?.trusted;
  }

  /** Drops the sender's cached certificate and replay state (a member was removed). */
  forget(sender: string): void {
    this.senders.delete(sender);
  }

  /**
   * Installs a new TrustStore (new CA, CRL or allow-list). Every cached sender certificate is verified
   * again against it at `nowMs`; senders whose chain no longer passes are forgotten.
   */
  replaceTrust(trust: TrustStore, nowMs: number): void {
    this.trust = trust;
    for (const [sender, state] of [...this.senders]) {
      const verdict = trust.verifyChain(state.chain, sender, nowMs);
      if (verdict.ok) state.trusted = verdict;
      else this.senders.delete(sender);
    }
  }

  /** Authenticates one datagram. Never throws. Replay state changes only when the result is ok. */
  open(datagram: Uint8Array, nowMs: number, opts?: OpenOptions): OpenResult {
    let result: OpenResult;
    try {
      result = this.openUnchecked(datagram, nowMs, opts);
    } catch (e) {
      // Not expected: every step returns values. Counted as 'invalid' rather than thrown into a socket loop.
      result = { ok: false, code: 'invalid', reason: `internal error while opening a datagram: ${(e as Error).message}` };
    }
    this.counters[result.ok ? 'ok' : result.code]++;
    return result;
  }

  /**
   * The newest incarnation of `sender` this opener accepted a message from (for MessageSealer's
   * recipientIncarnation); undefined when it knows none.
   */
  incarnationOf(sender: MemberId): number | undefined {
    return this.senders.get(sender)?.incarnation;
  }

  /**
   * The checks, cheapest first, so that a flood of replayed or misaddressed datagrams costs a decode and
   * a few comparisons each: decode (and envelope version), signed version, cluster, recipient, UDP
   * source == sender, replay window (checked, not committed), certificate (the cached one when the
   * sender presents the same chain or none; chain verification, rate-limited per source, only for a
   * chain not verified before), certificate's IP == sender, and only then the signature (~100-300 us).
   * A MAC'd envelope takes the same cheap checks, then must be addressed to this member and carry no
   * chain ('invalid'), needs the sender's cached certificate ('unknown-signer'; its dates checked as for
   * a signature), and last its MAC (a few us) under the pair's key ('bad-signature').
   */
  private openUnchecked(datagram: Uint8Array, nowMs: number, opts?: OpenOptions): OpenResult {
    const envelope = decodeEnvelope(datagram);
    if (!envelope.ok) return { ok: false, code: envelope.error.code, reason: envelope.error.message };
    // The header alone (no body, no certificates) decides the cheap checks.
    const header = peekSignedHeader(envelope.value.signed);
    if (!header.ok) return { ok: false, code: header.error.code, reason: header.error.message };
    const h = header.value;
    const sender = h.sender;
    if (h.version !== envelope.value.version) {
      return { ok: false, code: 'unsupported-version', sender, reason: `message from ${sender} says version ${h.version} inside its signature and ${envelope.value.version} outside: altered or broken` };
    }
    if (h.cluster !== this.cluster) {
      return { ok: false, code: 'wrong-cluster', sender, reason: `message from ${sender} is for cluster "${h.cluster}", this member is in "${this.cluster}"` };
    }
    if (h.recipient !== 'broadcast' && h.recipient !== this.self) {
      return { ok: false, code: 'wrong-recipient', sender, reason: `message from ${sender} is addressed to ${h.recipient}, not to this member (${this.self}): replayed or misdelivered` };
    }
    if (h.recipient !== 'broadcast' && h.recipientIncarnation !== 0 && this.selfIncarnation !== undefined && h.recipientIncarnation !== this.selfIncarnation) {
      return {
        ok: false,
        code: 'stale-recipient',
        sender,
        reason: `message from ${sender} is addressed to incarnation ${h.recipientIncarnation} of this member, which is incarnation ${this.selfIncarnation}: captured before this process started and replayed`,
      };
    }
    if (opts?.sourceIp !== undefined && opts.sourceIp !== sender) {
      return { ok: false, code: 'sender-mismatch', sender, reason: `datagram from ${opts.sourceIp} is signed by member ${sender}: relayed or spoofed` };
    }
    const state = this.senders.get(sender);
    const scope = h.recipient === 'broadcast' ? 'broadcast' : 'unicast';
    if (state) {
      if (h.incarnation < state.incarnation) {
        return { ok: false, code: 'replay', sender, reason: `message from ${sender} replayed: incarnation ${h.incarnation} is older than ${state.incarnation}, the newest seen from this sender (a message from a process that has since restarted)` };
      }
      const fresh = state.replay[scope].check(h.incarnation, h.seq);
      if (!fresh.ok) return { ok: false, code: 'replay', sender, reason: `message from ${sender} replayed: ${fresh.reason} (${scope === 'broadcast' ? 'broadcasts' : 'unicasts to this member'})` };
    }
    const decoded = decodeSignedMessage(envelope.value.signed);
    if (!decoded.ok) return { ok: false, code: decoded.error.code, sender, reason: decoded.error.message };
    const signed = decoded.value;
    if (signed.sender !== h.sender || signed.incarnation !== h.incarnation || signed.seq !== h.seq || signed.recipient !== h.recipient || signed.cluster !== h.cluster || signed.version !== h.version || (signed.recipientIncarnation ?? 0) !== h.recipientIncarnation) {
      return { ok: false, code: 'invalid', sender, reason: `message from ${sender}: header and full decode disagree (malformed encoding)` };
    }

    const signature = envelope.value.signature;
    const mac = envelope.value.mac ?? new Uint8Array(0);
    if (mac.length > 0) {
      // A MAC proves only that one of the pair made the message: never for a broadcast, never with a
      // chain (a chain is how a member presents a certificate, which only a signature can bind).
      if (h.recipient === 'broadcast') return { ok: false, code: 'invalid', sender, mac: true, reason: `broadcast from ${sender} carries a MAC; broadcasts are signed` };
      if (signed.certChain.length > 0) return { ok: false, code: 'invalid', sender, mac: true, reason: `message from ${sender} carries a MAC and a certificate chain; a message presenting a certificate is signed` };
    }
    let trusted: TrustedChain;
    if (signed.certChain.length > 0 && !(state && sameChain(state.chain, signed.certChain))) {
      if (!this.chainBudget.take(sender, nowMs)) {
        return { ok: false, code: 'rate-limited', sender, reason: `certificate chain from ${sender} not checked: more new certificates from that source than ${this.chainBudget.opts.perSecond}/s` };
      }
      const verdict = this.trust.verifyChain(signed.certChain, sender, nowMs);
      if (!verdict.ok) {
        const leafKey = leafPublicKey(signed.certChain[0]!);
        if (leafKey && verifies(envelope.value.signed, signature, leafKey)) {
          return { ok: false, code: 'certificate-rejected', sender, signed, certificateCode: verdict.code, reason: `certificate of ${sender} rejected (${verdict.code}): ${verdict.reason}` };
        }
        return { ok: false, code: 'bad-signature', sender, reason: `signature of ${sender} does not verify with the certificate it presents, which is also rejected: ${verdict.reason}` };
      }
      trusted = verdict;
    } else if (state) {
      trusted = state.trusted;
      if (!(nowMs >= trusted.notBeforeMs && nowMs <= trusted.notAfterMs)) {
        // Outside the cached chain's dates: let the TrustStore say which certificate and why.
        const verdict = this.trust.verifyChain(state.chain, sender, nowMs);
        if (!verdict.ok) {
          return { ok: false, code: 'certificate-rejected', sender, certificateCode: verdict.code, reason: `cached certificate of ${sender} no longer admitted (${verdict.code}): ${verdict.reason}` };
        }
        trusted = verdict;
      }
    } else {
      return { ok: false, code: 'unknown-signer', sender, ...(mac.length > 0 ? { mac: true } : {}), reason: `message from ${sender} carries no certificate and none is known for that sender; it must send one first (JOIN REQUEST, MASTER KEEPALIVE)` };
    }
    if (trusted.memberIp !== sender) {
      return { ok: false, code: 'sender-mismatch', sender, reason: `sender field ${sender} differs from the certificate's member IP ${trusted.memberIp}` };
    }
    if (mac.length > 0) {
      if (!this.macKeys) return { ok: false, code: 'bad-signature', sender, mac: true, reason: `message from ${sender} carries a MAC; this member does not accept MACs` };
      const key = this.macKeys.receiveKey(sender, trusted.publicKey);
      if (!key || !messageMacMatches(key, envelope.value.signed, mac)) {
        return { ok: false, code: 'bad-signature', sender, mac: true, reason: `MAC of ${sender} does not verify with the pairwise key of its certificate ${trusted.subject} serial ${trusted.serial} (one of the two changed its key and the other has not learnt it yet, or altered)` };
      }
    } else if (!verifies(envelope.value.signed, signature, trusted.publicKey)) {
      return { ok: false, code: 'bad-signature', sender, reason: `signature of ${sender} does not verify with its certificate ${trusted.subject} serial ${trusted.serial}` };
    }

    // Every check passed: record.
    const replay = state?.replay ?? { broadcast: new ReplayWindow(this.replayWindow), unicast: new ReplayWindow(this.replayWindow) };
    replay[scope].commit(signed.incarnation, signed.seq);
    if (state) {
      state.incarnation = Math.max(state.incarnation, signed.incarnation);
      this.senders.delete(sender);
      if (signed.certChain.length > 0) {
        state.chain = signed.certChain;
        state.trusted = trusted;
      }
      this.senders.set(sender, state);
    } else {
      this.senders.set(sender, { chain: signed.certChain, trusted, replay, incarnation: signed.incarnation });
      if (this.senders.size > this.maxSenders) this.senders.delete(this.senders.keys().next().value!);
    }
    const clockSkewMs = nowMs - signed.sentAtMs;
    if (!(Math.abs(clockSkewMs) <= this.maxClockSkewMs)) this.counters['clock-skew']++;
    return { ok: true, signed, fingerprint: trusted.fingerprint, clockSkewMs };
  }
}

function sameChain(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (Buffer.compare(a[i]!, b[i]!) !== 0) return false;
  return true;
}

function leafPublicKey(der: Uint8Array): KeyObject | undefined {
  try {
    return new X509Certificate(Buffer.from(der.buffer, der.byteOffset, der.byteLength)).publicKey;
  } catch {
    return undefined;
  }
}

function verifies(data: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verifySignature('sha256', data, { key, ...SIGN_OPTIONS }, signature);
  } catch {
    return false;
  }
}

/** A recipient incarnation to write: a known one, else 0. */
function knownIncarnation(n: number | undefined): number {
  return n !== undefined && Number.isSafeInteger(n) && n > 0 ? n : 0;
}
