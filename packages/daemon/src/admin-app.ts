/**
 * The admin API as a fastify plugin (testable with inject(); no port here). server.ts opens the port and
 * authenticates. Every route declares its params, query, body and every response status; the response
 * schema also keeps undeclared fields from leaking out. GET /openapi.json serves the OpenAPI document
 * built from these schemas. Routes: docs/operator-guide.md.
 *
 * Reads answer from this member's view: the cluster, members and units come from the master's
 * keepalives, so every member in the cluster answers the same; counters, events and log level are this
 * member's own. Actions that need the master are forwarded to it (operator-channel.ts).
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { MemberId, OperatorAction } from '@gwcluster/wire';
import type { MemberNode } from './control/member-node.js';
import { ApiError, ErrorSchema, API_ERRORS, type ApiErrorCode } from './api-errors.js';
import type { OperatorChannel } from './operator-channel.js';
import { CLUSTER_FIXED_FIELDS, CLUSTER_LIVE_FIELDS } from './cluster-config.js';
import { EMPTY_PROVIDERS, type OperatorProviders } from './providers.js';
import type { MemberMetrics } from './metrics.js';
import { registerDashboard } from './dashboard.js';

const IPV4_PATTERN = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';
const MemberIdSchema = Type.String({ pattern: IPV4_PATTERN, description: 'member IP, dotted-quad IPv4 (e.g. 192.0.2.11)' });

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
  },
  { $id: 'Member', title: 'Member' },
);

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
    counters: Type.Record(Type.String(), Type.Number()),
  },
  { $id: 'Cluster', title: 'Cluster' },
);
export type ClusterView = Static<typeof ClusterSchema>;

export const UnitsSchema = Type.Object({
  tableVersion: Type.Integer(),
  owners: Type.Array(Type.Union([Type.String(), Type.Null()]), { minItems: 1024, maxItems: 1024, description: 'owners[unit]: member IP or null' }),
});

const EventSchema = Type.Object({
  id: Type.Integer({ description: 'correlation id: the same number is in the daemon log line (correlationId)' }),
  at: Type.String(),
  epoch: Type.Integer(),
  kind: Type.String({ description: 'role | membership | protocol | cluster-ip | operator | config' }),
  message: Type.String(),
});
export const EventsSchema = Type.Object({ member: Type.String(), events: Type.Array(EventSchema) });

const SessionSchema = Type.Object({
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

const ActionSchema = Type.Object({
  action: Type.String(),
  member: Type.Union([Type.String(), Type.Null()]),
  doneBy: Type.String({ description: 'the member that carried it out (the master, or the member concerned)' }),
  forwarded: Type.Boolean({ description: 'true when the answering member forwarded the action' }),
  detail: Type.String(),
  result: Type.Record(Type.String(), Type.Unknown()),
});

const SettingsSchema = Type.Object(Object.fromEntries(CLUSTER_LIVE_FIELDS.map((f) => [f, Type.Number()])) as Record<string, TSchema>);

const ConfigSchema = Type.Object({
  version: Type.Integer(),
  settings: SettingsSchema,
  fixed: Type.Object({ name: Type.String(), clusterIp: Type.String(), port: Type.Integer(), maxClockSkewMs: Type.Integer() }),
  liveFields: Type.Array(Type.String()),
  history: Type.Array(Type.Object({ version: Type.Integer(), at: Type.String(), from: Type.String() })),
});

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
const LogLevelSchema = Type.Object({ level: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l))) });

/** Response schemas for the given error codes (their HTTP statuses), plus 400 and 401/403 for every route. */
function errors(...codes: ApiErrorCode[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 500: ErrorSchema };
  for (const c of codes) out[API_ERRORS[c]] = ErrorSchema;
  return out;
}

export interface AdminAppOptions {
  readonly node: MemberNode;
  readonly channel: OperatorChannel;
  readonly providers?: OperatorProviders;
  readonly metrics?: MemberMetrics;
  /** Snapshot period of GET /v1/stream, ms (default 500). */
  readonly streamPeriodMs?: number;
}

export function clusterView(node: MemberNode): ClusterView {
  const st = node.status();
  let assigned = 0;
  for (const o of st.owners) if (o !== null) assigned++;
  return {
    self: st.self,
    role: st.role,
    master: st.master,
    epoch: st.epoch,
    configVersion: st.configVersion,
    keepalivePeriodMs: st.keepalivePeriodMs,
    tableVersion: st.tableVersion,
    members: st.members.map((m) => ({ ...m })),
    units: { assigned, unassigned: 1024 - assigned, moving: st.movingUnits, ownedHere: st.ownedUnits.length },
    counters: countersOf(node, st),
  };
}

export function countersOf(node: MemberNode, st = node.status()): Record<string, number> {
  const counters: Record<string, number> = {};
  for (const [k, v] of Object.entries(st.counters)) counters[`core.${k}`] = v;
  for (const [k, v] of Object.entries(st.security)) counters[`auth.${k}`] = v;
  for (const [k, v] of Object.entries(st.transport)) counters[`udp.${k}`] = v;
  for (const [k, v] of Object.entries(st.node)) counters[`node.${k}`] = v;
  return counters;
}

/** The compact live view the dashboard draws: members, and the table as member indexes (-1: none). */
export function dashboardSnapshot(node: MemberNode): Record<string, unknown> {
  const st = node.status();
  const ids = st.members.map((m) => m.id);
  const index = new Map(ids.map((id, i) => [id, i]));
  return {
    self: st.self,
    role: st.role,
    master: st.master,
    epoch: st.epoch,
    configVersion: st.configVersion,
    keepalivePeriodMs: st.keepalivePeriodMs,
    tableVersion: st.tableVersion,
    moving: st.movingUnits,
    members: st.members.map((m) => ({ ...m })),
    table: st.owners.map((o) => (o === null ? -1 : (index.get(o) ?? -1))),
  };
}

export const adminApp: FastifyPluginAsync<AdminAppOptions> = async (app: FastifyInstance, opts) => {
  const { node, channel } = opts;
  const providers = opts.providers ?? EMPTY_PROVIDERS;

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'gwclusterd admin API',
        version: '1',
        description:
          'Served by every member on its management address. Authenticate with "Authorization: Bearer TOKEN" (admin.token of the member); with admin.tls, HTTPS and optionally a client certificate from the cluster CA. Errors are {code, message}; docs/operator-guide.md lists the codes.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get(
    '/healthz',
    { schema: { summary: 'Liveness (no authentication)', tags: ['health'], security: [], response: { 200: Type.Object({ ok: Type.Boolean(), role: Type.String() }) } } },
    async () => ({ ok: true, role: node.core.role }),
  );

  app.get('/v1/cluster', { schema: { summary: 'The cluster: master, epoch, configuration version, keepalive interval, members, units', tags: ['read'], response: { 200: ClusterSchema, ...errors() } } }, async () =>
    clusterView(node),
  );

  app.get(
    '/v1/members',
    { schema: { summary: 'Members with role, units, load, loss estimate and last keepalive', tags: ['read'], response: { 200: Type.Object({ master: Type.Union([Type.String(), Type.Null()]), members: Type.Array(MemberSchema) }), ...errors() } } },
    async () => {
      const st = node.status();
      return { master: st.master, members: st.members.map((m) => ({ ...m })) };
    },
  );

  app.get(
    '/v1/members/:member',
    { schema: { summary: 'One member', tags: ['read'], params: Type.Object({ member: MemberIdSchema }), response: { 200: MemberSchema, ...errors('GW_NOT_FOUND') } } },
    async (req) => {
      const { member } = req.params as { member: string };
      const m = node.status().members.find((x) => x.id === member);
      if (!m) throw new ApiError('GW_NOT_FOUND', `${member} is not a member of the cluster as ${node.self} knows it; see GET /v1/members`);
      return { ...m };
    },
  );

  app.get('/v1/units', { schema: { summary: 'The 1024-unit work table', tags: ['read'], response: { 200: UnitsSchema, ...errors() } } }, async () => {
    const st = node.status();
    return { tableVersion: st.tableVersion, owners: [...st.owners] };
  });

  app.get(
    '/v1/units/:unit',
    {
      schema: {
        summary: 'The owner of one work unit',
        tags: ['read'],
        params: Type.Object({ unit: Type.Integer({ minimum: 0, maximum: 1023, description: 'work unit 0..1023' }) }),
        response: { 200: Type.Object({ unit: Type.Integer(), owner: Type.Union([Type.String(), Type.Null()]), tableVersion: Type.Integer() }), ...errors() },
      },
    },
    async (req) => {
      const { unit } = req.params as { unit: number };
      const st = node.status();
      return { unit, owner: st.owners[unit] ?? null, tableVersion: st.tableVersion };
    },
  );

  app.get(
    '/v1/sessions',
    {
      schema: {
        summary: 'Sessions, paged and filtered (from the data plane; empty until it is wired in)',
        tags: ['read'],
        querystring: Type.Object({
          address: Type.Optional(Type.String({ pattern: IPV4_PATTERN, description: 'source or destination address' })),
          port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'source or destination port' })),
          unit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1023 })),
          member: Type.Optional(MemberIdSchema),
          offset: Type.Integer({ minimum: 0, default: 0 }),
          limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        }),
        response: {
          200: Type.Object({
            total: Type.Integer(),
            offset: Type.Integer(),
            limit: Type.Integer(),
            next: Type.Union([Type.Integer(), Type.Null()], { description: 'offset of the next page, or null' }),
            sessions: Type.Array(SessionSchema),
          }),
          ...errors(),
        },
      },
    },
    async (req) => {
      const q = req.query as { address?: string; port?: number; unit?: number; member?: string; offset: number; limit: number };
      const filter = {
        ...(q.address !== undefined ? { address: q.address } : {}),
        ...(q.port !== undefined ? { port: q.port } : {}),
        ...(q.unit !== undefined ? { unit: q.unit } : {}),
        ...(q.member !== undefined ? { member: q.member } : {}),
      };
      let page;
      try {
        page = providers.sessions.list(filter, q.offset, q.limit);
      } catch {
        page = { total: 0, sessions: [] };
      }
      const next = q.offset + page.sessions.length < page.total ? q.offset + page.sessions.length : null;
      return { total: page.total, offset: q.offset, limit: q.limit, next, sessions: page.sessions.map((s) => ({ ...s })) };
    },
  );

  app.get(
    '/v1/counters',
    { schema: { summary: "This member's counters (protocol, authentication, UDP, driver)", tags: ['read'], response: { 200: Type.Object({ member: Type.String(), counters: Type.Record(Type.String(), Type.Number()) }), ...errors() } } },
    async () => ({ member: node.self, counters: countersOf(node) }),
  );

  app.get(
    '/v1/events',
    {
      schema: {
        summary: "This member's recent cluster events, oldest first",
        tags: ['read'],
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
          after: Type.Optional(Type.Integer({ minimum: 0, description: 'only events with a larger id' })),
        }),
        response: { 200: EventsSchema, ...errors() },
      },
    },
    async (req) => {
      const { limit, after } = req.query as { limit: number; after?: number };
      const events = node
        .recentEvents(500)
        .filter((e) => after === undefined || e.id > after)
        .slice(-limit);
      return { member: node.self, events: events.map((e) => ({ id: e.id, at: e.at, epoch: e.epoch, kind: e.kind, message: e.message })) };
    },
  );

  app.get(
    '/v1/stream',
    {
      schema: {
        summary: 'Server-sent events: "snapshot" (the dashboard view) every 500 ms and "event" for each cluster event',
        tags: ['read'],
        querystring: Type.Object({ once: Type.Optional(Type.Boolean({ description: 'send one snapshot and the recent events, then close' })) }),
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errors() },
      },
    },
    async (req, reply) => streamEvents(node, req, reply, opts.streamPeriodMs ?? 500),
  );

  app.get('/v1/config', { schema: { summary: 'The cluster configuration this member runs', tags: ['read'], response: { 200: ConfigSchema, ...errors() } } }, async () => configView(node, channel));

  app.patch(
    '/v1/config',
    {
      schema: {
        summary: 'Change the cluster configuration: validated, versioned, propagated to every member (forwarded to the master)',
        tags: ['action'],
        body: Type.Object(
          {
            changes: Type.Record(Type.String(), Type.Unknown(), { description: `live fields to change: ${CLUSTER_LIVE_FIELDS.join(', ')}` }),
            baseVersion: Type.Optional(Type.Integer({ minimum: 1, description: 'refuse the change (409) unless the cluster runs this version' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ version: Type.Integer(), settings: SettingsSchema, doneBy: Type.String(), forwarded: Type.Boolean() }), ...errors('GW_CONFIG_CONFLICT', 'GW_CONFIG_INVALID', 'GW_NO_MASTER', 'GW_FORWARD_TIMEOUT') },
      },
    },
    async (req) => {
      const body = req.body as { changes: Record<string, unknown>; baseVersion?: number };
      const out = await channel.act('config', '', { changes: body.changes, ...(body.baseVersion !== undefined ? { baseVersion: body.baseVersion } : {}) });
      return { version: out.result.version as number, settings: out.result.settings as Record<string, number>, doneBy: out.doneBy, forwarded: out.forwarded };
    },
  );

  const memberAction = (action: OperatorAction, summary: string) =>
    app.post(
      `/v1/members/:member/${action}`,
      {
        schema: {
          summary,
          tags: ['action'],
          params: Type.Object({ member: MemberIdSchema }),
          response: { 202: ActionSchema, ...errors('GW_NOT_FOUND', 'GW_REFUSED', 'GW_NO_MASTER', 'GW_FORWARD_TIMEOUT') },
        },
      },
      async (req, reply) => {
        const { member } = req.params as { member: MemberId };
        const out = await channel.act(action, member);
        return reply.status(202).send({ action, member, doneBy: out.doneBy, forwarded: out.forwarded, detail: out.detail, result: out.result });
      },
    );
  memberAction('drain', 'Drain a member: move every unit it owns to the others (forwarded to the master); poll GET /v1/members/:member for progress');
  memberAction('undrain', 'Let a drained member take units again (forwarded to the master)');
  memberAction('leave', 'Make a member leave the cluster (forwarded to that member); it keeps running, out of the cluster, until join');
  memberAction('join', 'Make a member that left join again (forwarded to that member)');

  app.post(
    '/v1/rebalance',
    { schema: { summary: 'Run a rebalance round now (forwarded to the master); poll GET /v1/cluster until units.moving is 0', tags: ['action'], response: { 202: ActionSchema, ...errors('GW_NO_MASTER', 'GW_FORWARD_TIMEOUT') } } },
    async (_req, reply) => {
      const out = await channel.act('rebalance', '');
      return reply.status(202).send({ action: 'rebalance', member: null, doneBy: out.doneBy, forwarded: out.forwarded, detail: out.detail, result: out.result });
    },
  );

  app.get('/v1/log-level', { schema: { summary: "This member's log level", tags: ['observability'], response: { 200: LogLevelSchema, ...errors() } } }, async () => ({
    level: node.logLevel as (typeof LOG_LEVELS)[number],
  }));
  app.put(
    '/v1/log-level',
    { schema: { summary: "Change this member's log level at run time (until restart)", tags: ['observability'], body: LogLevelSchema, response: { 200: LogLevelSchema, ...errors() } } },
    async (req) => {
      const { level } = req.body as { level: (typeof LOG_LEVELS)[number] };
      const before = node.logLevel;
      node.logLevel = level;
      node.note('info', 'operator', `log level ${before} -> ${level}`, { before, level });
      return { level };
    },
  );

  if (opts.metrics) {
    const registry = opts.metrics.registry;
    app.get(
      '/metrics',
      { schema: { summary: 'Prometheus metrics (text exposition format)', tags: ['observability'], response: { 200: Type.String(), ...errors() } } },
      async (_req, reply) => {
        const text = await registry.metrics();
        return reply.type(registry.contentType).send(text);
      },
    );
  }

  registerDashboard(app);
};

function configView(node: MemberNode, channel: OperatorChannel) {
  const c = channel.configuration;
  const cl = node.config.cluster;
  const fixed = Object.fromEntries(CLUSTER_FIXED_FIELDS.map((f) => [f, cl[f]])) as { name: string; clusterIp: string; port: number; maxClockSkewMs: number };
  return { version: c.version, settings: c.settings, fixed, liveFields: [...CLUSTER_LIVE_FIELDS], history: channel.history.map((h) => ({ ...h })) };
}

async function streamEvents(node: MemberNode, req: FastifyRequest, reply: FastifyReply, periodMs: number): Promise<void> {
  const { once } = req.query as { once?: boolean };
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  const send = (event: string, data: unknown, id?: number) => {
    res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const lastId = Number(req.headers['last-event-id'] ?? 0) || 0;
  for (const e of node.recentEvents(100)) if (e.id > lastId) send('event', { id: e.id, at: e.at, epoch: e.epoch, kind: e.kind, message: e.message }, e.id);
  send('snapshot', dashboardSnapshot(node));
  if (once) {
    res.end();
    return;
  }
  const timer = setInterval(() => send('snapshot', dashboardSnapshot(node)), periodMs);
  const unsubscribe = node.onEvent((e) => send('event', { id: e.id, at: e.at, epoch: e.epoch, kind: e.kind, message: e.message }, e.id));
  const stop = () => {
    clearInterval(timer);
    unsubscribe();
  };
  req.raw.on('close', stop);
  res.on('close', stop);
}
