/**
 * The cluster protocol's messages as TypeScript values. proto/cluster.proto is the source of truth for
 * the wire format; these types are what the codec hands out after it has decoded AND validated a
 * datagram, so a consumer never sees a missing field, an out-of-range unit or an oversized list.
 */

/** Number of work units (digest section 1, "Work units and load balancing"). */
export const UNIT_COUNT = 1024;

/** A member is named by its member IP address, dotted-quad IPv4. */
export type MemberId = string;

/** A work unit, 0..1023. */
export type WorkUnit = number;

/** 2: SignedMessage binds its recipient and repeats the version inside the signature. */
export const PROTOCOL_VERSION = 2;

export type NakCode = 'in-progress' | 'certificate-rejected' | 'application-rejected' | 'cluster-full' | 'config-mismatch';

export type ExitReason = 'not-a-member' | 'config-mismatch' | 'lost-tie-break' | 'leaving' | 'removed';

export interface JoinRequest {
  readonly type: 'join-request';
  readonly configVersion: number;
  /** Units the joiner served before, ascending. */
  readonly claimedUnits: readonly WorkUnit[];
  readonly nonce: number;
  /** The joiner's software release (absent from members that predate the field). */
  readonly softwareVersion?: string;
}

export type JoinReply =
  | {
      readonly type: 'join-reply';
      readonly result: 'ok';
      readonly nonce: number;
      readonly epoch: number;
      readonly grantedUnits: readonly WorkUnit[];
      readonly keepalivePeriodMs: number;
    }
  | {
      readonly type: 'join-reply';
      readonly result: 'nak';
      readonly code: NakCode;
      readonly reason: string;
      readonly nonce: number;
      readonly epoch: number;
    };

export interface MasterOffer {
  readonly type: 'master-offer';
  readonly epoch: number;
  readonly memberCount: number;
}

export interface OtherMasterExists {
  readonly type: 'other-master-exists';
  readonly epoch: number;
  readonly memberCount: number;
}

export interface MemberEntry {
  readonly member: MemberId;
  readonly watchdogPeriods: number;
  readonly loss: number;
  readonly load: number;
  /** The operator drained it (absent in messages of members that predate the field: false). */
  readonly draining?: boolean;
  /** ms since the master last heard from it (0 for the master itself). */
  readonly lastHeardMsAgo?: number;
  /** The software release the member announced (absent: unknown, a member that predates the field). */
  readonly softwareVersion?: string;
}

export interface WorkTableSnapshot {
  readonly version: number;
  /** owners[unit] is the owning member, or null while the unit is unassigned. Length UNIT_COUNT. */
  readonly owners: readonly (MemberId | null)[];
}

export interface MasterKeepalive {
  readonly type: 'master-keepalive';
  readonly epoch: number;
  readonly seq: number;
  readonly keepalivePeriodMs: number;
  readonly configVersion: number;
  readonly members: readonly MemberEntry[];
  readonly table: WorkTableSnapshot;
  /**
   * The member that takes office (epoch + 1, this table) as soon as its watchdog for this master expires;
   * one of `members`, never the sender. Absent when the master is alone.
   */
  readonly successor?: MemberId;
  /**
   * The owner of each address of the cluster's address pool, in the configuration's order (null: none).
   * Absent when the pool is empty.
   */
  readonly poolOwners?: readonly (MemberId | null)[];
  /** Dead members' own addresses and who answers for each (absent when none). */
  readonly takeovers?: readonly AddressTakeover[];
}

/** A dead member's own address, answered by `holder` until the member returns. */
export interface AddressTakeover {
  readonly member: MemberId;
  readonly holder: MemberId;
}

export interface UnitLoad {
  readonly unit: WorkUnit;
  readonly weight: number;
}

export interface ClientKeepalive {
  readonly type: 'client-keepalive';
  readonly epoch: number;
  readonly seq: number;
  readonly load: number;
  readonly ownedUnits: readonly WorkUnit[];
  readonly busiestUnits: readonly UnitLoad[];
  /** The member holds every other member's session state (absent from older members: true). */
  readonly syncReady?: boolean;
  /** The member's software release (absent from members that predate the field). */
  readonly softwareVersion?: string;
}

export interface ExitCluster {
  readonly type: 'exit-cluster';
  readonly reason: ExitReason;
  readonly detail: string;
  readonly epoch: number;
  readonly configVersion: number;
}

export interface WorkAssign {
  readonly type: 'work-assign';
  readonly epoch: number;
  readonly requestId: number;
  readonly units: readonly WorkUnit[];
}

export interface WorkDeassign {
  readonly type: 'work-deassign';
  readonly epoch: number;
  readonly requestId: number;
  readonly units: readonly WorkUnit[];
  /** The next owner, or '' when the units return to the unassigned pool. */
  readonly to: MemberId | '';
}

export interface WorkAck {
  readonly type: 'work-ack';
  readonly epoch: number;
  readonly requestId: number;
  readonly units: readonly WorkUnit[];
}

export type OperatorAction = 'drain' | 'undrain' | 'rebalance' | 'leave' | 'join' | 'config' | 'failback';

/** An operator action forwarded to the member that can carry it out (proto OperatorRequest). */
export interface OperatorRequest {
  readonly type: 'operator-request';
  readonly requestId: number;
  readonly action: OperatorAction;
  /** The member the action is about, or ''. */
  readonly member: MemberId | '';
  readonly payload: Uint8Array;
}

export interface OperatorReply {
  readonly type: 'operator-reply';
  readonly requestId: number;
  readonly ok: boolean;
  readonly code: string;
  readonly detail: string;
  readonly payload: Uint8Array;
}

/** Cluster configuration `version`: its cluster-wide fields as UTF-8 JSON. */
export interface ConfigUpdate {
  readonly type: 'config-update';
  readonly version: number;
  readonly clusterConfig: Uint8Array;
}

export interface ConfigStatus {
  readonly type: 'config-status';
  readonly version: number;
}

/** One session's latest replicated state (proto SessionRecord). */
export interface SessionRecord {
  readonly key: Uint8Array;
  readonly version: number;
  /** The encoded session record; empty when removed. */
  readonly state: Uint8Array;
  readonly removed: boolean;
}

export interface StateSync {
  readonly type: 'state-sync';
  readonly seq: number;
  readonly records: readonly SessionRecord[];
  readonly snapshotComplete: boolean;
  /** The records encrypted for the receiver (SyncCipher frame of encodeSyncRecords); records is then empty. */
  readonly sealed?: Uint8Array;
}

export interface StateAck {
  readonly type: 'state-ack';
  readonly seqs: readonly number[];
}

/** One TCP connection to a pool address, as the member serving it sees it. */
export interface AffinityFlow {
  readonly client: string;
  readonly clientPort: number;
  readonly port: number;
}

/** The connections to pool address `address` that the sender keeps serving after the address moved. */
export interface PoolAffinity {
  readonly type: 'pool-affinity';
  readonly address: string;
  readonly serial: number;
  readonly flows: readonly AffinityFlow[];
}

export type ClusterMessage =
  | PoolAffinity
  | StateSync
  | StateAck
  | OperatorRequest
  | OperatorReply
  | ConfigUpdate
  | ConfigStatus
  | JoinRequest
  | JoinReply
  | MasterOffer
  | OtherMasterExists
  | MasterKeepalive
  | ClientKeepalive
  | ExitCluster
  | WorkAssign
  | WorkDeassign
  | WorkAck;

export type ClusterMessageType = ClusterMessage['type'];

/** The authenticated header every message travels in (proto SignedMessage). */
export interface SignedMessage {
  readonly cluster: string;
  readonly sender: MemberId;
  /** DER certificates, leaf first; may be empty for messages other than join/election/master keepalive. */
  readonly certChain: readonly Uint8Array[];
  readonly incarnation: number;
  readonly seq: number;
  /** Sender's wall clock, ms since the epoch; informational (freshness is incarnation and seq). */
  readonly sentAtMs: number;
  readonly message: ClusterMessage;
  /** The member the message is addressed to, or every member of the cluster. */
  readonly recipient: MemberId | 'broadcast';
  /** The protocol version, inside the signature; must equal Envelope.version. */
  readonly version: number;
  /** The recipient's incarnation as the sender knows it; 0 (or absent): not known, or a broadcast. */
  readonly recipientIncarnation?: number;
}

/**
 * Exactly one of `signature` and `mac` authenticates `signed` (decodeEnvelope enforces it): a signature
 * with the sender's certificate key, or a pairwise HMAC-SHA-256 (LIMITS.macBytes) for the frequent
 * member-to-member unicasts (security MessageSealer).
 */
export interface Envelope {
  readonly version: number;
  readonly signed: Uint8Array;
  /** ECDSA P-256 signature over `signed`; empty when `mac` authenticates it. */
  readonly signature: Uint8Array;
  /** HMAC-SHA-256 over `signed` with the pairwise key; absent or empty when `signature` authenticates it. Decoded envelopes always have it (empty when signed). */
  readonly mac?: Uint8Array;
}
