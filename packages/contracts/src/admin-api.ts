/**
 * The admin API's request and response shapes, shared by gwclusterd (its fastify routes validate and
 * serialize with these schemas through the TypeBox type provider) and gwctl (which reads the static
 * types). A response schema also keeps undeclared fields from leaking out. Routes: docs/operator-guide.md.
 */
import { Type, type Static, type TNumber, type TObject, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { CLUSTER_LIVE_FIELDS, type ClusterLiveField } from './member-config.js';

/**
 * The admin API's version. It changes when a route's answer changes incompatibly (a field removed or
 * retyped); added optional fields keep it. Every answer carries it in the API_VERSION_HEADER header, so
 * that gwctl can tell "another release" from "a broken answer".
 */
export const ADMIN_API_VERSION = 1;
export const API_VERSION_HEADER = 'gwcluster-api-version';

/**
 * Why `value` is not a `schema` (the first few problems, each with its JSON path), or null when it is.
 * gwctl checks every answer with it before reading a field.
 */
export function viewProblem(schema: TSchema, value: unknown): string | null {
  if (Value.Check(schema, value)) return null;
  const problems: string[] = [];
  for (const e of Value.Errors(schema, value)) {
    problems.push(`${e.path || '(the answer)'}: ${e.message}`);
    if (problems.length >= 3) break;
  }
  return problems.join('; ') || 'does not match the expected shape';
}

export const IPV4_PATTERN = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';
export const MemberIdSchema = Type.String({ pattern: IPV4_PATTERN, description: 'member IP, dotted-quad IPv4 (e.g. 192.0.2.11)' });
export const MemberParamsSchema = Type.Object({ member: MemberIdSchema });
/**
 * A work unit number as written in a URL: decimal digits only, 0..1023. A string pattern, not an integer
 * schema, because type coercion would read "1e3" as 1000 and "0x10" as 16.
 */
export const UNIT_NUMBER_PATTERN = '^(0|[1-9][0-9]{0,2}|10[01][0-9]|102[0-3])$';
export const UnitParamsSchema = Type.Object({ unit: Type.String({ pattern: UNIT_NUMBER_PATTERN, description: 'work unit 0..1023, decimal' }) });

export const MemberSchema = Type.Object(
  {
    id: Type.String({ description: 'member IP' }),
    role: Type.Union([Type.Literal('master'), Type.Literal('member')]),
    units: Type.Integer({ description: 'work units it owns' }),
    load: Type.Number({ description: 'reported load (units weighted by traffic; docs/architecture.md)' }),
    loss: Type.Number({ description: 'keepalive loss estimate P (master view)' }),
    watchdogPeriods: Type.Integer({ description: 'adaptive multiple n: declared dead after n missed keepalives' }),
    lastHeardMsAgo: Type.Union([Type.Number(), Type.Null()], { description: 'ms since the master last heard its keepalive (null: unknown here)' }),
    draining: Type.Boolean(),
    version: Type.Optional(Type.String({ description: 'software release the member announced (absent: a member that predates the announcement)' })),
  },
  { $id: 'Member', title: 'Member' },
);
export type MemberView = Static<typeof MemberSchema>;

export const CountersSchema = Type.Record(Type.String(), Type.Number());

export const ClusterSchema = Type.Object(
  {
    self: Type.String({ description: 'the member that answered' }),
    role: Type.String({ description: 'its role: joining | offering | member | master | waiting-config | rejected | left | stopped' }),
    master: Type.Union([Type.String(), Type.Null()]),
    epoch: Type.Integer(),
    configVersion: Type.Integer({ description: 'cluster configuration version this member runs' }),
    keepalivePeriodMs: Type.Integer({ description: 'keepalive interval T in force' }),
    tableVersion: Type.Integer(),
    members: Type.Array(MemberSchema),
    units: Type.Object({ assigned: Type.Integer(), unassigned: Type.Integer(), moving: Type.Integer(), ownedHere: Type.Integer() }),
    counters: CountersSchema,
    addresses: Type.Optional(
      Type.Object(
        {
          pool: Type.Array(Type.Object({ address: Type.String(), owner: Type.Union([Type.String(), Type.Null()], { description: 'the member answering for it (null: not placed yet)' }) })),
          takeovers: Type.Array(Type.Object({ member: Type.String({ description: 'a dead member' }), holder: Type.String({ description: 'the member answering for its own address' }) })),
          held: Type.Array(Type.String(), { description: 'addresses the answering member answers for besides its own' }),
        },
        { description: 'the address pool and own-address takeovers (docs/operator-guide.md, "Address pool")' },
      ),
    ),
    versions: Type.Optional(
      Type.Object(
        {
          software: Type.String({ description: "the answering member's software release" }),
          protocol: Type.Integer({ description: 'cluster protocol version it speaks' }),
          api: Type.Integer({ description: 'admin API version it serves' }),
        },
        { description: 'what the answering member runs' },
      ),
    ),
  },
  { $id: 'Cluster', title: 'Cluster' },
);
export type ClusterView = Static<typeof ClusterSchema>;

export const MembersSchema = Type.Object({ master: Type.Union([Type.String(), Type.Null()]), members: Type.Array(MemberSchema) });
export type MembersView = Static<typeof MembersSchema>;

export const UnitsSchema = Type.Object({
  tableVersion: Type.Integer(),
  owners: Type.Array(Type.Union([Type.String(), Type.Null()]), { minItems: 1024, maxItems: 1024, description: 'owners[unit]: member IP or null' }),
});
export type UnitsView = Static<typeof UnitsSchema>;

export const UnitOwnerSchema = Type.Object({ unit: Type.Integer(), owner: Type.Union([Type.String(), Type.Null()]), tableVersion: Type.Integer() });
export type UnitOwnerView = Static<typeof UnitOwnerSchema>;

export const SessionSchema = Type.Object({
  id: Type.String(),
  protocol: Type.String(),
  srcAddress: Type.String(),
  srcPort: Type.Integer(),
  dstAddress: Type.String(),
  dstPort: Type.Integer(),
  unit: Type.Integer(),
  member: Type.String(),
  since: Type.String(),
  packets: Type.Number(),
  bytes: Type.Number(),
});
export type SessionView = Static<typeof SessionSchema>;

export const SessionsQuerySchema = Type.Object({
  address: Type.Optional(Type.String({ pattern: IPV4_PATTERN, description: 'source or destination address' })),
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'source or destination port' })),
  unit: Type.Optional(Type.String({ pattern: UNIT_NUMBER_PATTERN, description: 'work unit 0..1023, decimal' })),
  member: Type.Optional(MemberIdSchema),
  offset: Type.Integer({ minimum: 0, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
});
export type SessionsQuery = Static<typeof SessionsQuerySchema>;

export const SessionsPageSchema = Type.Object({
  total: Type.Integer(),
  offset: Type.Integer(),
  limit: Type.Integer(),
  next: Type.Union([Type.Integer(), Type.Null()], { description: 'offset of the next page, or null' }),
  sessions: Type.Array(SessionSchema),
});
export type SessionsPageView = Static<typeof SessionsPageSchema>;

export const MemberCountersSchema = Type.Object({ member: Type.String(), counters: CountersSchema });
export type MemberCountersView = Static<typeof MemberCountersSchema>;

export const EventSchema = Type.Object({
  id: Type.Integer({ description: 'correlation id: the same number is in the daemon log line (correlationId)' }),
  at: Type.String(),
  epoch: Type.Integer(),
  kind: Type.String({ description: 'role | membership | protocol | cluster-ip | operator | config' }),
  message: Type.String(),
});
export type EventView = Static<typeof EventSchema>;
export const EventsQuerySchema = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  after: Type.Optional(Type.Integer({ minimum: 0, description: 'only events with a larger id' })),
});
export const EventsSchema = Type.Object({ member: Type.String(), events: Type.Array(EventSchema) });
export type EventsView = Static<typeof EventsSchema>;

export const StreamQuerySchema = Type.Object({ once: Type.Optional(Type.Boolean({ description: 'send one snapshot and the recent events, then close' })) });

/**
 * Health (GET /healthz): ok while the member takes part in a cluster or tries to (false once it left, was
 * rejected or stopped). `role` only for authenticated callers: an anonymous caller must not learn who is master.
 */
export const HealthSchema = Type.Object({ ok: Type.Boolean(), role: Type.Optional(Type.String({ description: 'this member\'s role; authenticated callers only' })) });

/** Liveness (GET /livez): the process answers and its event loop is not stalled. */
export const LivenessSchema = Type.Object({
  ok: Type.Boolean(),
  eventLoopDelayMs: Type.Number({ description: 'longest event-loop delay seen in the last measuring window, ms' }),
});
export type LivenessView = Static<typeof LivenessSchema>;

/** Readiness (GET /readyz): in a cluster, holding the cluster's session state, data plane up. */
export const ReadinessSchema = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Object({
    cluster: Type.Boolean({ description: 'a member or the master of a cluster' }),
    state: Type.Boolean({ description: "holds every other member's session state (snapshot received; true without state sync)" }),
    dataplane: Type.Boolean({ description: 'the data plane is running (true without a data plane)' }),
  }),
  role: Type.Optional(Type.String({ description: "this member's role; authenticated callers only" })),
});
export type ReadinessView = Static<typeof ReadinessSchema>;

export const ActionSchema = Type.Object({
  action: Type.String(),
  member: Type.Union([Type.String(), Type.Null()]),
  doneBy: Type.String({ description: 'the member that carried it out (the master, or the member concerned)' }),
  forwarded: Type.Boolean({ description: 'true when the answering member forwarded the action' }),
  detail: Type.String(),
  result: Type.Record(Type.String(), Type.Unknown()),
});
export type ActionView = Static<typeof ActionSchema>;

type NumericLiveField = Exclude<ClusterLiveField, 'addressPool' | 'memberAddressTakeover' | 'addressPoolFailback'>;
/**
 * The live settings as a member reports them. Every field is optional and others are allowed: during a
 * rolling upgrade the member that answers (or the master that made a version) may run another release,
 * which knows fewer or more live fields than the reader (docs/operator-guide.md, "Upgrading").
 */
export const SettingsSchema = Type.Partial(
  Type.Object({
    ...(Object.fromEntries(CLUSTER_LIVE_FIELDS.filter((f) => f !== 'addressPool' && f !== 'memberAddressTakeover' && f !== 'addressPoolFailback').map((f) => [f, Type.Number()])) as { [K in NumericLiveField]: TNumber }),
    addressPool: Type.Array(Type.Object({ address: Type.String(), interface: Type.String() })),
    memberAddressTakeover: Type.Boolean(),
    addressPoolFailback: Type.Union([Type.Literal('automatic'), Type.Literal('on-command')]),
  }),
);
export type ClusterSettingsView = Static<typeof SettingsSchema>;

export const ConfigSchema = Type.Object({
  version: Type.Integer(),
  settings: SettingsSchema,
  fixed: Type.Object({ name: Type.String(), clusterIp: Type.String(), port: Type.Integer(), maxClockSkewMs: Type.Integer() }),
  liveFields: Type.Array(Type.String()),
  history: Type.Array(Type.Object({ version: Type.Integer(), at: Type.String(), from: Type.String() })),
});
export type ConfigView = Static<typeof ConfigSchema>;

export const ConfigChangeSchema = Type.Object(
  {
    changes: Type.Record(Type.String(), Type.Unknown(), { description: `live fields to change: ${CLUSTER_LIVE_FIELDS.join(', ')}` }),
    baseVersion: Type.Optional(Type.Integer({ minimum: 1, description: 'refuse the change (409) unless the cluster runs this version' })),
  },
  { additionalProperties: false },
);
export type ConfigChange = Static<typeof ConfigChangeSchema>;

export const ConfigChangedSchema = Type.Object({ version: Type.Integer(), settings: SettingsSchema, doneBy: Type.String(), forwarded: Type.Boolean() });
export type ConfigChangedView = Static<typeof ConfigChangedSchema>;

/** Log levels the admin API accepts: the configuration's levels and 'silent'. */
export const API_LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type ApiLogLevel = (typeof API_LOG_LEVELS)[number];
export const LogLevelSchema = Type.Object({
  level: Type.Union([Type.Literal('trace'), Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('fatal'), Type.Literal('silent')]),
});
export type LogLevelView = Static<typeof LogLevelSchema>;
// The list and the schema name the same levels.
API_LOG_LEVELS satisfies readonly LogLevelView['level'][];

/** GET /v1/logs: this member's recent log lines (pino JSON, one per string), oldest first. */
export const LogsQuerySchema = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 5000, default: 500 }) });
export const LogsSchema = Type.Object({
  member: Type.String(),
  lines: Type.Array(Type.String(), { description: 'JSON log lines as the member wrote them, oldest first' }),
  dropped: Type.Integer({ description: 'older lines no longer kept in memory (the journal has them)' }),
});
export type LogsView = Static<typeof LogsSchema>;

/** GET /v1/member-config: this member's configuration (personality) as loaded, secrets redacted. */
export const MemberConfigViewSchema = Type.Object({
  member: Type.String(),
  config: Type.Record(Type.String(), Type.Unknown(), { description: 'the configuration after defaults; admin.token and admin.metricsToken are "<redacted>"' }),
});
export type MemberConfigView = Static<typeof MemberConfigViewSchema>;

/** Bounds of GET /v1/capture: a capture ends at `count` packets or `seconds`, whichever comes first. */
export const CAPTURE_LIMITS = { maxCount: 10_000, defaultCount: 100, maxSeconds: 60, defaultSeconds: 10 } as const;
export const CaptureQuerySchema = Type.Object({
  unit: Type.Integer({ minimum: 0, maximum: 1023, description: 'work unit whose packets are captured' }),
  count: Type.Integer({ minimum: 1, maximum: CAPTURE_LIMITS.maxCount, default: CAPTURE_LIMITS.defaultCount, description: 'stop after this many packets' }),
  seconds: Type.Number({ minimum: 0.1, maximum: CAPTURE_LIMITS.maxSeconds, default: CAPTURE_LIMITS.defaultSeconds, description: 'stop after this long' }),
  interface: Type.Optional(Type.String({ minLength: 1, maxLength: 15, pattern: '^[A-Za-z0-9._-]+$', description: "interface to capture on (default: the member's cluster interface); one of the member's configured interfaces" })),
});
export type CaptureQuery = Static<typeof CaptureQuerySchema>;

export const TunnelPeerSchema = Type.Object(
  {
    publicKey: Type.String({ description: "the peer's public key, base64" }),
    name: Type.Optional(Type.String()),
    allowedIps: Type.Array(Type.String()),
    endpoint: Type.Union([Type.String(), Type.Null()], { description: 'latest authenticated outer address "a.b.c.d:port" this member saw (null: never heard here)' }),
    unit: Type.Union([Type.Integer(), Type.Null()], { description: "work unit of the peer's outer packets (null: endpoint unknown here)" }),
    owner: Type.Union([Type.String(), Type.Null()], { description: 'the member that owns that unit and terminates the tunnel' }),
    latestHandshake: Type.Union([Type.String(), Type.Null()], { description: 'ISO time of the latest handshake this member completed with the peer' }),
    rxBytes: Type.Integer({ description: 'transport bytes received from the peer by this member' }),
    rxPackets: Type.Integer(),
    txBytes: Type.Integer({ description: 'transport bytes sent to the peer by this member' }),
    txPackets: Type.Integer(),
  },
  { $id: 'TunnelPeer', title: 'TunnelPeer' },
);
export type TunnelPeerApiView = Static<typeof TunnelPeerSchema>;

export const TunnelsSchema = Type.Object({
  member: Type.String({ description: 'the member that answered (the counters are its own)' }),
  enabled: Type.Boolean(),
  running: Type.Boolean(),
  publicKey: Type.Union([Type.String(), Type.Null()], { description: "the cluster's WireGuard public key (the private key is never shown)" }),
  listenAddress: Type.Union([Type.String(), Type.Null()]),
  listenPort: Type.Union([Type.Integer(), Type.Null()]),
  interface: Type.Union([Type.String(), Type.Null()]),
  peers: Type.Array(TunnelPeerSchema),
  drops: Type.Object({
    handshake: CountersSchema,
    transport: CountersSchema,
  }, { description: 'packets this member dropped, by reason (docs/tunnels.md)' }),
});
export type TunnelsApiView = Static<typeof TunnelsSchema>;
