/**
 * The member configuration file (the member's "personality"): the one definition from which come the
 * JSON schema (packages/daemon/schema/member-config.schema.json, written by scripts/gen-schema.mjs), the
 * defaults (each field's `default`, filled in by the validator) and the MemberConfig type (the form after
 * defaults and derived values are filled in). docs/configuration.md explains each field.
 *
 * A field wrapped in Filled() may be left out of the file but is always present in MemberConfig: it has a
 * `default` here, or the loader derives it (the description says from what). A field wrapped in
 * Type.Optional() stays optional in MemberConfig.
 */
import { Type, type Static, type TArray, type TObject, type TOptional, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';

declare const FilledMark: unique symbol;
/** An optional file field that MemberConfig always has (default or derived). Type-level mark only. */
export type TFilled<T extends TSchema> = TOptional<T> & { readonly [FilledMark]: true };

function Filled<T extends TSchema>(schema: T): TFilled<T> {
  return Type.Optional(schema) as TFilled<T>;
}

/** A string that must be one of `values`, as a JSON-schema `enum` (the validator names the allowed values). */
export function StringEnum<const V extends readonly string[]>(values: V, options: Record<string, unknown> = {}): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ ...options, enum: [...values] });
}

type Unfilled<T> = T extends TFilled<infer S> ? S : T;
type FilledKeys<P extends TProperties> = { [K in keyof P]: P[K] extends TFilled<TSchema> ? K : P[K] extends TOptional<TSchema> ? never : K }[keyof P];
type OptionalKeys<P extends TProperties> = Exclude<keyof P, FilledKeys<P>>;
/** The type of a configuration value after defaults: Filled fields required, everything read-only. */
export type Resolved<T> =
  T extends TObject<infer P>
    ? { readonly [K in FilledKeys<P>]: Resolved<Unfilled<P[K]>> } & { readonly [K in OptionalKeys<P>]?: Resolved<P[K]> }
    : T extends TArray<infer I>
      ? readonly Resolved<I>[]
      : T extends TSchema
        ? Static<T>
        : never;

const IPv4 = (description?: string) => Type.String({ format: 'ipv4', ...(description ? { description } : {}) });
const InterfaceName = (options: Record<string, unknown> = {}) => Type.String({ minLength: 1, maxLength: 15, pattern: '^[A-Za-z0-9._-]+$', ...options });
const PemFile = (description: string) => Type.String({ minLength: 1, description });

/**
 * The cluster configuration fields that change at run time (`gwctl config set`, propagated by the master,
 * adopted without a restart). Every other cluster field is fixed when the personalities are made.
 */
export const CLUSTER_LIVE_FIELDS = [
  'keepalivePeriodMs',
  'joinTimeoutMs',
  'offerTimeoutMs',
  'lossToleranceK',
  'minWatchdogPeriods',
  'maxWatchdogPeriods',
  'rebalanceIntervalMs',
  'maxMovesPerRebalance',
  'rebalanceThreshold',
  'reclaimGraceMs',
  'addressPool',
  'memberAddressTakeover',
  'addressPoolFailback',
] as const;
export type ClusterLiveField = (typeof CLUSTER_LIVE_FIELDS)[number];

/** The cluster's identity and wire settings: the same on every member, changed only by new personalities. */
export const CLUSTER_FIXED_FIELDS = ['name', 'clusterIp', 'port', 'maxClockSkewMs'] as const;
export type ClusterFixedField = (typeof CLUSTER_FIXED_FIELDS)[number];

export const ClusterSectionSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'Cluster name; members drop messages for other clusters.' }),
    clusterIp: IPv4('The one address clients use.'),
    configVersion: Filled(Type.Integer({ minimum: 1, default: 1, description: 'Version of the cluster configuration; members with another version are sent EXIT CLUSTER.' })),
    port: Filled(Type.Integer({ minimum: 1, maximum: 65535, default: 7400, description: 'UDP port of the cluster protocol.' })),
    broadcastAddress: Filled(IPv4("Where JOIN REQUEST, MASTER OFFER and MASTER KEEPALIVE go. Default: the member subnet's broadcast address.")),
    keepalivePeriodMs: Filled(Type.Integer({ minimum: 10, maximum: 10000, default: 40, description: 'Keepalive period T, ms. Death is declared after n missed periods, (n + 0.5) * T (260 ms at the defaults).' })),
    joinTimeoutMs: Filled(Type.Integer({ minimum: 10, maximum: 10000, default: 100 })),
    offerTimeoutMs: Filled(Type.Integer({ minimum: 10, maximum: 10000, default: 100 })),
    lossToleranceK: Filled(Type.Number({ minimum: 1, default: 9000, description: 'K of the adaptive interval: smallest n >= minWatchdogPeriods with n * P^n < 1/K.' })),
    minWatchdogPeriods: Filled(Type.Integer({ minimum: 2, maximum: 20, default: 6, description: 'Smallest adaptive multiple n: death needs at least this many keepalives missing in a row.' })),
    maxWatchdogPeriods: Filled(Type.Integer({ minimum: 2, maximum: 20, default: 20 })),
    rebalanceIntervalMs: Filled(Type.Integer({ minimum: 100, maximum: 600000, default: 2000 })),
    maxMovesPerRebalance: Filled(Type.Integer({ minimum: 1, maximum: 1024, default: 1024 })),
    reclaimGraceMs: Filled(Type.Integer({ minimum: 0, maximum: 60000, default: 1000 })),
    unitAssignment: Filled(
      StringEnum(['at-once', 'first-packet'], {
        default: 'at-once',
        description:
          "How unowned work units get an owner. at-once: the master hands every unowned unit out on its next tick, in contiguous shares (the table is complete without traffic). first-packet: a unit goes to the least loaded member when its first packet arrives, its packets held until that member acknowledges, so work follows traffic (docs/decisions.md).",
      }),
    ),
    addressPool: Filled(
      Type.Array(
        Type.Object(
          {
            address: IPv4('A pool address: answered by exactly one member (the master spreads the pool evenly by count).'),
            interface: InterfaceName({ description: 'The interface its owner answers ARP on and adds the address to.' }),
          },
          { additionalProperties: false },
        ),
        {
          maxItems: 64,
          default: [],
          description:
            'The address pool (docs/operator-guide.md, "Address pool"): each address is owned by exactly one live member, spread evenly by count, answered with that member\'s MAC and announced by gratuitous ARP when it moves. At most 64; no duplicates; never the cluster IP or a member\'s own address.',
        },
      ),
    ),
    addressPoolFailback: Filled(
      StringEnum(['automatic', 'on-command'], {
        default: 'automatic',
        description:
          'When pool addresses go back to a member that returned (or are spread again after any change of counts). automatic: at once (the counts never differ by more than one). on-command: addresses move only when their owner dies or is drained, and are spread again on `gwctl rebalance`; old connections stay on their member either way (affinity).',
      }),
    ),
    memberAddressTakeover: Filled(
      Type.Boolean({
        default: false,
        description:
          "When a member dies, a survivor (the next member in address order) answers for the dead member's own address from its own MAC until the member re-joins. Only right when a dead member's host is gone (power, link): a member whose daemon alone died still answers from its kernel.",
      }),
    ),
    heldForNewerRelease: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{0,63}$' }), Type.Unknown(), {
        maxProperties: 64,
        description:
          "Written by the member, never by hand: live fields of a newer release that this member adopted without knowing them (a rolling upgrade), with their values. A release that knows a field takes its value from here at boot when the section has none of its own, so a member upgraded last runs the cluster's value rather than the default.",
      }),
    ),
    maxClockSkewMs: Filled(Type.Integer({ minimum: 100, maximum: 3600000, default: 30000, description: 'A message whose timestamp is further from this member\'s clock is still accepted (freshness is the per-sender sequence), but counted (auth.clock-skew) and logged: check NTP.' })),
    rebalanceThreshold: Filled(
      Type.Number({
        minimum: 0,
        maximum: 1,
        default: 0.05,
        description: 'A rebalance round starts only when the most and least loaded members differ by more than this fraction of the mean load (hysteresis; 0 = whenever moving a unit helps).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const MemberSectionSchema = Type.Object(
  {
    address: IPv4("This member's own IP on the cluster interface; its id."),
    prefixLength: Filled(Type.Integer({ minimum: 8, maximum: 30, default: 24 })),
    interface: InterfaceName({ description: 'The cluster interface (carries the cluster IP and the protocol).' }),
    name: Filled(Type.String({ maxLength: 64, description: 'A label for people; defaults to the address.' })),
  },
  { additionalProperties: false },
);

export const PkiSectionSchema = Type.Object(
  {
    certificate: PemFile('PEM certificate chain of this member, leaf first.'),
    key: PemFile('PKCS#8 PEM private key of the leaf; mode 0600 or stricter.'),
    ca: PemFile('PEM certificate of the cluster CA.'),
    crl: Type.Optional(PemFile('Optional PEM certificate revocation list of the CA.')),
    allowedCertificates: Type.Optional(
      Type.Array(Type.String({ pattern: '^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$' }), {
        maxItems: 1024,
        description: 'Optional list of valid member certificates (SHA-256 fingerprints); when given, only these may join.',
      }),
    ),
    bundleSignature: Type.Optional(
      PemFile(
        'Signed manifest of the software and configuration bundle (gwctl bundle sign). When set, the boot stops unless the signature verifies with the cluster CA and every listed file matches.',
      ),
    ),
  },
  { additionalProperties: false },
);

export const AdminTlsSchema = Type.Object(
  {
    certificate: Filled(PemFile('PEM certificate chain of the admin API. Default: pki.certificate.')),
    key: Filled(PemFile('PEM private key (mode 0600 or stricter). Default: pki.key.')),
    ca: Filled(PemFile('PEM CA that client certificates must chain to. Default: pki.ca.')),
    requireClientCertificate: Filled(Type.Boolean({ default: false, description: 'Refuse requests without a client certificate issued by the CA (403 GW_FORBIDDEN).' })),
  },
  {
    additionalProperties: false,
    description: "Serve the admin API over HTTPS with this member's certificate; optionally require client certificates from the cluster CA (mutual TLS).",
  },
);

export const AdminSectionSchema = Type.Object(
  {
    listen: Filled(IPv4('Address of the admin API. Default: the member address.')),
    port: Filled(Type.Integer({ minimum: 1, maximum: 65535, default: 7401 })),
    token: Type.Optional(Type.String({ minLength: 16, maxLength: 256, description: 'Bearer token required by the admin API. Without it the API is read-only.' })),
    metricsToken: Type.Optional(
      Type.String({
        minLength: 16,
        maxLength: 256,
        description:
          'A second, read-only bearer token for scrapers and dashboards: it reads GET /metrics and the other read routes (not the logs, member configuration or packet capture), and every action answers 403 GW_FORBIDDEN. Must differ from token.',
      }),
    ),
    tls: Type.Optional(AdminTlsSchema),
  },
  { additionalProperties: false, default: {} },
);

export const ClusterAddressSectionSchema = Type.Object(
  {
    mode: Filled(
      StringEnum(['interface', 'none'], {
        default: 'interface',
        description: 'interface: the master adds the cluster IP to its interface and sends gratuitous ARP; none: do not touch addresses (tests of the protocol alone).',
      }),
    ),
  },
  { additionalProperties: false, default: {} },
);

export const LivenessSectionSchema = Type.Object(
  {
    intervalMs: Filled(
      Type.Integer({
        minimum: 0,
        maximum: 1000,
        default: 5,
        description:
          "Fast liveness (docs/protocol.md): every intervalMs a native thread sends each member an authenticated heartbeat on UDP port cluster.port + 1, and a member silent for (n + 0.5) x its interval, with its keepalives late by a period too, is dead at once instead of at the keepalive watchdog. 0: off (deaths are found by the watchdog alone).",
      }),
    ),
    minPeriods: Filled(Type.Integer({ minimum: 2, maximum: 20, default: 4, description: 'Smallest number n of heartbeats missed in a row that is a death; raised per peer with its measured heartbeat loss by the adaptive rule n * P^n < 1/K (cluster.lossToleranceK), up to maxPeriods.' })),
    maxPeriods: Filled(Type.Integer({ minimum: 2, maximum: 100, default: 40 })),
    realtimePriority: Filled(
      Type.Integer({ minimum: 0, maximum: 99, default: 10, description: 'SCHED_FIFO priority of the heartbeat thread, so a busy host neither delays heartbeats nor fakes a death (as VRRP daemons run); 0: normal scheduling. Refused (no CAP_SYS_NICE): logged, the thread runs with normal scheduling.' }),
    ),
  },
  { additionalProperties: false, default: {} },
);

export const ApplicationSchema = Type.Object(
  {
    name: StringEnum(['deny-list']),
    deny: Type.Optional(Type.Array(IPv4())),
    reason: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

export const HoldLimitsSchema = Type.Object(
  {
    perUnitPackets: Filled(Type.Integer({ minimum: 1, maximum: 65536, default: 1024 })),
    totalPackets: Filled(Type.Integer({ minimum: 1, maximum: 1048576, default: 65536 })),
    totalBytes: Filled(Type.Integer({ minimum: 1500, maximum: 1073741824, default: 67108864 })),
  },
  { additionalProperties: false, default: {} },
);

export const SessionTrackingSchema = Type.Object(
  {
    tracking: Filled(Type.Boolean({ default: true, description: 'Track sessions (TCP from both directions, UDP and others by addresses and ports). Off: the data plane is stateless.' })),
    mode: Filled(
      StringEnum(['strict', 'loose'], {
        default: 'strict',
        description: 'strict: drop mid-stream TCP packets of unknown sessions and segments outside the window, like a stateful firewall; loose: accept and pick such sessions up.',
      }),
    ),
    sync: Filled(Type.Boolean({ default: true, description: "Replicate sessions to every member so that survivors carry on a dead member's sessions." })),
    maxSessions: Filled(Type.Integer({ minimum: 1, maximum: 100000000, default: 1000000, description: 'Sessions held (own and replicated); about 184 bytes each.' })),
    maxSyncBytesPerSecond: Filled(Type.Integer({ minimum: 10000, maximum: 1000000000, default: 4000000, description: 'Replication rate limit per peer; keepalives are never limited.' })),
    stateFile: Filled(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          "Where the session table (own sessions and replicas) is saved at shutdown and every saveEveryMs, and restored from at start, so that connections survive a restart of every member's daemon at once. Default: sessions.state. Relative to the state directory (gwclusterd --state-dir, systemd StateDirectory=) when there is one, else to this file's directory.",
      }),
    ),
    saveEveryMs: Filled(Type.Integer({ minimum: 0, maximum: 3600000, default: 1000, description: 'Period of the session table saves to stateFile, ms (0: only at shutdown). Each save writes every session (112 bytes each).' })),
  },
  { additionalProperties: false, default: {}, description: 'Stateful tracking of the flows this member owns, and their replication to every member (docs/state-sync.md).' },
);

export const DataPlaneSectionSchema = Type.Object(
  {
    method: Filled(
      StringEnum(['master-forward', 'unicast-mac', 'multicast-mac'], {
        default: 'master-forward',
        description:
          "Distribution method (digest): 1 master-forward: the master's MAC answers ARP and the master forwards other members' packets; 2 unicast-mac: a cluster-wide unicast MAC every member accepts (the switch must flood it); 3 multicast-mac: a cluster-wide multicast MAC.",
      }),
    ),
    interfaces: Type.Array(
      Type.Object({ name: InterfaceName(), clusterIps: Type.Array(IPv4(), { minItems: 1, maxItems: 16 }) }, { additionalProperties: false }),
      { minItems: 1, maxItems: 8, description: 'Interfaces whose packets the data plane filters, each with the cluster IPs it answers for.' },
    ),
    clusterMac: Filled(
      Type.String({
        pattern: '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$',
        description: 'Cluster-wide MAC for methods 2 and 3. Default: derived from cluster.clusterIp (02:00:5e:... unicast, 01:00:5e:... multicast).',
      }),
    ),
    path: Filled(
      StringEnum(['auto', 'nfqueue', 'kernel'], {
        default: 'auto',
        description:
          "Where packets are decided. kernel: a tc BPF program on each interface passes this member's units and drops other members' in the kernel; with session tracking the engine sees each flow until its session is established (and its SYN, FIN and RST) and offloads it to the kernel; method 1's master sends other members' units to their owners from the kernel; held units go to the packet engine (needs Linux 6.6+, an addon built with the fast path, and CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN). nfqueue: every packet for a cluster IP or routed by the cluster goes to the packet engine in user space. auto: kernel where it loads, else nfqueue (logged as a warning at start).",
      }),
    ),
    queueNum: Filled(Type.Integer({ minimum: 0, maximum: 65535, default: 0, description: 'NFQUEUE number the packet engine reads.' })),
    whenDaemonDies: Filled(
      StringEnum(['route-established', 'drop'], {
        default: 'route-established',
        description:
          "What this member's kernel does with the cluster's routed traffic while its daemon is dead (docs/dataplane.md, \"When the daemon dies\"). Method 1 only (in methods 2 and 3 every member receives every frame, so a dead member always drops). route-established: packets of connections its kernel has seen are routed on (as a plain router would) until the survivors take over, and nothing else: no new connection, nothing for a cluster IP itself. drop: every packet is dropped until the survivors take over.",
      }),
    ),
    forwarding: Filled(Type.Boolean({ default: true, description: 'Route packets between the data-plane interfaces (the cluster as gateway).' })),
    forwardInterface: Filled(
      Type.String({ maxLength: 15, description: "Interface the master forwards other members' packets on (method 1) and releases held packets on. Default: member.interface." }),
    ),
    ppsPerUnitWeight: Filled(Type.Number({ minimum: 1, default: 1000, description: 'Load measure: a unit weighs 1 + its packets per second / this + its bytes per second / bytesPerUnitWeight.' })),
    bytesPerUnitWeight: Filled(Type.Number({ minimum: 1, default: 1000000, description: 'Load measure: a unit weighs 1 + its packets per second / ppsPerUnitWeight + its IP bytes per second / this.' })),
    hold: Filled(HoldLimitsSchema),
    sessions: Filled(SessionTrackingSchema),
  },
  {
    additionalProperties: false,
    description:
      'The packet data plane: which member handles each packet (docs/dataplane.md). Without this section the member runs the cluster protocol only and binds the cluster IP on the master (clusterAddress).',
  },
);

export const WireGuardPeerSchema = Type.Object(
  {
    publicKey: Type.String({ minLength: 44, maxLength: 44, description: "The peer's public key: base64 of 32 bytes (`wg pubkey`)." }),
    allowedIps: Type.Array(Type.String({ minLength: 9, maxLength: 18, description: 'An IPv4 prefix, a.b.c.d/n with the host bits zero.' }), {
      minItems: 1,
      maxItems: 64,
      description: "The inner prefixes routed to this peer and accepted as inner sources from it (cryptokey routing). No two peers' prefixes may overlap.",
    }),
    presharedKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'Optional preshared key (base64 of 32 bytes, `wg genpsk`) in a file of mode 0600 or stricter.' })),
    name: Type.Optional(Type.String({ maxLength: 64, description: 'A label for people (API, gwctl peers list, metrics).' })),
  },
  { additionalProperties: false },
);

export const WireGuardSectionSchema = Type.Object(
  {
    enabled: Filled(Type.Boolean({ default: true, description: 'Run the WireGuard endpoint (false keeps the section but runs nothing).' })),
    listenPort: Filled(Type.Integer({ minimum: 1, maximum: 65535, default: 51820, description: 'UDP port on the cluster IP (cluster.clusterIp); only the owner of a peer\'s work unit receives its packets.' })),
    privateKeyFile: Type.String({ minLength: 1, description: "The cluster's WireGuard private key: base64 of 32 bytes (gwctl wg genkey), mode 0600 or stricter. Only its public key is ever shown." }),
    interface: Filled(InterfaceName({ default: 'gwwg0', description: 'Name of the TUN device the decrypted packets leave by (routes to every peer\'s allowed IPs go through it).' })),
    mtu: Filled(Type.Integer({ minimum: 576, maximum: 9000, default: 1420, description: 'MTU of the TUN device.' })),
    underLoadPerSecond: Filled(Type.Integer({ minimum: 0, maximum: 1000000, default: 1000, description: 'Handshake messages per second above which the endpoint answers with cookie replies (0: always).' })),
    peers: Filled(Type.Array(WireGuardPeerSchema, { maxItems: 1024, default: [], description: 'The peers allowed to connect.' })),
    replicateKeys: Filled(Type.Boolean({ default: true, description: "Replicate every tunnel's keypairs, counters and replay state to the other members over the encrypted state sync, so the member that takes a tunnel over carries it on without a new handshake (docs/tunnels.md, \"Replication and takeover\"). false: only each peer's endpoint is replicated (the inside-to-owner path keeps working) and a takeover costs the peers a new handshake. Needs dataplane.sessions.tracking and sync." })),
    forwardPort: Filled(Type.Integer({ minimum: 1, maximum: 65535, default: 51821, description: "UDP port on each member's own address (member.address) by which a member sends the owner of a tunnel the inside's packets for that tunnel's peer (the inside-to-owner path, docs/tunnels.md)." })),
  },
  { additionalProperties: false, description: 'WireGuard tunnels terminated by the cluster (docs/tunnels.md).' },
);

export const TunnelsSectionSchema = Type.Object(
  { wireguard: Type.Optional(WireGuardSectionSchema) },
  { additionalProperties: false, description: 'Tunnels the cluster terminates.' },
);

export const MemberConfigSchema = Type.Object(
  {
    cluster: ClusterSectionSchema,
    member: MemberSectionSchema,
    pki: PkiSectionSchema,
    admin: Filled(AdminSectionSchema),
    clusterAddress: Filled(ClusterAddressSectionSchema),
    liveness: Filled(LivenessSectionSchema),
    applications: Filled(Type.Array(ApplicationSchema, { maxItems: 32, default: [] })),
    logLevel: Filled(StringEnum(LOG_LEVELS, { default: 'info' })),
    dataplane: Type.Optional(DataPlaneSectionSchema),
    tunnels: Type.Optional(TunnelsSectionSchema),
  },
  { additionalProperties: false },
);

/** The configuration file as written (optional fields may be absent). */
export type MemberConfigFile = Static<typeof MemberConfigSchema>;

/** The member configuration after validation: defaults and derived values filled in, paths absolute. */
export type MemberConfig = Resolved<typeof MemberConfigSchema> & {
  /** Absolute path of the file this was read from ('' when built in memory). */
  readonly source: string;
};
export type DataPlaneConfig = Resolved<typeof DataPlaneSectionSchema>;
export type AdminTlsConfig = Resolved<typeof AdminTlsSchema>;
export type ApplicationConfig = Resolved<typeof ApplicationSchema>;
export type WireGuardConfig = Resolved<typeof WireGuardSectionSchema>;
export type WireGuardPeerConfig = Resolved<typeof WireGuardPeerSchema>;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The JSON-schema document of the configuration file (what scripts/gen-schema.mjs writes). */
export function memberConfigJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://gwcluster.invalid/schema/member-config.json',
    title: "gwcluster member configuration (the member's personality)",
    description:
      "One file per member, read by gwclusterd --config FILE. Relative paths are relative to this file's directory. docs/configuration.md documents every field.",
    ...(JSON.parse(JSON.stringify(MemberConfigSchema)) as Record<string, unknown>),
  };
}
