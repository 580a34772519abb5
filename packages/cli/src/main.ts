/**
 * gwctl: the operator's command line.
 *
 * Exit codes: 0 ok; 1 other failure; 2 bad arguments; 3 daemon unreachable; 4 authentication failed;
 * 5 action refused.
 */
import { Command, CommanderError, Option } from 'commander';
import { EXIT, GwctlError, type ClientOptions } from './client.js';
import { fetchStatus, renderStatus } from './status.js';
import { createPersonality, initCa, issueClientCertificate, signPersonalityBundle } from './pki.js';
import { addOperatorCommands } from './operator-commands.js';
import { addDiagnosticCommands } from './diagnostics.js';
import { workUnitOfFlow, workUnitOfPacket } from './workunit.js';
import { completionScript } from './completion.js';
import { isIpv4Text, isIpv6Text } from '@gwcluster/native-addon';


function ipv4(flag: string): (value: string) => string {
  return (value) => {
    if (!isIpv4Text(value)) throw new GwctlError(EXIT.badArguments, `${flag} "${value}" is not a dotted-quad IPv4 address (e.g. 192.0.2.11)`);
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
  const o = cmd.optsWithGlobals<{ endpoint: string; token?: string; timeout: number; cacert?: string; cert?: string; key?: string }>();
  if ((o.cert === undefined) !== (o.key === undefined)) throw new GwctlError(EXIT.badArguments, '--cert and --key go together: pass both (a client certificate from the cluster CA and its key) or neither');
  return {
    endpoint: o.endpoint,
    ...(o.token ? { token: o.token } : {}),
    timeoutMs: o.timeout,
    ...(o.cacert ? { caFile: o.cacert } : {}),
    ...(o.cert ? { certFile: o.cert } : {}),
    ...(o.key ? { keyFile: o.key } : {}),
  };
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
    .addOption(new Option('--cacert <file>', 'https endpoints: PEM of the cluster CA that signed the member certificate').env('GWCTL_CACERT'))
    .addOption(new Option('--cert <file>', 'mutual TLS: client certificate (PEM) from the cluster CA').env('GWCTL_CERT'))
    .addOption(new Option('--key <file>', 'mutual TLS: its private key (PEM)').env('GWCTL_KEY'))
    .showHelpAfterError('(run gwctl --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok; 1 other failure; 2 bad arguments; 3 daemon unreachable; 4 authentication failed; 5 refused by the daemon.\nEnvironment: GWCTL_ENDPOINT, GWCTL_TOKEN, GWCTL_CACERT, GWCTL_CERT, GWCTL_KEY.\n\nExamples:\n  gwctl -e http://192.0.2.11:7401 -t TOKEN status\n  gwctl drain 192.0.2.12\n  gwctl config set keepalivePeriodMs=200\n  gwctl workunit --proto tcp --src 192.0.2.50 --sport 40000 --dst 198.51.100.10 --dport 443',
    )
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

  const commandContext = {
    out,
    err: (s: string) => process.stderr.write(s),
    client: clientOptions,
    ipv4,
    integer,
  };
  addOperatorCommands(program, commandContext);
  addDiagnosticCommands(program, commandContext);

  program
    .command('workunit')
    .description('Compute the work unit of a flow (from its header fields) or of a packet (hex), with the filtering function of the data plane.')
    .option('--proto <proto>', 'tcp | udp | icmp | l2tp | IP protocol number')
    .option('--src <ip>', 'source address (IPv4 or IPv6)')
    .addOption(new Option('--sport <port>', 'source port').argParser(integer('--sport', 0, 65535)))
    .option('--dst <ip>', 'destination address (needed for forwarded flows and protocols other than TCP/UDP)')
    .addOption(new Option('--dport <port>', 'destination port').argParser(integer('--dport', 0, 65535)))
    .option('--forwarding', 'the cluster routes this flow (key = src ^ dst)')
    .addOption(new Option('--tunnel-id <id>', 'L2TP tunnel id').argParser(integer('--tunnel-id', 0, 65535)))
    .addOption(new Option('--session-id <id>', 'L2TP session id').argParser(integer('--session-id', 0, 65535)))
    .option('--packet <hex>', 'an IP packet as hex bytes instead of the fields above')
    .option('--cluster-ip <ip...>', 'cluster IP(s), to tell cluster traffic from forwarded traffic with --packet', [])
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nThe function: TCP/UDP to the cluster: key = src ^ sport; L2TP (UDP 1701): src ^ sport ^ tunnelId ^ sessionId;\nother protocols and forwarded traffic: src ^ dst; IPv6 addresses fold to the XOR of their four 32-bit words;\nunit = (k ^ k>>>10 ^ k>>>20 ^ k>>>30) & 1023.\n\nExamples:\n  gwctl workunit --proto tcp --src 192.0.2.50 --sport 40000 --dst 198.51.100.10 --dport 443\n  gwctl workunit --proto udp --src 192.0.2.50 --sport 1701 --dport 1701 --tunnel-id 7 --session-id 9\n  gwctl workunit --proto icmp --src 192.0.2.50 --dst 198.51.100.10\n  gwctl workunit --packet 4500001c... --cluster-ip 198.51.100.10',
    )
    .action(async (o: Record<string, any>) => {
      let r;
      if (o.packet !== undefined) {
        for (const ip of o.clusterIp as string[]) if (!isIpv4Text(ip) && !isIpv6Text(ip)) throw new GwctlError(EXIT.badArguments, `--cluster-ip "${ip}" is not an IPv4 or IPv6 address`);
        r = workUnitOfPacket(o.packet as string, o.clusterIp as string[]);
      } else {
        if (o.proto === undefined) throw new GwctlError(EXIT.badArguments, '--proto is required (tcp, udp, icmp, l2tp or a protocol number 0..255), or give --packet HEX');
        if (o.src === undefined) throw new GwctlError(EXIT.badArguments, '--src is required: the source address, e.g. 192.0.2.50');
        const proto = /^\d+$/.test(o.proto as string) ? Number(o.proto) : (o.proto as string).toLowerCase();
        if (typeof proto === 'string' && !['tcp', 'udp', 'icmp', 'l2tp'].includes(proto)) throw new GwctlError(EXIT.badArguments, `--proto "${o.proto as string}" must be tcp, udp, icmp, l2tp or a protocol number 0..255`);
        if (typeof proto === 'number' && proto > 255) throw new GwctlError(EXIT.badArguments, `--proto "${o.proto as string}" must be a protocol number 0..255`);
        const byPorts = !o.forwarding && (proto === 'tcp' || proto === 'udp' || proto === 'l2tp' || proto === 6 || proto === 17);
        if (byPorts && o.sport === undefined) throw new GwctlError(EXIT.badArguments, '--sport is required for TCP, UDP and L2TP flows to the cluster: the source port, 0..65535');
        r = workUnitOfFlow({
          proto: proto as never,
          src: o.src as string,
          ...(o.dst !== undefined ? { dst: o.dst as string } : {}),
          ...(o.sport !== undefined ? { sport: o.sport as number } : {}),
          ...(o.dport !== undefined ? { dport: o.dport as number } : {}),
          ...(o.forwarding ? { forwarding: true } : {}),
          ...(o.tunnelId !== undefined ? { tunnelId: o.tunnelId as number } : {}),
          ...(o.sessionId !== undefined ? { sessionId: o.sessionId as number } : {}),
        });
      }
      out(o.json ? `${JSON.stringify(r)}\n` : `unit ${r.unit}   (key ${r.key} = ${r.rule}${r.kind ? `, ${r.kind}` : ''})\n`);
    });

  program
    .command('completion')
    .description('Print a shell completion script.')
    .argument('[shell]', 'bash or zsh', 'bash')
    .addHelpText('after', '\nExamples:\n  gwctl completion bash > /etc/bash_completion.d/gwctl\n  source <(gwctl completion bash)\n  gwctl completion zsh > "${fpath[1]}/_gwctl"')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new GwctlError(EXIT.badArguments, `shell "${shell}" must be bash or zsh`);
      out(completionScript(program, shell));
    });

  const bundle = program.command('bundle').description('Sign and check the software and configuration bundle a member verifies at boot.');
  bundle
    .command('sign')
    .description("Sign the installed software and a member's personality with the cluster CA key (writes bundle.sig beside the configuration).")
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt and ca.key')
    .requiredOption('--config <file>', "the member's configuration (member.json)")
    .option('--out <file>', 'signature file (default: bundle.sig beside the configuration)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  gwctl bundle sign --ca-dir /root/gwcluster-ca --config /etc/gwcluster/member.json')
    .action(async (o: { caDir: string; config: string; out?: string; json?: boolean }) => {
      const r = await signPersonalityBundle({ caDir: o.caDir, config: o.config, ...(o.out ? { out: o.out } : {}) });
      out(o.json ? `${JSON.stringify(r)}\n` : `wrote ${r.path}: ${r.files} file(s) signed\n`);
    });

  const pki = program.command('pki').description('Create the cluster CA and member certificates.');
  pki
    .command('client-cert')
    .description('Issue a client certificate from the cluster CA for gwctl over mutual TLS (admin.tls.requireClientCertificate).')
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt and ca.key')
    .requiredOption('--out <dir>', 'directory for client.crt and client.key (0600)')
    .addOption(new Option('--ip <ip>', "the operator host's address, put in the certificate").argParser(ipv4('--ip')).makeOptionMandatory())
    .addOption(new Option('--days <n>', 'validity in days').default(365).argParser(integer('--days', 1, 36500)))
    .option('--force', 'overwrite existing files')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  gwctl pki client-cert --ca-dir /root/gwcluster-ca --out ~/.gwctl --ip 192.0.2.100\n  gwctl -e https://192.0.2.11:7401 --cacert /etc/gwcluster/ca.crt --cert ~/.gwctl/client.crt --key ~/.gwctl/client.key status')
    .action(async (o: { caDir: string; out: string; ip: string; days: number; force?: boolean; json?: boolean }) => {
      const r = await issueClientCertificate({ caDir: o.caDir, out: o.out, ip: o.ip, days: o.days, force: o.force ?? false });
      out(o.json ? `${JSON.stringify(r)}\n` : `wrote ${r.certPath} and ${r.keyPath}\n`);
    });
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
    .option('--sign-bundle', 'also sign the software and this personality (pki.bundleSignature = bundle.sig), checked at every boot')
    .option('--force', 'overwrite existing files')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  gwctl personality --ca-dir /root/gwcluster-ca --out /etc/gwcluster --cluster-name edge \\\n    --cluster-ip 198.51.100.10 --member-ip 192.0.2.11 --interface eth0')
    .action(async (o: Record<string, any>, cmd: Command) => {
      // gwctl's global -t/--token takes "--token" wherever it appears on the line; it is this member's token here.
      if (o.token === undefined) o.token = cmd.optsWithGlobals<{ token?: string }>().token;
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
      let signed: { path: string } | undefined;
      if (o.signBundle) signed = await signPersonalityBundle({ caDir: o.caDir as string, config: r.configPath, setInConfig: true });
      out(
        o.json
          ? `${JSON.stringify({ ...r, ...(signed ? { bundleSignature: signed.path } : {}) })}\n`
          : `wrote ${r.configPath}\nmember certificate fingerprint ${r.fingerprint}\n${signed ? `wrote ${signed.path}\n` : ''}`,
      );
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
