/**
 * gwctl: the operator's command line.
 *
 * Exit codes: 0 ok; 1 other failure; 2 bad arguments; 3 daemon unreachable; 4 authentication failed;
 * 5 action refused.
 */
import { Command, CommanderError, Option } from 'commander';
import { EXIT, GwctlError, type ClientOptions } from './client.js';
import { fetchStatus, renderStatus } from './status.js';
import { createPersonality, initCa } from './pki.js';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function ipv4(flag: string): (value: string) => string {
  return (value) => {
    if (!IPV4.test(value)) throw new GwctlError(EXIT.badArguments, `${flag} "${value}" is not a dotted-quad IPv4 address (e.g. 192.0.2.11)`);
    return value;
  };
}

function integer(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new GwctlError(EXIT.badArguments, `${flag} "${value}" must be a whole number from ${min} to ${max}`);
    return n;
  };
}

function clientOptions(cmd: Command): ClientOptions {
  const o = cmd.optsWithGlobals<{ endpoint: string; token?: string; timeout: number }>();
  return { endpoint: o.endpoint, ...(o.token ? { token: o.token } : {}), timeoutMs: o.timeout };
}

function parseEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    throw new GwctlError(EXIT.badArguments, `--endpoint "${value}" is not a URL; use http://HOST:PORT (e.g. http://192.0.2.11:7401)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new GwctlError(EXIT.badArguments, `--endpoint "${value}" must be http:// or https://`);
  return url.toString();
}

function parseTimeout(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 100 || n > 600_000) throw new GwctlError(EXIT.badArguments, `--timeout "${value}" must be milliseconds from 100 to 600000`);
  return n;
}

export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('gwctl')
    .description('Operate a gwcluster cluster through any member\'s admin API.')
    .addOption(new Option('-e, --endpoint <url>', 'admin API of a member').default(process.env.GWCTL_ENDPOINT ?? 'http://127.0.0.1:7401').argParser(parseEndpoint))
    .addOption(new Option('-t, --token <token>', 'bearer token (admin.token of the member)').env('GWCTL_TOKEN'))
    .addOption(new Option('--timeout <ms>', 'request timeout').default(3000).argParser(parseTimeout))
    .showHelpAfterError('(run gwctl --help for usage)')
    .exitOverride();

  program
    .command('status')
    .description('Show the master, the members with loss estimate and keepalive interval, and the work table.')
    .option('--json', 'print the raw JSON (cluster and units)')
    .addHelpText('after', '\nExamples:\n  gwctl status -e http://192.0.2.11:7401\n  gwctl status --json | jq .cluster.master')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const status = await fetchStatus(clientOptions(cmd));
      out(opts.json ? `${JSON.stringify(status)}\n` : `${renderStatus(status)}\n`);
    });

  const pki = program.command('pki').description('Create the cluster CA and member certificates.');
  pki
    .command('init-ca')
    .description('Create a cluster CA (ca.crt, ca.key with mode 0600) in a directory.')
    .requiredOption('--dir <dir>', 'directory for ca.crt and ca.key')
    .option('--name <cn>', 'common name of the CA', 'gwcluster CA')
    .addOption(new Option('--days <n>', 'validity in days').default(3650).argParser(integer('--days', 1, 36500)))
    .option('--force', 'overwrite existing files')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  gwctl pki init-ca --dir /root/gwcluster-ca --name "edge cluster CA"')
    .action(async (o: { dir: string; name: string; days: number; force?: boolean; json?: boolean }) => {
      const r = await initCa({ dir: o.dir, name: o.name, days: o.days, force: o.force ?? false });
      out(o.json ? `${JSON.stringify(r)}\n` : `wrote ${r.certPath} and ${r.keyPath}\nCA fingerprint ${r.fingerprint}\n`);
    });

  program
    .command('personality')
    .description("Issue a member certificate and write the member's personality directory (member.json, member.crt, member.key, ca.crt).")
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt and ca.key')
    .requiredOption('--out <dir>', 'personality directory to write')
    .requiredOption('--cluster-name <name>', 'cluster name')
    .addOption(new Option('--cluster-ip <ip>', 'the cluster IP').argParser(ipv4('--cluster-ip')).makeOptionMandatory())
    .addOption(new Option('--member-ip <ip>', "this member's address").argParser(ipv4('--member-ip')).makeOptionMandatory())
    .addOption(new Option('--prefix-length <n>', 'member subnet prefix length').default(24).argParser(integer('--prefix-length', 8, 30)))
    .requiredOption('--interface <name>', 'cluster interface')
    .addOption(new Option('--days <n>', 'certificate validity in days').default(730).argParser(integer('--days', 1, 36500)))
    .addOption(new Option('--config-version <n>', 'cluster configuration version').default(1).argParser(integer('--config-version', 1, 2 ** 31)))
    .option('--token <token>', 'admin API bearer token (16+ characters)')
    .option('--set <json>', 'extra top-level configuration as a JSON object, e.g. \'{"logLevel":"debug"}\'')
    .option('--force', 'overwrite existing files')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  gwctl personality --ca-dir /root/gwcluster-ca --out /etc/gwcluster --cluster-name edge \\\n    --cluster-ip 198.51.100.10 --member-ip 192.0.2.11 --interface eth0')
    .action(async (o: Record<string, any>) => {
      let extra: Record<string, unknown> | undefined;
      if (o.set !== undefined) {
        try {
          extra = JSON.parse(o.set as string) as Record<string, unknown>;
        } catch {
          throw new GwctlError(EXIT.badArguments, `--set must be a JSON object, got ${o.set as string}`);
        }
        if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) throw new GwctlError(EXIT.badArguments, '--set must be a JSON object');
      }
      if (o.token !== undefined && (o.token as string).length < 16) throw new GwctlError(EXIT.badArguments, '--token must be at least 16 characters');
      const r = await createPersonality({
        caDir: o.caDir,
        out: o.out,
        clusterName: o.clusterName,
        clusterIp: o.clusterIp,
        memberIp: o.memberIp,
        prefixLength: o.prefixLength,
        iface: o.interface,
        days: o.days,
        configVersion: o.configVersion,
        force: o.force ?? false,
        ...(o.token ? { token: o.token as string } : {}),
        ...(extra ? { extra } : {}),
      });
      out(o.json ? `${JSON.stringify(r)}\n` : `wrote ${r.configPath}\nmember certificate fingerprint ${r.fingerprint}\n`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof GwctlError) {
      process.stderr.write(`gwctl: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.badArguments;
    }
    process.stderr.write(`gwctl: ${(e as Error).message}\n`);
    return EXIT.failure;
  }
}
