/**
 * gwctl diagnose: one tar.gz of what support needs from every member (status, members, units, events,
 * counters, cluster and member configuration with the secrets redacted, recent logs, metrics).
 * gwctl capture: the packets of one work unit on one member, as a pcap file (tcpdump -r reads it).
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { CAPTURE_LIMITS, MembersSchema, type MembersView } from '@gwcluster/contracts';
import { call, EXIT, GwctlError, request, type ClientOptions } from './client.js';
import type { CommandContext } from './operator-commands.js';

/** What the archive holds per member: file name -> admin API path. */
export const DIAGNOSE_FILES: readonly (readonly [string, string])[] = [
  ['cluster.json', '/v1/cluster'],
  ['members.json', '/v1/members'],
  ['units.json', '/v1/units'],
  ['events.json', '/v1/events?limit=500'],
  ['counters.json', '/v1/counters'],
  ['config.json', '/v1/config'],
  ['member-config.json', '/v1/member-config'],
  ['logs.jsonl', '/v1/logs?limit=5000'],
  ['metrics.txt', '/metrics'],
];

const REDACTED = '<redacted>';

function stamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** The admin endpoint of `member`: the endpoint given, with the member's address as host. */
export function memberEndpoint(endpoint: string, member: string): string {
  const u = new URL(endpoint);
  u.hostname = member;
  return u.toString();
}

export interface DiagnoseResult {
  readonly archive: string;
  readonly members: Record<string, { readonly files: string[]; readonly failed: Record<string, string> }>;
}

export async function diagnose(opts: ClientOptions, out: string | undefined, log: (s: string) => void): Promise<DiagnoseResult> {
  const name = `gwcluster-diagnose-${stamp()}`;
  const archive = resolve(out ?? `${name}.tar.gz`);
  try {
    if (!statSync(dirname(archive)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new GwctlError(EXIT.badArguments, `--out ${archive}: the directory ${dirname(archive)} does not exist`);
  }
  // The member asked names the others; if it cannot answer, the archive holds what it can get from it.
  let members: string[];
  try {
    const m = await call<MembersView>(opts, 'GET', '/v1/members', MembersSchema);
    members = m.members.map((x) => x.id);
  } catch (e) {
    if (e instanceof GwctlError && e.exitCode === EXIT.unauthorized) throw e;
    members = [];
    log(`gwctl: cannot list the members through ${opts.endpoint} (${(e as Error).message}); collecting from it alone\n`);
  }
  const asked = new URL(opts.endpoint).hostname;
  if (!members.includes(asked)) members.unshift(asked);
  const work = mkdtempSync(join(tmpdir(), 'gwctl-diagnose-'));
  const root = join(work, name);
  mkdirSync(root);
  const result: DiagnoseResult = { archive, members: {} };
  try {
    for (const member of members) {
      const dir = join(root, member);
      mkdirSync(dir);
      const mopts: ClientOptions = { ...opts, endpoint: member === asked ? opts.endpoint : memberEndpoint(opts.endpoint, member) };
      const entry = { files: [] as string[], failed: {} as Record<string, string> };
      result.members[member] = entry;
      for (const [file, path] of DIAGNOSE_FILES) {
        try {
          const res = await request(mopts, 'GET', path);
          if (res.status !== 200) {
            const b = res.body as { code?: string; message?: string } | null;
            entry.failed[file] = `HTTP ${res.status} ${b?.code ?? ''}: ${b?.message ?? res.text.slice(0, 200)}`.trim();
            continue;
          }
          let text = file === 'logs.jsonl' ? `${((res.body as { lines?: string[] } | null)?.lines ?? []).join('\n')}\n` : res.body !== null ? `${JSON.stringify(res.body, null, 2)}\n` : res.text;
          // The daemon redacts its secrets; the token this command used never lands in the archive either way.
          if (opts.token) text = text.replaceAll(opts.token, REDACTED);
          writeFileSync(join(dir, file), text);
          entry.files.push(file);
        } catch (e) {
          entry.failed[file] = (e as Error).message;
        }
      }
      const n = entry.files.length;
      log(`${member}: ${n}/${DIAGNOSE_FILES.length} files${n < DIAGNOSE_FILES.length ? ` (missing: ${Object.keys(entry.failed).join(', ')})` : ''}\n`);
    }
    writeFileSync(join(root, 'manifest.json'), `${JSON.stringify({ createdAt: new Date().toISOString(), endpoint: opts.endpoint, members: result.members }, null, 2)}\n`);
    try {
      execFileSync('tar', ['-czf', archive, '-C', work, name], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new GwctlError(EXIT.failure, `cannot write ${archive} with tar: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (Object.values(result.members).every((m) => m.files.length === 0)) {
    throw new GwctlError(EXIT.unreachable, `no member answered; ${archive} holds only the manifest (${Object.entries(result.members).map(([m, e]) => `${m}: ${Object.values(e.failed)[0] ?? '?'}`).join('; ')})`);
  }
  return result;
}

function positiveNumber(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || n < min || n > max) throw new GwctlError(EXIT.badArguments, `${flag} "${value}" must be a number from ${min} to ${max}`);
    return n;
  };
}

export function addDiagnosticCommands(program: Command, ctx: CommandContext): void {
  program
    .command('diagnose')
    .description('Collect status, events, counters, configuration (secrets redacted), recent logs and metrics of every member into one tar.gz.')
    .option('-o, --out <file>', 'archive to write (default: gwcluster-diagnose-TIME.tar.gz in the current directory)')
    .addHelpText('after', '\nEvery member is asked at the endpoint\'s scheme and port with its own address as host; a member that does not\nanswer is listed in manifest.json with the reason, and the others are still collected.\n\nExamples:\n  gwctl diagnose -e http://192.0.2.11:7401 -t TOKEN\n  gwctl diagnose --out /tmp/edge.tar.gz\n  tar -tzf gwcluster-diagnose-*.tar.gz')
    .action(async (o: { out?: string }, cmd: Command) => {
      const r = await diagnose(ctx.client(cmd), o.out, ctx.err);
      ctx.out(`${r.archive}\n`);
    });

  program
    .command('capture')
    .description('Capture the packets of one work unit on the member at --endpoint, as a pcap file (read it with tcpdump -r or Wireshark).')
    .addOption(new Option('--unit <n>', 'work unit, 0..1023 (gwctl workunit computes it from a flow)').argParser(ctx.integer('--unit', 0, 1023)).makeOptionMandatory())
    .addOption(new Option('--count <k>', `stop after this many packets (at most ${CAPTURE_LIMITS.maxCount})`).argParser(ctx.integer('--count', 1, CAPTURE_LIMITS.maxCount)).default(CAPTURE_LIMITS.defaultCount))
    .addOption(new Option('--seconds <s>', `stop after this long (at most ${CAPTURE_LIMITS.maxSeconds})`).argParser(positiveNumber('--seconds', 0.1, CAPTURE_LIMITS.maxSeconds)).default(CAPTURE_LIMITS.defaultSeconds))
    .option('--interface <name>', "interface on the member (default: its cluster interface)")
    .option('-o, --out <file>', 'pcap file to write; - for stdout (default: unit-N.pcap)')
    .addHelpText('after', '\nExamples:\n  gwctl capture -e http://192.0.2.12:7401 --unit 598 --count 50 --out unit-598.pcap\n  gwctl capture --unit 598 --seconds 5 --out - | tcpdump -nr -')
    .action(async (o: { unit: number; count: number; seconds: number; interface?: string; out?: string }, cmd: Command) => {
      const base = ctx.client(cmd);
      const opts: ClientOptions = { ...base, timeoutMs: Math.max(base.timeoutMs ?? 3000, o.seconds * 1000 + 5000) };
      const path = `/v1/capture?unit=${o.unit}&count=${o.count}&seconds=${o.seconds}${o.interface ? `&interface=${encodeURIComponent(o.interface)}` : ''}`;
      const file = o.out ?? `unit-${o.unit}.pcap`;
      if (file === '-') {
        await call(opts, 'GET', path, null, undefined, process.stdout);
        return;
      }
      const target = resolve(file);
      const partial = join(dirname(target), `.${basename(target)}.partial`);
      const sink = createWriteStream(partial);
      const opened = new Promise<void>((res, rej) => {
        sink.once('open', () => res());
        sink.once('error', (e) => rej(new GwctlError(EXIT.badArguments, `--out ${file}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
      });
      await opened;
      try {
        await call(opts, 'GET', path, null, undefined, sink);
        await new Promise<void>((res) => (sink.writableFinished ? res() : sink.once('finish', () => res())));
      } catch (e) {
        sink.destroy();
        rmSync(partial, { force: true });
        throw e;
      }
      renameSync(partial, target);
      const bytes = statSync(target).size;
      ctx.err(`wrote ${target} (${bytes} bytes)\n`);
      ctx.out(`${target}\n`);
    });
}
