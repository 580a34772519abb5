/** Shared test data: sample messages of every type and a datagram crafter that bypasses MessageSealer's checks. */
import { sign } from 'node:crypto';
import { PROTOCOL_VERSION, UNIT_COUNT, encodeEnvelope, encodeSignedMessage, type ClusterMessage, type ClusterMessageType } from '@gwcluster/wire';
import { loadPrivateKey } from '../src/index.js';

/** 2030-01-01T00:00:00Z: inside the test PKI's default validity (1970..2100). */
export const NOW = Date.UTC(2030, 0, 1);
export const CLUSTER = 'alpha';

export const SAMPLE_MESSAGES: Record<ClusterMessageType, ClusterMessage> = {
  'join-request': { type: 'join-request', configVersion: 3, claimedUnits: [1, 2, 1023], nonce: 77 },
  'join-reply': { type: 'join-reply', result: 'ok', nonce: 77, epoch: 4, grantedUnits: [1, 2], keepalivePeriodMs: 100 },
  'master-offer': { type: 'master-offer', epoch: 5, memberCount: 1 },
  'other-master-exists': { type: 'other-master-exists', epoch: 5, memberCount: 3 },
  'master-keepalive': {
    type: 'master-keepalive',
    epoch: 5,
    seq: 9,
    keepalivePeriodMs: 100,
    configVersion: 3,
    members: [
      { member: '192.0.2.1', watchdogPeriods: 3, loss: 0, load: 0.5 },
      { member: '192.0.2.2', watchdogPeriods: 4, loss: 0.25, load: 1 },
    ],
    table: { version: 2, owners: Array.from({ length: UNIT_COUNT }, (_, u) => (u < 512 ? '192.0.2.1' : u < 1000 ? '192.0.2.2' : null)) },
  },
  'client-keepalive': { type: 'client-keepalive', epoch: 5, seq: 10, load: 0.75, ownedUnits: [7, 8], busiestUnits: [{ unit: 7, weight: 2 }], syncReady: true },
  'exit-cluster': { type: 'exit-cluster', reason: 'leaving', detail: 'operator asked', epoch: 5, configVersion: 3 },
  'work-assign': { type: 'work-assign', epoch: 5, requestId: 1, units: [3, 4] },
  'work-deassign': { type: 'work-deassign', epoch: 5, requestId: 2, units: [3], to: '192.0.2.2' },
  'work-ack': { type: 'work-ack', epoch: 5, requestId: 2, units: [3] },
  'state-sync': {
    type: 'state-sync',
    seq: 4,
    records: [
      { key: new Uint8Array([1, 2, 3]), version: 7, state: new Uint8Array([9, 9, 9, 9]), removed: false },
      { key: new Uint8Array([4]), version: 2, state: new Uint8Array(0), removed: true },
    ],
    snapshotComplete: true,
  },
  'state-ack': { type: 'state-ack', seqs: [4, 5] },
};

export interface CraftOptions {
  readonly sender: string;
  readonly chain: readonly Uint8Array[];
  readonly keyPem: string;
  readonly seq: number;
  readonly incarnation?: number;
  readonly sentAtMs?: number;
  readonly cluster?: string;
  readonly version?: number;
  readonly message?: ClusterMessage;
  /** Default 'broadcast'. */
  readonly recipient?: string;
  /** SignedMessage.version; default the envelope's version. */
  readonly signedVersion?: number;
}

/** A datagram built by hand: any sender field, any chain, signed with any key. */
export function craft(o: CraftOptions): Uint8Array {
  const signed = encodeSignedMessage({
    cluster: o.cluster ?? CLUSTER,
    sender: o.sender,
    certChain: o.chain,
    incarnation: o.incarnation ?? 1,
    seq: o.seq,
    sentAtMs: o.sentAtMs ?? NOW,
    message: o.message ?? SAMPLE_MESSAGES['master-offer'],
    recipient: o.recipient ?? 'broadcast',
    version: o.signedVersion ?? o.version ?? PROTOCOL_VERSION,
  });
  const signature = sign('sha256', signed, { key: loadPrivateKey(o.keyPem), dsaEncoding: 'ieee-p1363' });
  return encodeEnvelope({ version: o.version ?? PROTOCOL_VERSION, signed, signature });
}

/** Deterministic PRNG (xorshift32) so fuzz failures reproduce. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}
