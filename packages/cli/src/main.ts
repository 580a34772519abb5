/**
 * gwctl: the operator's command line.
 *
 * Exit codes: 0 ok; 1 other failure; 2 bad arguments; 3 daemon unreachable; 4 authentication failed;
 * 5 action refused.
 */
import { Command, CommanderError, Option } from 'commander';
import { EXIT, GwctlError, type ClientOptions } from './client.js';
import { fetchStatus, renderStatus } from './status.js';

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
