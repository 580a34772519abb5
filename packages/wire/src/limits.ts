/** Size limits the codec enforces on every decoded field (see proto/cluster.proto). */
export const LIMITS = {
  /** Largest datagram a member accepts, bytes. */
  maxDatagramBytes: 60_000,
  maxSignedBytes: 60_000,
  maxSignatureBytes: 132,
  /** Envelope.mac: HMAC-SHA-256, exactly this many bytes. */
  macBytes: 32,
  maxClusterNameChars: 64,
  maxCertificates: 4,
  maxCertificateBytes: 4096,
  maxReasonChars: 256,
  /** JoinRequest / ClientKeepalive / MemberEntry software_version, characters. */
  maxSoftwareVersionChars: 32,
  maxMembers: 255,
  maxBusiestUnits: 32,
  maxTableRunNumbers: 2048,
  /** MasterKeepalive.pool_owners: addresses in the cluster's address pool. */
  maxPoolAddresses: 64,
  /** MasterKeepalive.takeovers. */
  maxTakeovers: 255,
  /** OperatorRequest / OperatorReply payload and ConfigUpdate cluster_config, bytes. */
  maxOperatorPayloadBytes: 8192,
  maxErrorCodeChars: 64,
  /** PoolAffinity.flows: connections (8 bytes each). */
  maxAffinityFlows: 4096,
  maxSyncRecords: 64,
  maxSessionKeyBytes: 64,
  maxSessionStateBytes: 256,
  maxSyncAcks: 64,
  /** StateSync.sealed, bytes (64 records of the largest key and state, plus framing). */
  maxSealedSyncBytes: 32_768,
  /** Largest value a uint64 field may carry: JavaScript's exact integer range. */
  maxUint64: Number.MAX_SAFE_INTEGER,
} as const;
