/**
 * The admin API as a fastify plugin (testable with inject(); no port here). server.ts opens the port.
 * Every route declares its response schema, which also keeps undeclared fields from leaking out.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { Type, type Static, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { MemberNode } from './member-node.js';

export const MemberSchema = Type.Object({
  id: Type.String({ description: 'member IP' }),
  role: Type.Union([Type.Literal('master'), Type.Literal('member')]),
  units: Type.Integer({ description: 'work units it owns' }),
  load: Type.Number({ description: 'reported load (units weighted by traffic; docs/architecture.md)' }),
  loss: Type.Number({ description: 'keepalive loss estimate P (master view)' }),
  watchdogPeriods: Type.Integer({ description: 'adaptive multiple n: declared dead after n missed keepalives' }),
  lastHeardMsAgo: Type.Union([Type.Number(), Type.Null()]),
  draining: Type.Boolean(),
});

export const ClusterSchema = Type.Object({
  self: Type.String(),
  role: Type.String({ description: 'joining | offering | member | master | waiting-config | rejected | left | stopped' }),
  master: Type.Union([Type.String(), Type.Null()]),
  epoch: Type.Integer(),
  configVersion: Type.Integer(),
  keepalivePeriodMs: Type.Integer(),
  tableVersion: Type.Integer(),
  members: Type.Array(MemberSchema),
  units: Type.Object({ assigned: Type.Integer(), unassigned: Type.Integer(), moving: Type.Integer(), ownedHere: Type.Integer() }),
  counters: Type.Record(Type.String(), Type.Number()),
});
export type ClusterView = Static<typeof ClusterSchema>;

export const UnitsSchema = Type.Object({
  tableVersion: Type.Integer(),
  owners: Type.Array(Type.Union([Type.String(), Type.Null()]), { minItems: 1024, maxItems: 1024, description: 'owners[unit]: member IP or null' }),
});

export const EventsSchema = Type.Object({
  events: Type.Array(
    Type.Object({
      id: Type.Integer(),
      at: Type.String(),
      epoch: Type.Integer(),
      kind: Type.String(),
      message: Type.String(),
    }),
  ),
});

export const ErrorSchema = Type.Object({ code: Type.String(), message: Type.String() });

export interface AdminAppOptions {
  readonly node: MemberNode;
}

export function clusterView(node: MemberNode): ClusterView {
  const st = node.status();
  let assigned = 0;
  for (const o of st.owners) if (o !== null) assigned++;
  const counters: Record<string, number> = {};
  for (const [k, v] of Object.entries(st.counters)) counters[`core.${k}`] = v;
  for (const [k, v] of Object.entries(st.security)) counters[`auth.${k}`] = v;
  for (const [k, v] of Object.entries(st.transport)) counters[`udp.${k}`] = v;
  for (const [k, v] of Object.entries(st.node)) counters[`node.${k}`] = v;
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
    counters,
  };
}

export const adminApp: FastifyPluginAsync<AdminAppOptions> = async (fastifyBase, opts) => {
  const app = fastifyBase.withTypeProvider<TypeBoxTypeProvider>() as unknown as FastifyInstance & ReturnType<FastifyInstance['withTypeProvider']>;
  const { node } = opts;

  app.get('/healthz', { schema: { response: { 200: Type.Object({ ok: Type.Boolean(), role: Type.String() }) } } }, async () => ({ ok: true, role: node.core.role }));

  app.get('/v1/cluster', { schema: { description: 'The cluster as this member sees it.', response: { 200: ClusterSchema } } }, async () => clusterView(node));

  app.get('/v1/units', { schema: { description: 'The 1024-unit work table.', response: { 200: UnitsSchema } } }, async () => {
    const st = node.status();
    return { tableVersion: st.tableVersion, owners: [...st.owners] };
  });

  app.get(
    '/v1/events',
    {
      schema: {
        description: 'Recent cluster events, oldest first.',
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })) }),
        response: { 200: EventsSchema, 400: ErrorSchema },
      },
    },
    async (req) => {
      const { limit } = req.query as { limit?: number };
      return { events: node.recentEvents(limit ?? 100).map((e) => ({ id: e.id, at: e.at, epoch: e.epoch, kind: e.kind, message: e.message })) };
    },
  );
};
