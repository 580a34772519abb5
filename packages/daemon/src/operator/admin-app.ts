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
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@sinclair/typebox';
import type { MemberId, OperatorAction } from '@gwcluster/wire';
import type { ClusterStatus } from '@gwcluster/cluster-core';
import {
  API_ERRORS,
  ActionSchema,
  CaptureQuerySchema,
  ClusterSchema,
  ConfigChangeSchema,
  ConfigChangedSchema,
  ConfigSchema,
  ErrorSchema,
  EventsQuerySchema,
  EventsSchema,
  HealthSchema,
  LivenessSchema,
  LogLevelSchema,
  ReadinessSchema,
  LogsQuerySchema,
  LogsSchema,
  MemberConfigViewSchema,
  MemberCountersSchema,
  MemberParamsSchema,
  MemberSchema,
  MembersSchema,
  SessionsPageSchema,
  SessionsQuerySchema,
  StreamQuerySchema,
  TunnelsSchema,
  UnitOwnerSchema,
  UnitParamsSchema,
  UnitsSchema,
  type ApiErrorCode,
  type ApiLogLevel,
  type ClusterSettingsView,
  type ClusterView,
  type ConfigView,
} from '@gwcluster/contracts';
import type { MemberNode } from '../control/member-node.js';
import { ApiError } from './api-errors.js';
import type { OperatorChannel } from './operator-channel.js';
import { CLUSTER_FIXED_FIELDS, CLUSTER_LIVE_FIELDS } from '../config/cluster-config.js';
import { EMPTY_PROVIDERS, type OperatorProviders } from './providers.js';
import { NO_TUNNELS } from '../tunnels/tunnels-view.js';
import type { MemberMetrics } from './metrics.js';
import { registerDashboard } from './dashboard.js';
import { VERSIONS } from '../version.js';
import type { EventLoopHealth } from './event-loop-watch.js';
import type { LogRing } from './log-ring.js';
import { pcapGlobalHeader, pcapRecord } from './pcap.js';
import { readiness } from './readiness.js';

export type { ClusterView } from '@gwcluster/contracts';

/** Bytes of pcap a capture keeps queued for a slow client at most; frames beyond are not sent. */
const CAPTURE_BUFFER_BYTES = 8 << 20;

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
  /** This member's recent log lines (GET /v1/logs). */
  readonly logs?: LogRing;
  /** This member's configuration with the secrets redacted (GET /v1/member-config). */
  readonly memberConfig?: () => Record<string, unknown>;
  /** Snapshot period of GET /v1/stream, ms (default 500). */
  readonly streamPeriodMs?: number;
  /** The data plane, when the member runs one: /readyz needs it running. */
  readonly dataPlane?: { readonly running: boolean };
  /** Event-loop delay for /livez (default: none measured, always live while answering). */
  readonly eventLoop?: EventLoopHealth;
}

/** Roles in which a member takes part in a cluster or tries to (anything but left, rejected, stopped). */
const HEALTHY_ROLES = new Set(['joining', 'offering', 'member', 'master', 'waiting-config']);

/** The header fields every view of the cluster starts with (the cluster view, the dashboard snapshot). */
function clusterHeader(st: ClusterStatus) {
  return {
    self: st.self,
    role: st.role,
    master: st.master,
    epoch: st.epoch,
    configVersion: st.configVersion,
    keepalivePeriodMs: st.keepalivePeriodMs,
    tableVersion: st.tableVersion,
    members: st.members.map((m) => ({ ...m })),
  };
}

export function clusterView(node: MemberNode): ClusterView {
  const st = node.status();
  let assigned = 0;
  for (const o of st.owners) if (o !== null) assigned++;
  return {
    ...clusterHeader(st),
    units: { assigned, unassigned: 1024 - assigned, moving: st.movingUnits, ownedHere: st.ownedUnits.length },
    counters: countersOf(node, st),
    addresses: { pool: st.addresses.pool.map((p) => ({ ...p })), takeovers: st.addresses.takeovers.map((t) => ({ ...t })), held: [...st.addresses.held] },
    versions: { ...VERSIONS },
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
    ...clusterHeader(st),
    moving: st.movingUnits,
    table: st.owners.map((o) => (o === null ? -1 : (index.get(o) ?? -1))),
  };
}

export const adminApp: FastifyPluginAsyncTypebox<AdminAppOptions> = async (app, opts) => {
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
    {
      schema: {
        summary: 'Health (no authentication): 200 while the member is in a cluster or trying to join one; 503 once it left, was rejected or stopped',
        tags: ['health'],
        security: [],
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (req, reply) => {
      const role = node.core.role;
      const ok = HEALTHY_ROLES.has(role);
      void reply.status(ok ? 200 : 503);
      return req.authenticated ? { ok, role } : { ok };
    },
  );

  app.get(
    '/livez',
    {
      schema: {
        summary: 'Liveness (no authentication): 200 while the process answers and its event loop is not stalled; 503 otherwise',
        tags: ['health'],
        security: [],
        response: { 200: LivenessSchema, 503: LivenessSchema },
      },
    },
    async (_req, reply) => {
      const delay = opts.eventLoop?.recentMaxDelayMs() ?? 0;
      const ok = opts.eventLoop ? !opts.eventLoop.stalled() : true;
      void reply.status(ok ? 200 : 503);
      return { ok, eventLoopDelayMs: Math.round(delay * 10) / 10 };
    },
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness (no authentication): 200 when in a cluster, holding the session state and with the data plane up; 503 otherwise',
        tags: ['health'],
        security: [],
        response: { 200: ReadinessSchema, 503: ReadinessSchema },
      },
    },
    async (req, reply) => {
      const { ready, checks, role } = readiness(node, opts.dataPlane);
      void reply.status(ready ? 200 : 503);
      return { ready, checks: { ...checks }, ...(req.authenticated ? { role } : {}) };
    },
  );

  app.get('/v1/cluster', { schema: { summary: 'The cluster: master, epoch, configuration version, keepalive interval, members, units', tags: ['read'], response: { 200: ClusterSchema, ...errors() } } }, async () =>
    clusterView(node),
  );

  app.get(
    '/v1/members',
    { schema: { summary: 'Members with role, units, load, loss estimate and last keepalive', tags: ['read'], response: { 200: MembersSchema, ...errors() } } },
    async () => {
      const st = node.status();
      return { master: st.master, members: st.members.map((m) => ({ ...m })) };
    },
  );

  app.get(
    '/v1/members/:member',
    { schema: { summary: 'One member', tags: ['read'], params: MemberParamsSchema, response: { 200: MemberSchema, ...errors('GW_NOT_FOUND') } } },
    async (req) => {
      const { member } = req.params;
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
        params: UnitParamsSchema,
        response: { 200: UnitOwnerSchema, ...errors() },
      },
    },
    async (req) => {
      const unit = Number(req.params.unit);
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
        querystring: SessionsQuerySchema,
        response: {
          200: SessionsPageSchema,
          ...errors(),
        },
      },
    },
    async (req) => {
      const q = req.query;
      const filter = {
        ...(q.address !== undefined ? { address: q.address } : {}),
        ...(q.port !== undefined ? { port: q.port } : {}),
        ...(q.unit !== undefined ? { unit: Number(q.unit) } : {}),
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
    '/v1/tunnels',
    {
      schema: {
        summary: "WireGuard tunnels as this member sees them: per peer its endpoint, owner, latest handshake, bytes and packets each way (this member's counters), and drops by reason",
        tags: ['read'],
        response: { 200: TunnelsSchema, ...errors() },
      },
    },
    async () => {
      const v = providers.tunnels?.view() ?? NO_TUNNELS;
      return { member: node.self, ...v, peers: v.peers.map((p) => ({ ...p, allowedIps: [...p.allowedIps] })), drops: { handshake: { ...v.drops.handshake }, transport: { ...v.drops.transport } } };
    },
  );

  app.get(
    '/v1/counters',
    { schema: { summary: "This member's counters (protocol, authentication, UDP, driver)", tags: ['read'], response: { 200: MemberCountersSchema, ...errors() } } },
    async () => ({ member: node.self, counters: countersOf(node) }),
  );

  app.get(
    '/v1/events',
    {
      schema: {
        summary: "This member's recent cluster events, oldest first",
        tags: ['read'],
        querystring: EventsQuerySchema,
        response: { 200: EventsSchema, ...errors() },
      },
    },
    async (req) => {
      const { limit, after } = req.query;
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
        querystring: StreamQuerySchema,
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errors() },
      },
    },
    async (req, reply) => streamEvents(node, req, reply, req.query.once === true, opts.streamPeriodMs ?? 500),
  );

  app.get('/v1/config', { schema: { summary: 'The cluster configuration this member runs', tags: ['read'], response: { 200: ConfigSchema, ...errors() } } }, async () => configView(node, channel));

  app.patch(
    '/v1/config',
    {
      schema: {
        summary: 'Change the cluster configuration: validated, versioned, propagated to every member (forwarded to the master)',
        tags: ['action'],
        body: ConfigChangeSchema,
        response: { 200: ConfigChangedSchema, ...errors('GW_CONFIG_CONFLICT', 'GW_CONFIG_INVALID', 'GW_NO_MASTER', 'GW_FORWARD_TIMEOUT') },
      },
    },
    async (req) => {
      const body = req.body;
      const out = await channel.act('config', '', { changes: body.changes, ...(body.baseVersion !== undefined ? { baseVersion: body.baseVersion } : {}) });
      return { version: out.result.version as number, settings: out.result.settings as ClusterSettingsView, doneBy: out.doneBy, forwarded: out.forwarded };
    },
  );

  const memberAction = (action: OperatorAction, summary: string) =>
    app.post(
      `/v1/members/:member/${action}`,
      {
        schema: {
          summary,
          tags: ['action'],
          params: MemberParamsSchema,
          response: { 202: ActionSchema, ...errors('GW_NOT_FOUND', 'GW_REFUSED', 'GW_NO_MASTER', 'GW_FORWARD_TIMEOUT') },
        },
      },
      async (req, reply) => {
        const member = req.params.member as MemberId;
        const out = await channel.act(action, member);
        return reply.status(202).send({ action, member, doneBy: out.doneBy, forwarded: out.forwarded, detail: out.detail, result: out.result });
      },
    );
  memberAction('drain', 'Drain a member: move every unit it owns to the others (forwarded to the master); poll GET /v1/members/:member for progress');
  memberAction('undrain', 'Let a drained member take units again (forwarded to the master)');
  memberAction('failback', "Give a member its share of the address pool back now, those it held before first (forwarded to the master); result.addresses: the member's pool addresses after it");
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
    level: node.logLevel as ApiLogLevel,
  }));
  app.put(
    '/v1/log-level',
    { schema: { summary: "Change this member's log level at run time (until restart)", tags: ['observability'], body: LogLevelSchema, response: { 200: LogLevelSchema, ...errors() } } },
    async (req) => {
      const { level } = req.body;
      const before = node.logLevel;
      node.logLevel = level;
      node.note('info', 'operator', `log level ${before} -> ${level}`, { before, level });
      return { level };
    },
  );

  app.get(
    '/v1/logs',
    {
      schema: {
        summary: "This member's recent log lines, oldest first (a bounded in-memory ring; the journal keeps the full log); admin token only",
        tags: ['observability'],
        querystring: LogsQuerySchema,
        response: { 200: LogsSchema, ...errors() },
      },
    },
    async (req) => ({ member: node.self, lines: opts.logs?.recent(req.query.limit) ?? [], dropped: opts.logs?.dropped ?? 0 }),
  );

  app.get(
    '/v1/member-config',
    { schema: { summary: "This member's configuration as loaded, with admin.token and admin.metricsToken redacted; admin token only", tags: ['observability'], response: { 200: MemberConfigViewSchema, ...errors() } } },
    async () => ({ member: node.self, config: opts.memberConfig?.() ?? {} }),
  );

  let capturing = false;
  app.get(
    '/v1/capture',
    {
      schema: {
        summary:
          'The packets of one work unit on this member, as a pcap stream (application/vnd.tcpdump.pcap); ends after `count` packets or `seconds`, whichever comes first; one capture at a time; admin token only',
        tags: ['observability'],
        querystring: CaptureQuerySchema,
        response: { 200: Type.String({ description: 'pcap file (link type Ethernet)' }), ...errors('GW_REFUSED') },
      },
    },
    async (req, reply) => {
      const source = providers.capture;
      if (!source) throw new ApiError('GW_REFUSED', `${node.self} has no packet capture: it runs without a data plane (dataplane section), or its addon was built without libpcap`);
      const q = req.query;
      if (q.interface !== undefined && !source.interfaces().includes(q.interface)) {
        throw new ApiError('GW_BAD_REQUEST', `interface ${q.interface} is not one of ${node.self}'s interfaces (${source.interfaces().join(', ')})`);
      }
      if (capturing) throw new ApiError('GW_REFUSED', `${node.self} is already running a capture (one at a time); retry when it ends`);
      capturing = true;
      let count = 0;
      let done = false;
      let handle: { stop(): void } | undefined;
      let timer: NodeJS.Timeout | undefined;
      const res = reply.raw;
      const finish = () => {
        if (done) return;
        done = true;
        capturing = false;
        if (timer) clearTimeout(timer);
        try {
          handle?.stop();
        } catch {
          // already closed
        }
        res.end();
      };
      try {
        handle = source.start({
          unit: q.unit,
          ...(q.interface !== undefined ? { interface: q.interface } : {}),
          onFrame: (frame, atMs) => {
            if (done) return false;
            // A client that reads slower than the unit's traffic loses frames rather than the member memory.
            if (res.writableLength > CAPTURE_BUFFER_BYTES) return false;
            res.write(pcapRecord(frame, atMs));
            if (++count >= q.count) {
              setImmediate(finish);
              return false;
            }
            return true;
          },
          onError: (err) => {
            req.log.warn({ err: err.message }, 'capture failed while running');
            finish();
          },
        });
      } catch (e) {
        capturing = false;
        throw new ApiError('GW_REFUSED', `cannot capture on ${q.interface ?? source.interfaces()[0]}: ${(e as Error).message}`);
      }
      node.note('info', 'operator', `capture of unit ${q.unit} (at most ${q.count} packets, ${q.seconds} s)`, { unit: q.unit, count: q.count, seconds: q.seconds });
      reply.hijack();
      res.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap', 'cache-control': 'no-store', 'content-disposition': `attachment; filename="unit-${q.unit}-${node.self}.pcap"` });
      res.write(pcapGlobalHeader());
      timer = setTimeout(finish, q.seconds * 1000);
      // The connection may stay silent for the whole capture (a unit without traffic): longer than the
      // admin API's idle limit allows other requests.
      // (Injected by the admin API's front: no socket here, the front lifts its own limit for streams.)
      (req.raw.socket as { setTimeout?: (ms: number) => void }).setTimeout?.((q.seconds + 5) * 1000);
      req.raw.on('close', finish);
      res.on('close', finish);
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

  registerDashboard(app as unknown as FastifyInstance);
};

function configView(node: MemberNode, channel: OperatorChannel): ConfigView {
  const c = channel.configuration;
  const cl = node.config.cluster;
  const fixed = Object.fromEntries(CLUSTER_FIXED_FIELDS.map((f) => [f, cl[f]])) as { name: string; clusterIp: string; port: number; maxClockSkewMs: number };
  return { version: c.version, settings: c.settings as ClusterSettingsView, fixed, liveFields: [...CLUSTER_LIVE_FIELDS], history: channel.history.map((h) => ({ ...h })) };
}

async function streamEvents(node: MemberNode, req: FastifyRequest, reply: FastifyReply, once: boolean, periodMs: number): Promise<void> {
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
