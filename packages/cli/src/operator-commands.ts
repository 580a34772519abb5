/**
 * gwctl's read and action subcommands over the admin API. Human output is aligned tables; --json prints
 * the API's answer. Long actions (drain, rebalance, config set) show progress on stderr until done, or
 * return at once with --no-wait.
 */
import { Command, Option } from 'commander';
import { call, EXIT, GwctlError, type ClientOptions } from './client.js';
import { table, unitRanges } from './format.js';
import { FollowingClient } from './following-client.js';
import {
  ActionSchema,
  ClusterSchema,
  ConfigChangedSchema,
  ConfigSchema,
  EventsSchema,
  LogLevelSchema,
  MemberCountersSchema,
  MemberSchema,
  SessionsPageSchema,
  TunnelsSchema,
  UnitOwnerSchema,
  UnitsSchema,
  type ActionView,
  type ClusterView,
  type ConfigChangedView,
  type ConfigView,
  type EventsView,
  type LogLevelView,
  type MemberCountersView,
  type MemberView,
  type SessionsPageView,
  type TunnelsApiView,
  type UnitOwnerView,
  type UnitsView,
} from '@gwcluster/contracts';

export interface CommandContext {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly client: (cmd: Command) => ClientOptions;
  readonly ipv4: (flag: string) => (value: string) => string;
  readonly integer: (flag: string, min: number, max: number) => (value: string) => number;
}

type MemberRow = MemberView;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

export function memberTable(members: readonly MemberRow[], keepalivePeriodMs: number): string {
  return table(
    ['MEMBER', 'ROLE', 'VERSION', 'UNITS', 'LOAD', 'LOSS', 'WATCHDOG', 'LAST KEEPALIVE'],
    members.map((m) => [
      m.id,
      m.role + (m.draining ? ' (draining)' : ''),
      m.version ?? 'unknown',
      String(m.units),
      m.load.toFixed(1),
      m.loss.toFixed(4),
      `${m.watchdogPeriods} x ${keepalivePeriodMs} ms`,
      m.lastHeardMsAgo === null ? '-' : `${Math.round(m.lastHeardMsAgo)} ms ago`,
    ]),
  );
}

/**
 * A drain as seen through the member asked: its row and the cluster, or the cluster changing master.
 * Throws when the member is in the cluster but no longer draining (the drain was lost or undone).
 */
type DrainState = { kind: 'state'; m: MemberRow; c: ClusterView & { master: string } } | { kind: 'changing'; why: string };

async function drainState(follow: FollowingClient, member: string, progress: { seenDraining: boolean }): Promise<DrainState> {
  try {
    const c = await follow.call<ClusterView>('GET', '/v1/cluster', ClusterSchema);
    follow.knowMembers(c.members.map((m) => m.id));
    if (c.master === null) return { kind: 'changing', why: `no master known to ${c.self} (role ${c.role})` };
    const m = c.members.find((x) => x.id === member);
    if (!m) return { kind: 'changing', why: `${member} is not in the cluster of master ${c.master} yet` };
    // The member asked reports the drain once the master's next keepalive carried it (within one
    // keepalive period of the action's answer): before that, not draining means "not yet", after it
    // means the drain was lost or undone.
    if (!m.draining && !progress.seenDraining) return { kind: 'changing', why: `the drain has not reached ${c.self} yet` };
    if (m.draining) progress.seenDraining = true;
    if (!m.draining) {
      throw new GwctlError(EXIT.failure, `the drain of ${member} is no longer in force (master ${c.master}, asked through ${follow.endpoint}): the master changed or someone undrained it; run gwctl drain ${member} again`);
    }
    return { kind: 'state', m, c: { ...c, master: c.master } };
  } catch (e) {
    // While a new master takes office, members answer 503 GW_NO_MASTER.
    if (e instanceof GwctlError && e.exitCode === EXIT.refused && /GW_NO_MASTER/.test(e.message)) return { kind: 'changing', why: e.message };
    throw e;
  }
}

/** Polls until `done(state)` or the deadline; prints `line(state)` on stderr whenever it changes. */
async function waitUntil<T>(ctx: CommandContext, what: string, poll: () => Promise<T>, done: (s: T) => boolean, line: (s: T) => string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const s = await poll();
    const l = line(s);
    if (l !== last) {
      ctx.err(`${l}\n`);
      last = l;
    }
    if (done(s)) return s;
    if (Date.now() > deadline) throw new GwctlError(EXIT.failure, `${what} not finished after ${Math.round(timeoutMs / 1000)} s (${l}); it may still finish: check with gwctl status`);
    await sleep(200);
  }
}

export function addOperatorCommands(program: Command, ctx: CommandContext): void {
  const { out } = ctx;
  const waitOption = () => new Option('--wait-timeout <seconds>', 'give up waiting after this many seconds').default(120).argParser(ctx.integer('--wait-timeout', 1, 3600));

  program
    .command('cluster')
    .description('Show the cluster: master, epoch, configuration version, keepalive interval, unit counts.')
    .option('--json', 'print GET /v1/cluster as JSON')
    .addHelpText('after', examples('gwctl cluster', 'gwctl cluster --json | jq .master'))
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const c = await call<ClusterView>(ctx.client(cmd), 'GET', '/v1/cluster', ClusterSchema);
      if (o.json) return out(`${JSON.stringify(c)}\n`);
      out(
        `${table(
          ['FIELD', 'VALUE'],
          [
            ['answered by', `${c.self} (${c.role})`],
            ['master', c.master ?? '(none)'],
            ['epoch', String(c.epoch)],
            ['configuration', `v${c.configVersion}`],
            ['keepalive', `${c.keepalivePeriodMs} ms`],
            ['members', String(c.members.length)],
            ['units', `${c.units.assigned} assigned, ${c.units.unassigned} unassigned, ${c.units.moving} moving (table v${c.tableVersion})`],
          ],
        )}\n`,
      );
    });

  program
    .command('members')
    .description('List the members with role, software version, units, load, keepalive loss estimate and last keepalive.')
    .argument('[member]', 'show only this member (IPv4)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl members', 'gwctl members 192.0.2.12 --json'))
    .action(async (member: string | undefined, o: { json?: boolean }, cmd: Command) => {
      if (member !== undefined) ctx.ipv4('member')(member);
      const opts = ctx.client(cmd);
      const c = await call<ClusterView>(opts, 'GET', '/v1/cluster', ClusterSchema);
      let members: readonly MemberRow[] = c.members;
      if (member !== undefined) {
        const m = await call<MemberRow>(opts, 'GET', `/v1/members/${member}`, MemberSchema);
        members = [m];
      }
      out(o.json ? `${JSON.stringify(member !== undefined ? members[0] : { master: c.master, members })}\n` : `${memberTable(members, c.keepalivePeriodMs)}\n`);
    });

  program
    .command('units')
    .description('Show the 1024-unit work table: ranges per owner, one unit, or a 32 x 32 map.')
    .addOption(new Option('--unit <n>', 'show the owner of one unit').argParser(ctx.integer('--unit', 0, 1023)))
    .option('--map', 'print the table as a 32 x 32 map (one letter per owner, . unassigned)')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl units', 'gwctl units --unit 513', 'gwctl units --map'))
    .action(async (o: { unit?: number; map?: boolean; json?: boolean }, cmd: Command) => {
      const opts = ctx.client(cmd);
      if (o.unit !== undefined) {
        const u = await call<UnitOwnerView>(opts, 'GET', `/v1/units/${o.unit}`, UnitOwnerSchema);
        return out(o.json ? `${JSON.stringify(u)}\n` : `unit ${u.unit}: ${u.owner ?? '(unassigned)'}\n`);
      }
      const units = await call<UnitsView>(opts, 'GET', '/v1/units', UnitsSchema);
      if (o.json) return out(`${JSON.stringify(units)}\n`);
      const owners = [...new Set(units.owners.filter((x): x is string => x !== null))].sort();
      if (o.map) {
        const letter = new Map(owners.map((m, i) => [m, String.fromCharCode(65 + (i % 26))]));
        const rows: string[] = [];
        for (let r = 0; r < 32; r++) rows.push(units.owners.slice(r * 32, r * 32 + 32).map((x) => (x === null ? '.' : letter.get(x))).join(''));
        return out(`${rows.join('\n')}\n\n${owners.map((m) => `${letter.get(m)} ${m}`).join('\n')}\n`);
      }
      const byOwner = new Map<string, number[]>();
      units.owners.forEach((x, u) => byOwner.set(x ?? '(unassigned)', [...(byOwner.get(x ?? '(unassigned)') ?? []), u]));
      out(`${table(['OWNER', 'COUNT', 'UNITS'], [...byOwner].map(([m, us]) => [m, String(us.length), unitRanges(us)]))}\n`);
    });

  program
    .command('sessions')
    .description('List the sessions this member holds (its own and every other member\'s replicas), paged and filtered.')
    .addOption(new Option('--address <ip>', 'source or destination address').argParser(ctx.ipv4('--address')))
    .addOption(new Option('--port <n>', 'source or destination port').argParser(ctx.integer('--port', 0, 65535)))
    .addOption(new Option('--unit <n>', 'work unit').argParser(ctx.integer('--unit', 0, 1023)))
    .addOption(new Option('--member <ip>', 'member that serves it').argParser(ctx.ipv4('--member')))
    .addOption(new Option('--limit <n>', 'sessions per page').default(100).argParser(ctx.integer('--limit', 1, 1000)))
    .addOption(new Option('--offset <n>', 'first session').default(0).argParser(ctx.integer('--offset', 0, 2 ** 31)))
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl sessions --address 192.0.2.50', 'gwctl sessions --unit 17 --limit 20 --offset 40'))
    .action(async (o: { address?: string; port?: number; unit?: number; member?: string; limit: number; offset: number; json?: boolean }, cmd: Command) => {
      const q = new URLSearchParams();
      for (const k of ['address', 'port', 'unit', 'member', 'limit', 'offset'] as const) if (o[k] !== undefined) q.set(k, String(o[k]));
      const page = await call<SessionsPageView>(ctx.client(cmd), 'GET', `/v1/sessions?${q}`, SessionsPageSchema);
      if (o.json) return out(`${JSON.stringify(page)}\n`);
      out(
        `${table(
          ['PROTO', 'SOURCE', 'DESTINATION', 'UNIT', 'MEMBER', 'PACKETS', 'BYTES'],
          page.sessions.map((s) => [String(s.protocol), `${s.srcAddress}:${s.srcPort}`, `${s.dstAddress}:${s.dstPort}`, String(s.unit), String(s.member), String(s.packets), String(s.bytes)]),
        )}\n${page.sessions.length} of ${page.total} session(s)${page.next !== null ? `; next page: --offset ${page.next}` : ''}\n`,
      );
    });

  const peers = program.command('peers').description('WireGuard peers of the cluster (tunnels.wireguard; docs/tunnels.md).');
  peers
    .command('list')
    .description("List the WireGuard peers with their endpoint, owner member, latest handshake, and the answering member's bytes and packets each way (ask the owner for its counters).")
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl peers list', 'gwctl -e http://192.0.2.12:7401 peers list --json'))
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await call<TunnelsApiView>(ctx.client(cmd), 'GET', '/v1/tunnels', TunnelsSchema);
      if (o.json) return out(`${JSON.stringify(r)}\n`);
      if (!r.enabled && r.publicKey === null) return out(`no WireGuard endpoint on ${r.member} (tunnels.wireguard is not configured)\n`);
      const ago = (iso: string | null) => (iso === null ? '-' : `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))} s ago`);
      const drops = [...Object.entries(r.drops.handshake), ...Object.entries(r.drops.transport)].map(([k, v]) => `${k} ${v}`).join(', ');
      out(
        `${table(
          ['PEER', 'NAME', 'ALLOWED IPS', 'ENDPOINT', 'OWNER', 'HANDSHAKE', 'RX BYTES', 'RX PKTS', 'TX BYTES', 'TX PKTS'],
          r.peers.map((p) => [p.publicKey, p.name ?? '-', p.allowedIps.join(','), p.endpoint ?? '-', p.owner ?? '-', ago(p.latestHandshake), String(p.rxBytes), String(p.rxPackets), String(p.txBytes), String(p.txPackets)]),
        )}\n${r.peers.length} peer(s); public key ${r.publicKey ?? '-'}; ${r.running ? `listening on ${r.listenAddress}:${r.listenPort} (${r.interface})` : 'not running'}; counters of ${r.member}${drops ? `; drops: ${drops}` : ''}\n`,
      );
    });

  program
    .command('counters')
    .description("Show the answering member's counters (protocol messages, authentication drops, UDP).")
    .option('--match <prefix>', 'only counters whose name starts with this, e.g. node.drop.')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl counters --match node.drop.', 'gwctl counters --json'))
    .action(async (o: { match?: string; json?: boolean }, cmd: Command) => {
      const r = await call<MemberCountersView>(ctx.client(cmd), 'GET', '/v1/counters', MemberCountersSchema);
      const rows = Object.entries(r.counters)
        .filter(([k]) => !o.match || k.startsWith(o.match))
        .sort(([a], [b]) => a.localeCompare(b));
      out(o.json ? `${JSON.stringify({ member: r.member, counters: Object.fromEntries(rows) })}\n` : `${table(['COUNTER', 'VALUE'], rows.map(([k, v]) => [k, String(v)]))}\n`);
    });

  program
    .command('events')
    .description("Show the answering member's recent cluster events (ids match correlationId in its log).")
    .addOption(new Option('--limit <n>', 'how many').default(50).argParser(ctx.integer('--limit', 1, 500)))
    .option('-f, --follow', 'keep printing new events until interrupted')
    .option('--json', 'print JSON lines')
    .addHelpText('after', examples('gwctl events --limit 20', 'gwctl events --follow'))
    .action(async (o: { limit: number; follow?: boolean; json?: boolean }, cmd: Command) => {
      const opts = ctx.client(cmd);
      let after = -1;
      for (;;) {
        const r = await call<EventsView>(opts, 'GET', `/v1/events?limit=${o.limit}${after >= 0 ? `&after=${after}` : ''}`, EventsSchema);
        for (const e of r.events) out(o.json ? `${JSON.stringify(e)}\n` : `${e.at}  #${e.id}  epoch ${e.epoch}  ${e.kind.padEnd(10)}  ${e.message}\n`);
        if (r.events.length > 0) after = r.events.at(-1)!.id;
        else if (after < 0) after = 0;
        if (!o.follow) return;
        await sleep(500);
      }
    });

  const memberAction = (name: 'drain' | 'undrain' | 'leave' | 'join' | 'failback', description: string, help: string) =>
    program
      .command(name)
      .description(description)
      .argument('<member>', 'member IPv4 address')
      .option('--no-wait', name === 'drain' ? 'return as soon as the master accepted the drain' : 'return at once')
      .addOption(waitOption())
      .option('--json', 'print the API answer as JSON')
      .addHelpText('after', help)
      .action(async (member: string, o: { wait: boolean; waitTimeout: number; json?: boolean }, cmd: Command) => {
        ctx.ipv4('member')(member);
        const opts = ctx.client(cmd);
        const follow = new FollowingClient(opts, (line) => ctx.err(`${line}\n`));
        const r = await call<ActionView>(opts, 'POST', `/v1/members/${member}/${name}`, ActionSchema);
        if (!o.json) ctx.err(`${r.detail} (done by ${r.doneBy}${r.forwarded ? ', forwarded' : ''})\n`);
        if (o.wait) {
          follow.knowMembers((await follow.call<ClusterView>('GET', '/v1/cluster', ClusterSchema)).members.map((m) => m.id));
          if (name === 'drain') {
            const progress = { seenDraining: false };
            await waitUntil(
              ctx,
              `drain of ${member}`,
              () => drainState(follow, member, progress),
              (s) => s.kind === 'state' && s.m.units === 0 && s.c.units.moving === 0,
              (s) => (s.kind === 'changing' ? `waiting for the cluster (${s.why})` : `draining ${member}: ${s.m.units} unit(s) left, ${s.c.units.moving} moving (master ${s.c.master})`),
              o.waitTimeout * 1000,
            );
          } else if (name === 'leave') {
            await waitUntil(
              ctx,
              `leave of ${member}`,
              () => follow.call<ClusterView>('GET', '/v1/cluster', ClusterSchema),
              (c) => (c.self === member ? c.role === 'left' : !c.members.some((m) => m.id === member)),
              (c) => (c.self === member ? `${member} is ${c.role}` : c.members.some((m) => m.id === member) ? `${member} still listed as a member` : `${member} is out of the cluster`),
              o.waitTimeout * 1000,
            );
          } else if (name === 'join') {
            await waitUntil(
              ctx,
              `join of ${member}`,
              () => follow.call<ClusterView>('GET', '/v1/cluster', ClusterSchema),
              (c) => (c.self === member ? c.role === 'member' || c.role === 'master' : c.members.some((m) => m.id === member)),
              (c) => (c.self === member ? `${member} is ${c.role}` : c.members.some((m) => m.id === member) ? `${member} is a member` : `waiting for ${member} to join`),
              o.waitTimeout * 1000,
            );
          }
        }
        out(o.json ? `${JSON.stringify(r)}\n` : `${name} ${member}: done\n`);
      });
  memberAction('drain', 'Move every unit away from a member (it stays a member, owning nothing); waits until it owns none.', examples('gwctl drain 192.0.2.12', 'gwctl drain 192.0.2.12 --no-wait'));
  memberAction('undrain', 'Let a drained member take units again (the next rebalance gives it its share).', examples('gwctl undrain 192.0.2.12 && gwctl rebalance'));
  memberAction(
    'failback',
    "Give a member its share of the address pool back now, the addresses it held before it died or was drained first (for cluster.addressPoolFailback on-command; connections that began elsewhere stay where they are until they end).",
    examples('gwctl failback 192.0.2.12'),
  );
  memberAction('leave', 'Make a member leave the cluster; its gwclusterd keeps running out of the cluster until join.', examples('gwctl leave 192.0.2.13'));
  memberAction('join', 'Make a member that left join the cluster again.', examples('gwctl join 192.0.2.13'));

  program
    .command('rebalance')
    .description('Run a rebalance round now instead of at the next period; waits until no unit is moving.')
    .option('--no-wait', 'return as soon as the master started the round')
    .addOption(waitOption())
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl rebalance', 'gwctl rebalance --no-wait'))
    .action(async (o: { wait: boolean; waitTimeout: number; json?: boolean }, cmd: Command) => {
      const opts = ctx.client(cmd);
      const r = await call<ActionView>(opts, 'POST', '/v1/rebalance', ActionSchema);
      if (!o.json) ctx.err(`${r.detail} by ${r.doneBy}\n`);
      let final: ClusterView | undefined;
      if (o.wait) {
        await sleep(100);
        final = await waitUntil(
          ctx,
          'rebalance',
          () => call<ClusterView>(opts, 'GET', '/v1/cluster', ClusterSchema),
          (c) => c.units.moving === 0,
          (c) => `rebalancing: ${c.units.moving} unit(s) moving; ${c.members.map((m) => `${m.id} ${m.units}`).join(', ')}`,
          o.waitTimeout * 1000,
        );
      }
      if (o.json) return out(`${JSON.stringify({ ...r, ...(final ? { members: final.members } : {}) })}\n`);
      out(final ? `${memberTable(final.members, final.keepalivePeriodMs)}\n` : 'rebalance started\n');
    });

  const config = program.command('config').description('Read or change the cluster configuration (validated, versioned, propagated to every member).');
  config
    .command('get')
    .description('Show the cluster configuration version, its live settings and the fixed cluster fields.')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl config get'))
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const c = await call<ConfigView>(ctx.client(cmd), 'GET', '/v1/config', ConfigSchema);
      if (o.json) return out(`${JSON.stringify(c)}\n`);
      out(
        `configuration version ${c.version}\n\n${table(
          ['FIELD', 'VALUE', 'KIND'],
          [...Object.entries(c.settings).map(([k, v]) => [k, String(v), 'live (gwctl config set)']), ...Object.entries(c.fixed).map(([k, v]) => [k, String(v), 'fixed (personality)'])],
        )}\n`,
      );
    });
  config
    .command('set')
    .description('Change live cluster settings: the master makes the next version and every member adopts it.')
    .argument('<field=value...>', 'e.g. keepalivePeriodMs=200 rebalanceIntervalMs=5000; a list or switch as JSON: addressPool=\'[{"address":"192.0.2.101","interface":"eth0"}]\' memberAddressTakeover=true addressPoolFailback=on-command')
    .addOption(new Option('--base-version <n>', 'refuse unless the cluster runs this version (safe concurrent edits)').argParser(ctx.integer('--base-version', 1, Number.MAX_SAFE_INTEGER)))
    .option('--no-wait', 'return once the master accepted the change')
    .addOption(waitOption())
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl config set keepalivePeriodMs=200', 'gwctl config set rebalanceIntervalMs=5000 maxMovesPerRebalance=64 --base-version 3', 'gwctl config set addressPool=\'[{"address":"192.0.2.101","interface":"eth0"},{"address":"192.0.2.102","interface":"eth0"}]\''))
    .action(async (pairs: string[], o: { baseVersion?: number; wait: boolean; waitTimeout: number; json?: boolean }, cmd: Command) => {
      const changes: Record<string, unknown> = {};
      for (const p of pairs) {
        const m = /^([A-Za-z][A-Za-z0-9]*)=(.+)$/s.exec(p);
        if (!m) throw new GwctlError(EXIT.badArguments, `field=value "${p}" must be NAME=VALUE, e.g. keepalivePeriodMs=200`);
        // A number, true/false, a JSON list/object (addressPool), or a word (addressPoolFailback=on-command);
        // the cluster validates the value.
        try {
          changes[m[1]!] = JSON.parse(m[2]!);
        } catch {
          if (!/^[a-z][a-z-]*$/.test(m[2]!)) throw new GwctlError(EXIT.badArguments, `field=value "${p}": the value must be a number, true/false, a word or JSON, e.g. keepalivePeriodMs=200`);
          changes[m[1]!] = m[2]!;
        }
      }
      const opts = ctx.client(cmd);
      const before = await call<ClusterView>(opts, 'GET', '/v1/cluster', ClusterSchema);
      const r = await call<ConfigChangedView>(opts, 'PATCH', '/v1/config', ConfigChangedSchema, { changes, ...(o.baseVersion !== undefined ? { baseVersion: o.baseVersion } : {}) });
      if (!o.json) ctx.err(`configuration version ${r.version} made by ${r.doneBy}\n`);
      if (o.wait) {
        const expected = before.members.length;
        await waitUntil(
          ctx,
          `adoption of configuration version ${r.version}`,
          () => call<ClusterView>(opts, 'GET', '/v1/cluster', ClusterSchema),
          (c) => c.configVersion === r.version && (c.role === 'master' || c.role === 'member') && c.members.length >= expected,
          (c) => `member ${c.self} runs v${c.configVersion} (${c.role}); ${c.members.length}/${expected} members in the cluster`,
          o.waitTimeout * 1000,
        );
      }
      out(o.json ? `${JSON.stringify(r)}\n` : `configuration version ${r.version}: ${Object.entries(changes).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
    });

  program
    .command('log-level')
    .description("Show or change the answering member's log level at run time (until it restarts).")
    .argument('[level]', 'trace | debug | info | warn | error | fatal | silent')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('gwctl log-level', 'gwctl log-level debug -e http://192.0.2.12:7401'))
    .action(async (level: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
      if (level !== undefined && !levels.includes(level)) throw new GwctlError(EXIT.badArguments, `level "${level}" must be one of ${levels.join(', ')}`);
      const opts = ctx.client(cmd);
      const r = level === undefined ? await call<LogLevelView>(opts, 'GET', '/v1/log-level', LogLevelSchema) : await call<LogLevelView>(opts, 'PUT', '/v1/log-level', LogLevelSchema, { level });
      out(o.json ? `${JSON.stringify(r)}\n` : `${r.level}\n`);
    });
}
