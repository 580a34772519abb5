/**
 * Golden scenarios of whole members (test/sim/testdata/*.txt): the core's scenario runner and commands
 * (@gwcluster/cluster-core/testing) with every member a SimMember (its core, session replication, data-plane
 * policy and operator plane), plus commands for sessions and operator actions. Outputs print the planes'
 * messages and notes beside the core's, in the order they happened.
 */
import { CORE_COMMANDS, CoreScenario, type CommandTable } from '@gwcluster/cluster-core/testing';
import type { CoreConfig, SimTraceEntry } from '@gwcluster/cluster-core';
import type { ClusterMessage, MemberId, OperatorAction, WorkUnit } from '@gwcluster/wire';
import { clusterConfiguration, coreSettings } from '../config/cluster-config.js';
import { SimMember, simMemberConfig } from './sim-member.js';

/** A session the scenario created: its flow key, unit and the member it was created on. */
interface CreatedSession {
  readonly name: string;
  readonly key: string;
  readonly unit: WorkUnit;
}

export class MemberScenario extends CoreScenario {
  /** The running process of each member (a restart makes a new one). */
  readonly processes: Map<MemberId, SimMember>;
  readonly created: CreatedSession[];

  constructor() {
    const processes = new Map<MemberId, SimMember>();
    // A restarted member's new process reads the file its previous one wrote.
    super((id) => {
      const m = new SimMember(id, processes.get(id)?.file);
      processes.set(id, m);
      return m.planes;
    });
    this.processes = processes;
    this.created = [];
  }

  /** From the member's configuration file: a new member's, or the one its previous process wrote. */
  protected override coreOverrides(id: MemberId): Partial<CoreConfig> {
    const previous = this.processes.get(id);
    const config = previous ? simMemberConfig(id, previous.file) : simMemberConfig(id);
    return { ...coreSettings(config), configVersion: config.cluster.configVersion };
  }

  process(name: string): SimMember {
    return this.processes.get(this.id(name))!;
  }

  /** An operator action asked at member `at` (its admin API); the answer shows as a note when it comes. */
  act(at: MemberId, action: OperatorAction, member: MemberId | '', payload: Record<string, unknown> = {}): void {
    const m = this.processes.get(at)!;
    m.act(this.sim.planeContext(at, m.planes.find((p) => p.name === 'operator')!), action, member, payload);
  }

  addSessions(name: string, count: number): string[] {
    const id = this.id(name);
    const m = this.processes.get(id)!;
    const added = m.addSessions(this.sim.planeContext(id, m.planes.find((p) => p.name === 'sessions')!), count, this.created.length + 1);
    const named = added.map((a, k) => ({ name: `s${this.created.length + 1 + k}`, ...a }));
    for (const s of named) this.created.push(s);
    return [`${name} created ${named.map((s) => `${s.name} (unit ${s.unit})`).join(', ')}`];
  }

  /** Each created session: its unit's owner (the master's table) and the live members that hold it. */
  sessions(): string[] {
    const masters = this.sim.masters();
    const owners = masters.length === 1 ? masters[0]!.member.status(this.sim.now).owners : null;
    const lines: string[] = [];
    let ownersHold = true;
    for (const s of this.created) {
      const owner = owners?.[s.unit] ?? null;
      const holders = this.sim.alive().filter((n) => this.processes.get(n.id)!.store.has(s.key));
      if (owner === null || !holders.some((h) => h.id === owner)) ownersHold = false;
      lines.push(`${s.name} unit ${s.unit} owner ${this.name(owner)} held by ${holders.map((h) => this.name(h.id)).join(' ') || 'nobody'}`);
    }
    lines.push(`every session held by its unit's owner: ${ownersHold ? 'yes' : 'no'}`);
    return lines;
  }

  /** Each live member's configuration: the version it runs, the core's timing, the file's version and its writes. */
  configs(): string[] {
    const lines: string[] = [];
    const versions = new Set<number>();
    for (const n of this.sim.alive()) {
      const m = this.processes.get(n.id)!;
      const c = clusterConfiguration(m.config);
      versions.add(c.version);
      const fileVersion = (m.file.cluster as { configVersion: number }).configVersion;
      lines.push(
        `${this.name(n.id)} version=${c.version} core=${n.member.configVersion} keepalivePeriodMs=${c.settings.keepalivePeriodMs} core=${n.member.config.keepalivePeriodMs} file=v${fileVersion} writes=[${m.persisted.join(',')}]`,
      );
    }
    lines.push(`versions agree: ${versions.size === 1 ? 'yes' : 'no'}`);
    return lines;
  }

  protected override describe(id: MemberId, t: SimTraceEntry, keepalives: Map<string, number>): string | null {
    if (t.plane === undefined) return this.describeCore(id, t.effect, keepalives);
    const who = this.name(id);
    const e = t.effect;
    switch (e.type) {
      case 'send':
        return `${who} -> ${e.to === 'broadcast' ? '*' : this.name(e.to)} ${e.message.type} ${this.fields(e.message)}`.trimEnd();
      case 'note':
        return `${who} ${t.plane}: ${this.named(e.text)}`;
      default:
        // A core event: what it changed shows as the core's effects.
        return null;
    }
  }

  protected override fields(m: ClusterMessage): string {
    switch (m.type) {
      case 'state-sync':
        return `seq=${m.seq} records=${m.records.length}${m.snapshotComplete ? ' snapshot-complete' : ''}`;
      case 'state-ack':
        return `seqs=${m.seqs.join(',')}`;
      case 'operator-request':
        return `${m.action} ${this.name(m.member)}`;
      case 'operator-reply':
        return `${m.ok ? 'ok' : m.code} ${this.named(m.detail)}`;
      case 'config-update':
      case 'config-status':
        return `version=${m.version}`;
      default:
        return super.fields(m);
    }
  }
}

/** `... at m3`: the member whose admin API is asked (default: the master). */
function splitAt(ctx: MemberScenario, args: readonly string[]): { rest: readonly string[]; at: MemberId } {
  const i = args.indexOf('at');
  if (i < 0) return { rest: args, at: ctx.master().id };
  return { rest: args.slice(0, i), at: ctx.id(args[i + 1]!) };
}

function memberAction(action: 'drain' | 'undrain') {
  return (ctx: MemberScenario, args: readonly string[]): string[] => {
    const { rest, at } = splitAt(ctx, args);
    ctx.act(at, action, ctx.id(rest[0]!));
    return ctx.happenings();
  };
}

/** The core's commands on whole members, with operator actions through the operator plane. */
export const MEMBER_COMMANDS: CommandTable<MemberScenario> = {
  ...(CORE_COMMANDS as CommandTable<MemberScenario>),
  /** drain m2 [at m3]: asked at m3's admin API (forwarded to the master), default at the master. */
  drain: memberAction('drain'),
  undrain: memberAction('undrain'),
  /** rebalance [at m3] */
  rebalance: (ctx, args) => {
    ctx.act(splitAt(ctx, args).at, 'rebalance', '');
    return ctx.happenings();
  },
  /** config-set keepalivePeriodMs 50 [at m3]: a change of the cluster configuration (live fields). */
  'config-set': (ctx, args) => {
    const { rest, at } = splitAt(ctx, args);
    const changes: Record<string, number> = {};
    for (let i = 0; i + 1 < rest.length; i += 2) changes[rest[i]!] = Number(rest[i + 1]);
    ctx.act(at, 'config', '', { changes });
    return ctx.happenings();
  },
  /** config: each live member's configuration version, timing and file. */
  config: (ctx) => ctx.configs(),
  /** sessions m1 add 5: sessions of m1's units; sessions: where every created session is held. */
  sessions: (ctx, args) => {
    if (args.length === 0) return ctx.sessions();
    if (args[1] !== 'add') throw new Error(`sessions ${args.join(' ')}: expected "sessions <member> add <count>" or "sessions"`);
    return [...ctx.addSessions(args[0]!, Number(args[2] ?? '1')), ...ctx.happenings()];
  },
};
