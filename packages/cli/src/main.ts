/**
 * gwctl: the operator's command line.
 *
 * Exit codes: 0 ok; 1 other failure; 2 bad arguments; 3 daemon unreachable; 4 authentication failed;
 * 5 action refused.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ADMIN_API_VERSION, ClusterSchema, type ClusterView } from '@gwcluster/contracts';
import { PROTOCOL_VERSION, isIpv4 } from '@gwcluster/wire';
import { call, EXIT, GwctlError, type ClientOptions } from './client.js';
import { table } from './format.js';
import { localAdminEndpoint, localConfigPath } from './local-member.js';
import { fetchStatus, renderStatus } from './status.js';
import { applyOwnership, createPersonality, initCa, issueClientCertificate, listIssued, renderIssued, renewCertificate, resolveOwner, revokeCertificates, signPersonalityBundle } from './pki.js';
import { dirname } from 'node:path';
import { addOperatorCommands } from './operator-commands.js';
import { addDiagnosticCommands } from './diagnostics.js';
import { workUnitOfFlow, workUnitOfPacket } from './workunit.js';
import { completionScript } from './completion.js';
import { isIpv4Text, isIpv6Text } from '@gwcluster/native-addon';
import { generateWireGuardKey } from './wireguard.js';

/** gwctl's software release (packages/cli/package.json). */
export const GWCTL_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function versionLine(): string {
  return `gwctl ${GWCTL_VERSION} (cluster protocol ${PROTOCOL_VERSION}, admin API ${ADMIN_API_VERSION})`;
}

/**
 * An address for workunit: a dotted quad or an IPv6 address. Four dotted numbers with one out of range
 * (192.0.2.500) are reported as a bad IPv4 address, not as "not IPv6".
 */
function ipAddress(flag: string, value: string): string {
  if (isIpv4(value) || isIpv6Text(value)) return value;
  if (/^[0-9.]+$/.test(value)) {
    throw new GwctlError(EXIT.badArguments, `${flag} "${value}" is not a valid IPv4 address: four decimal parts 0..255 without leading zeros (e.g. 192.0.2.50)`);
  }
  throw new GwctlError(EXIT.badArguments, `${flag} "${value}" is neither an IPv4 address (e.g. 192.0.2.50) nor an IPv6 address (e.g. 2001:db8::50)`);
}


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
  const o = cmd.optsWithGlobals<{ endpoint?: string; token?: string; timeout: number; cacert?: string; cert?: string; key?: string }>();
  if ((o.cert === undefined) !== (o.key === undefined)) throw new GwctlError(EXIT.badArguments, '--cert and --key go together: pass both (a client certificate from the cluster CA and its key) or neither');
  // No --endpoint and no GWCTL_ENDPOINT: the member on this host, as its configuration says.
  let endpoint = o.endpoint ?? (process.env.GWCTL_ENDPOINT ? parseEndpoint(process.env.GWCTL_ENDPOINT) : undefined);
  let cacert = o.cacert;
  if (endpoint === undefined) {
    const file = localConfigPath();
    const local = localAdminEndpoint(file);
    if ('missing' in local) {
      throw new GwctlError(
        EXIT.badArguments,
        `no --endpoint given, GWCTL_ENDPOINT is not set, and no member configuration to take the admin address from (${local.missing}); pass -e http://MEMBER-IP:7401 (or set GWCTL_CONFIG to a member.json)`,
      );
    }
    endpoint = local.endpoint;
    cacert ??= local.caFile;
  }
  return {
    endpoint,
    ...(o.token ? { token: o.token } : {}),
    timeoutMs: o.timeout,
    ...(cacert ? { caFile: cacert } : {}),
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
    .addOption(
      new Option('-e, --endpoint <url>', 'admin API of a member (default: GWCTL_ENDPOINT, else admin.listen and admin.port of this host\'s member configuration, GWCTL_CONFIG or /etc/gwcluster/member.json)').argParser(
        parseEndpoint,
      ),
    )
    .addOption(new Option('-t, --token <token>', 'bearer token (admin.token of the member)').env('GWCTL_TOKEN'))
    .addOption(new Option('--timeout <ms>', 'request timeout').default(3000).argParser(parseTimeout))
    .addOption(new Option('--cacert <file>', 'https endpoints: PEM of the cluster CA that signed the member certificate').env('GWCTL_CACERT'))
    .addOption(new Option('--cert <file>', 'mutual TLS: client certificate (PEM) from the cluster CA').env('GWCTL_CERT'))
    .addOption(new Option('--key <file>', 'mutual TLS: its private key (PEM)').env('GWCTL_KEY'))
    .version(versionLine(), '-V, --version', 'print the versions of gwctl, the cluster protocol and the admin API')
    .showHelpAfterError('(run gwctl --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok; 1 other failure; 2 bad arguments; 3 daemon unreachable; 4 authentication failed; 5 refused by the daemon.\nAn answer of another shape than this gwctl expects (a daemon of another release) is exit 1, naming the admin API version the daemon speaks.\nEnvironment: GWCTL_ENDPOINT, GWCTL_CONFIG, GWCTL_TOKEN, GWCTL_CACERT, GWCTL_CERT, GWCTL_KEY.\n\nExamples:\n  gwctl -e http://192.0.2.11:7401 -t TOKEN status\n  gwctl drain 192.0.2.12\n  gwctl config set keepalivePeriodMs=200\n  gwctl workunit --proto tcp --src 192.0.2.50 --sport 40000 --dst 198.51.100.10 --dport 443',
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

  program
    .command('version')
    .description("Print gwctl's version and every member's software version (as the master's member list carries it).")
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  gwctl version\n  gwctl version --json | jq .members')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const client = { version: GWCTL_VERSION, protocol: PROTOCOL_VERSION, api: ADMIN_API_VERSION };
      const c = await call<ClusterView>(clientOptions(cmd), 'GET', '/v1/cluster', ClusterSchema);
      const members = c.members.map((m) => ({ id: m.id, role: m.role, version: m.version ?? null }));
      if (o.json) return out(`${JSON.stringify({ client, answeredBy: { id: c.self, ...(c.versions ?? {}) }, members })}\n`);
      const answered = c.versions ? `${c.versions.software} (cluster protocol ${c.versions.protocol}, admin API ${c.versions.api})` : 'unknown (a gwclusterd that predates version reporting)';
      const rows = members.map((m) => [m.id, m.role, m.version ?? 'unknown']);
      const versions = new Set(members.map((m) => m.version ?? 'unknown'));
      out(
        `${versionLine()}\nanswered by ${c.self}: gwclusterd ${answered}\n\n${table(['MEMBER', 'ROLE', 'VERSION'], rows)}\n${versions.size > 1 ? `\nmembers run ${versions.size} different versions (${[...versions].join(', ')}): a rolling upgrade under way?\n` : ''}`,
      );
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
        ipAddress('--src', o.src as string);
        if (o.dst !== undefined) ipAddress('--dst', o.dst as string);
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

  const pki = program.command('pki').description('Create the cluster CA and member certificates; list, revoke and renew them.');
  pki
    .command('list')
    .description('List the certificates this CA directory issued: subject, member IP, serial, not-after, days left, revoked.')
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt, ca.key, issued/ and crl.pem')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  gwctl pki list --ca-dir /root/gwcluster-ca')
    .action((o: { caDir: string; json?: boolean }) => {
      const entries = listIssued({ caDir: o.caDir });
      out(o.json ? `${JSON.stringify(entries)}\n` : `${renderIssued(entries)}\n`);
    });
  pki
    .command('revoke')
    .description("Revoke certificates: add them to the CA's revocation list (crl.pem) and sign it again. Then install crl.pem as pki.crl on every member and reload them (systemctl reload gwclusterd).")
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt and ca.key')
    .option('--serial <serial...>', 'serial number(s) to revoke (gwctl pki list shows them)')
    .addOption(new Option('--member-ip <ip>', 'revoke the one unrevoked certificate for this member').argParser(ipv4('--member-ip')))
    .addOption(new Option('--days <n>', "days until the list's nextUpdate").default(365).argParser(integer('--days', 1, 36500)))
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  gwctl pki revoke --ca-dir /root/gwcluster-ca --member-ip 192.0.2.13\n  gwctl pki revoke --ca-dir /root/gwcluster-ca --serial 3f2a...')
    .action(async (o: { caDir: string; serial?: string[]; memberIp?: string; days: number; json?: boolean }) => {
      const r = await revokeCertificates({ caDir: o.caDir, ...(o.serial ? { serials: o.serial } : {}), ...(o.memberIp ? { memberIp: o.memberIp } : {}), days: o.days });
      out(
        o.json
          ? `${JSON.stringify(r)}\n`
          : `revoked ${r.revoked.join(', ')}; ${r.total} certificate(s) on the list\nwrote ${r.crlPath}\ninstall it as pki.crl on every member, then: systemctl reload gwclusterd\n`,
      );
    });
  pki
    .command('renew')
    .description('Issue a new certificate for the member of an existing one (same subject and member IP), for the same key or a new one.')
    .requiredOption('--ca-dir <dir>', 'directory holding ca.crt and ca.key')
    .option('--serial <serial>', 'the certificate to renew (gwctl pki list shows them)')
    .addOption(new Option('--member-ip <ip>', "renew this member's one unrevoked certificate").argParser(ipv4('--member-ip')))
    .requiredOption('--out <dir>', 'directory for member.crt (and member.key with --new-key)')
    .option('--new-key', 'generate a new key pair (writes member.key, 0600); default: certify the same public key')
    .addOption(new Option('--days <n>', 'validity in days').default(730).argParser(integer('--days', 1, 36500)))
    .option('--force', 'overwrite existing files')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  gwctl pki renew --ca-dir /root/gwcluster-ca --member-ip 192.0.2.12 --out /tmp/m2\n  gwctl pki renew --ca-dir /root/gwcluster-ca --serial 3f2a... --new-key --out /tmp/m2')
    .action(async (o: { caDir: string; serial?: string; memberIp?: string; out: string; newKey?: boolean; days: number; force?: boolean; json?: boolean }) => {
      const r = await renewCertificate({ caDir: o.caDir, ...(o.serial ? { serials: [o.serial] } : {}), ...(o.memberIp ? { memberIp: o.memberIp } : {}), out: o.out, newKey: o.newKey ?? false, days: o.days, force: o.force ?? false });
      out(
        o.json
          ? `${JSON.stringify(r)}\n`
          : `wrote ${r.certPath}${r.keyPath ? ` and ${r.keyPath}` : ''}: serial ${r.serial} for ${r.memberIp} until ${r.notAfter} (replaces ${r.replaces})\ninstall it as the member's pki.certificate${r.keyPath ? ' and pki.key' : ''}, then: systemctl reload gwclusterd\n`,
      );
    });
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

  const wg = program.command('wg').description("The cluster's WireGuard key (docs/tunnels.md).");
  wg.command('genkey')
    .description('Generate a WireGuard private key into a file of mode 0600 and print only its public key.')
    .requiredOption('--out <file>', 'file for the private key (base64, the format of `wg genkey`); must not exist')
    .option('--force', 'replace an existing key file')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  gwctl wg genkey --out /etc/gwcluster/wireguard.key')
    .action((o: { out: string; force?: boolean; json?: boolean }) => {
      const r = generateWireGuardKey({ out: o.out, force: o.force ?? false });
      out(o.json ? `${JSON.stringify(r)}\n` : `wrote ${r.path} (mode 0600)\npublic key ${r.publicKey}\n`);
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
    .option('--owner <user>', 'make it for the service account USER: directory 0750 and files 0640 root:USER\'s group, member.key 0600 USER (appliance/README.md); run as root')
    .option('--force', 'overwrite existing files')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  gwctl personality --ca-dir /root/gwcluster-ca --out /etc/gwcluster --cluster-name edge \\\n    --cluster-ip 198.51.100.10 --member-ip 192.0.2.11 --interface eth0 --owner gwcluster')
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
      const owner = o.owner !== undefined ? resolveOwner(o.owner as string) : undefined;
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
      if (owner) applyOwnership(dirname(r.configPath), [...r.files, ...(signed ? [signed.path] : [])], r.key, owner);
      out(
        o.json
          ? `${JSON.stringify({ ...r, ...(signed ? { bundleSignature: signed.path } : {}) })}\n`
          : `wrote ${r.configPath}\nmember certificate fingerprint ${r.fingerprint}\n${signed ? `wrote ${signed.path}\n` : ''}`,
      );
    });

  return program;
}

/**
 * A reader that stops early (gwctl --help | head -1) closes the pipe: the rest of the output has nowhere
 * to go, and that is not an error. Exit 0 quietly instead of printing node's EPIPE stack trace.
 */
export function quietOnClosedStdout(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT.ok);
    process.stderr.write(`gwctl: cannot write the output: ${e.code ?? e.message}\n`);
    process.exit(EXIT.failure);
  });
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedStdout();
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
