/**
 * Golden scenario scripts, in the manner of etcd raft's testdata/*.txt (datadriven): a file is a list
 * of blocks separated by blank lines; each block is optional `#` comment lines, one command line,
 * a `----` line, and the expected output (no blank lines). runScript() runs every command through a
 * command table and returns the file with the actual outputs, so a test compares it with the file or,
 * with GWC_UPDATE_GOLDEN=1, writes it back (test/scenarios.test.ts; the daemon's test/sim for whole members).
 *
 * The command table is a plain map from command name to handler over a context; other planes extend it
 * by spreading CORE_COMMANDS into their own table with a context that extends CoreScenario. Test support:
 * exported from `@gwcluster/cluster-core/testing`, never used by a running member.
 */
import { UNIT_COUNT, type ClusterMessage, type MemberId } from '@gwcluster/wire';
import type { CoreConfig } from './config.js';
import type { CoreEffect, CoreInput } from './events.js';
import { SimNetwork, type SimNode, type SimOptions, type SimTraceEntry } from './sim.js';

/** Runs one command; returns its output lines (none: the block's output is empty). */
export type Command<C> = (ctx: C, args: readonly string[]) => string[];
export type CommandTable<C> = Readonly<Record<string, Command<C>>>;

interface Block {
  readonly comments: readonly string[];
  readonly command: string;
  readonly expected: string;
  readonly line: number;
}

export function parseScript(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    while (i < lines.length && lines[i]!.trim() === '') i++;
    if (i >= lines.length) break;
    const comments: string[] = [];
    while (i < lines.length && lines[i]!.startsWith('#')) comments.push(lines[i++]!);
    const line = i + 1;
    const command = lines[i++] ?? '';
    if (lines[i] !== '----') throw new Error(`line ${i + 1}: expected "----" after the command "${command}"`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') out.push(lines[i++]!);
    blocks.push({ comments, command, expected: out.join('\n'), line });
  }
  return blocks;
}

/** Runs every block; returns the script with the actual outputs in place of the expected ones. */
export function runScript<C>(text: string, commands: CommandTable<C>, ctx: C): string {
  const parts: string[] = [];
  for (const b of parseScript(text)) {
    const [name, ...args] = b.command.trim().split(/\s+/);
    const run = commands[name!];
    if (!run) throw new Error(`line ${b.line}: unknown command "${name}" (known: ${Object.keys(commands).sort().join(', ')})`);
    const output = run(ctx, args);
    parts.push([...b.comments, b.command, '----', ...output].join('\n'));
  }
  return parts.join('\n\n') + '\n';
}

/** Durations as `250ms`, `2s` or a bare number of ms. */
export function parseDuration(s: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(s ?? '');
  if (!m) throw new Error(`"${s}" is not a duration (e.g. 500ms, 2s)`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

/**
 * The protocol core on a simulated network: members m1..mN at 10.0.0.1..N, 1 ms one-way latency, no
 * jitter, no loss unless set, 10 ms ticks. Outputs name members, never addresses.
 */
export class CoreScenario {
  readonly sim: SimNetwork;
  private readonly names = new Map<MemberId, string>();
  private readonly ids = new Map<string, MemberId>();
  /** Effects already printed, by node. */
  private readonly printed = new Map<MemberId, number>();
  /** Core settings every member added from now on gets (the `assignment` command). */
  scenarioOverrides: Partial<CoreConfig> = {};

  /** `planes`: what each member runs beside its core (SimOptions.planes); the network's options are fixed. */
  constructor(planes?: SimOptions['planes']) {
    this.sim = new SimNetwork({ latencyMs: 1, jitterMs: 0, tickMs: 10, seed: 1, ...(planes ? { planes } : {}) });
  }

  /** Core settings of a member at add() and restart(); a scenario of whole members derives them from its configuration. */
  protected coreOverrides(_id: MemberId): Partial<CoreConfig> {
    return {};
  }

  id(name: string): MemberId {
    const id = this.ids.get(name);
    if (!id) throw new Error(`no member "${name}" (members: ${[...this.ids.keys()].join(' ') || 'none'})`);
    return id;
  }

  /** `all` or a list of member names. */
  members(args: readonly string[]): MemberId[] {
    return args.length === 1 && args[0] === 'all' ? [...this.ids.values()] : args.map((a) => this.id(a));
  }

  name(id: MemberId | '' | null): string {
    if (id === null || id === '') return '-';
    return this.names.get(id) ?? id;
  }

  /** Replaces every member address in free text by its name. */
  named(text: string): string {
    return text.replace(/\b10\.0\.0\.\d+\b/g, (ip) => this.names.get(ip) ?? ip);
  }

  add(count: number): string[] {
    const added: string[] = [];
    for (let k = 0; k < count; k++) {
      const n = this.ids.size + 1;
      const id = `10.0.0.${n}`;
      this.names.set(id, `m${n}`);
      this.ids.set(`m${n}`, id);
      this.sim.add(id, { ...this.scenarioOverrides, ...this.coreOverrides(id) });
      this.printed.set(id, 0);
      added.push(`m${n}`);
    }
    return added;
  }

  /** A fresh process on member `id` (coreOverrides() asked again). */
  restart(id: MemberId): void {
    this.sim.restart(id, this.coreOverrides(id));
  }

  /** The master among live members, for operator commands. */
  master(): SimNode {
    const masters = this.sim.masters();
    if (masters.length !== 1) throw new Error(`expected one master, found ${masters.length}`);
    return masters[0]!;
  }

  event(id: MemberId, event: CoreInput): void {
    this.sim.event(id, event);
  }

  /**
   * What happened since the last call, in order: messages (keepalives only counted), role changes,
   * cluster IP moves, warnings; then a count of keepalives by type.
   */
  happenings(): string[] {
    const entries: { seq: number; line: string }[] = [];
    const keepalives = new Map<string, number>();
    for (const node of this.sim.nodes.values()) {
      const from = this.printed.get(node.id) ?? 0;
      for (const t of node.trace.slice(from)) {
        const line = this.describe(node.id, t, keepalives);
        if (line !== null) entries.push({ seq: t.seq, line: `${formatTime(t.at)} ${line}` });
      }
      this.printed.set(node.id, node.trace.length);
    }
    const lines = entries.sort((a, b) => a.seq - b.seq).map((e) => e.line);
    if (keepalives.size > 0) lines.push(`keepalives: ${[...keepalives].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    return lines;
  }

  /** One trace entry as a line, or null to leave it out. Core scenarios print core effects only. */
  protected describe(id: MemberId, t: SimTraceEntry, keepalives: Map<string, number>): string | null {
    return t.plane === undefined ? this.describeCore(id, t.effect, keepalives) : null;
  }

  protected describeCore(id: MemberId, e: CoreEffect, keepalives: Map<string, number>): string | null {
    const who = this.name(id);
    switch (e.type) {
      case 'send': {
        const m = e.message;
        if (m.type === 'master-keepalive' || m.type === 'client-keepalive') {
          keepalives.set(m.type, (keepalives.get(m.type) ?? 0) + 1);
          return null;
        }
        return `${who} -> ${e.to === 'broadcast' ? '*' : this.name(e.to)} ${m.type} ${this.fields(m)}`.trimEnd();
      }
      case 'role':
        return `${who} is ${e.role} (master ${this.name(e.master)}, epoch ${e.epoch})`;
      case 'announce-cluster-ip':
      case 'release-cluster-ip':
        return `${who} ${e.type}`;
      case 'log':
        if (e.level !== 'warn' && e.level !== 'error') return null;
        return `${who} ${e.level}: ${this.named(e.msg)}${e.fields ? ` (${this.named(formatFields(e.fields))})` : ''}`;
      default:
        return null;
    }
  }

  /** A message's fields worth printing; other planes' scenarios add their messages. */
  protected fields(m: ClusterMessage): string {
    switch (m.type) {
      case 'join-request':
        return `nonce=${m.nonce} claims=${m.claimedUnits.length} config=${m.configVersion}`;
      case 'join-reply':
        return m.result === 'ok' ? `ok nonce=${m.nonce} epoch=${m.epoch} granted=${m.grantedUnits.length}` : `nak ${m.code} nonce=${m.nonce}`;
      case 'master-offer':
      case 'other-master-exists':
        return `epoch=${m.epoch} members=${m.memberCount}`;
      case 'work-assign':
        return `epoch=${m.epoch} request=${m.requestId} units=${m.units.length}`;
      case 'work-deassign':
        return `epoch=${m.epoch} request=${m.requestId} units=${m.units.length} to=${this.name(m.to)}`;
      case 'work-ack':
        return `epoch=${m.epoch} request=${m.requestId} units=${m.units.length}`;
      case 'exit-cluster':
        return `${m.reason} epoch=${m.epoch}`;
      default:
        return '';
    }
  }

  /** One line per member (live or dead), then the table as the master knows it. */
  status(): string[] {
    const now = this.sim.now;
    const lines: string[] = [];
    for (const node of this.sim.nodes.values()) {
      if (!node.alive) {
        lines.push(`${this.name(node.id)} dead`);
        continue;
      }
      const st = node.member.status(now);
      lines.push(`${this.name(node.id)} ${st.role} master=${this.name(st.master)} epoch=${st.epoch} owns=${st.ownedUnits.length}`);
    }
    const masters = this.sim.masters();
    if (masters.length !== 1) {
      lines.push(`table: ${masters.length} masters`);
      return lines;
    }
    const st = masters[0]!.member.status(now);
    const counts = new Map<string, number>();
    for (const o of st.owners) if (o !== null) counts.set(this.name(o), (counts.get(this.name(o)) ?? 0) + 1);
    const assigned = [...counts.values()].reduce((a, b) => a + b, 0);
    const byMember = st.members.map((m) => `${this.name(m.id)} ${counts.get(this.name(m.id)) ?? 0}${m.draining ? ' (draining)' : ''}`);
    lines.push(`table v${st.tableVersion} at ${this.name(masters[0]!.id)}: ${byMember.join(', ')}, unassigned ${UNIT_COUNT - assigned}, moving ${st.movingUnits}`);
    lines.push(`converged: ${this.sim.converged() ? 'yes' : 'no'}`);
    return lines;
  }
}

export function formatFields(fields: Readonly<Record<string, unknown>>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(' ');
}

export function formatTime(ms: number): string {
  return `${Number.isInteger(ms) ? ms : ms.toFixed(3)}ms`.padStart(7);
}

/** Commands on CoreScenario: each that lets time pass or steps members prints what happened. */
export const CORE_COMMANDS: CommandTable<CoreScenario> = {
  /** add-members N: members m(k+1)..m(k+N), not started. */
  'add-members': (ctx, [n]) => [`added ${ctx.add(Number(n ?? '1')).join(' ')}`],
  /** start m1 m2 | start all */
  start: (ctx, args) => {
    for (const id of ctx.members(args)) ctx.sim.start(id);
    return ctx.happenings();
  },
  /** advance 500ms: let time pass (deliveries and ticks). */
  advance: (ctx, [d]) => {
    ctx.sim.run(parseDuration(d));
    return ctx.happenings();
  },
  /** stabilize [limit]: run until converged (default limit 30s); prints how long it took. */
  stabilize: (ctx, [d]) => {
    const took = ctx.sim.runUntil(() => ctx.sim.converged(), parseDuration(d ?? '30s'));
    return [...ctx.happenings(), took === null ? 'not converged' : `converged after ${took}ms`];
  },
  /** kill m2: the process dies at once (kill -9). */
  kill: (ctx, args) => {
    for (const id of ctx.members(args)) ctx.sim.kill(id);
    return [];
  },
  /** stall m3 400ms: the member's process stalls (no ticks, no reads; datagrams wait), then resumes. */
  stall: (ctx, [m, d]) => {
    ctx.sim.stall(ctx.members([m!])[0]!, parseDuration(d));
    return [];
  },
  /** restart m2: a fresh process on the same member. */
  restart: (ctx, args) => {
    for (const id of ctx.members(args)) ctx.restart(id);
    return ctx.happenings();
  },
  /** partition m1 | m2 m3 */
  partition: (ctx, args) => {
    const groups = args.join(' ').split('|').map((g) => g.trim().split(/\s+/).filter(Boolean).map((n) => ctx.id(n)));
    ctx.sim.partition(...groups);
    return [];
  },
  heal: (ctx) => {
    ctx.sim.heal();
    return [];
  },
  /** cut m1 m2: datagrams from m1 to m2 are dropped from now on (one way; m2 still reaches m1). */
  cut: (ctx, [a, b]) => {
    const from = ctx.id(a!);
    const to = ctx.id(b!);
    const before = ctx.sim.network.drop;
    ctx.sim.network.drop = (d) => (d.from === from && d.to === to) || before(d);
    return [];
  },
  /** uncut: every one-way cut is removed. */
  uncut: (ctx) => {
    ctx.sim.network.drop = () => false;
    return [];
  },
  /** loss 0.1: probability that a datagram is lost from now on. */
  loss: (ctx, [p]) => {
    ctx.sim.loss = Number(p);
    return [];
  },
  /**
   * load m1 900 [700:40,701:12]: the member's data plane reports its load (and its busiest units as
   * unit:weight).
   */
  load: (ctx, [m, l, busy]) => {
    const busiestUnits = (busy ?? '').split(',').filter(Boolean).map((x) => {
      const [unit, weight] = x.split(':').map(Number);
      return { unit: unit!, weight: weight! };
    });
    ctx.event(ctx.id(m!), { type: 'load-report', load: Number(l), busiestUnits });
    return ctx.happenings();
  },
  /** assignment first-packet: members added from now on use this unitAssignment rule. */
  assignment: (ctx, [rule]) => {
    if (rule !== 'at-once' && rule !== 'first-packet') throw new Error(`assignment: at-once or first-packet, got ${rule}`);
    ctx.scenarioOverrides = { ...ctx.scenarioOverrides, unitAssignment: rule };
    return [];
  },
  /** packet 700 [701 ...]: a packet of each unit reaches the master's data plane, which asks for an owner. */
  packet: (ctx, units) => {
    for (const u of units) ctx.event(ctx.master().id, { type: 'unit-needs-owner', unit: Number(u) });
    return ctx.happenings();
  },
  /** drain m3 / undrain m3: the operator asks the master. */
  drain: (ctx, [m]) => {
    ctx.event(ctx.master().id, { type: 'drain', member: ctx.id(m!) });
    return ctx.happenings();
  },
  undrain: (ctx, [m]) => {
    ctx.event(ctx.master().id, { type: 'undrain', member: ctx.id(m!) });
    return ctx.happenings();
  },
  /** rebalance: the operator asks the master to rebalance now. */
  rebalance: (ctx) => {
    ctx.event(ctx.master().id, { type: 'rebalance-now' });
    return ctx.happenings();
  },
  /** leave m2: the member leaves the cluster. */
  leave: (ctx, args) => {
    for (const id of ctx.members(args)) ctx.event(id, { type: 'leave' });
    return ctx.happenings();
  },
  status: (ctx) => ctx.status(),
};
