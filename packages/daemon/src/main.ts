/**
 * gwclusterd: one member of a gwcluster cluster.
 *
 *   gwclusterd --config /etc/gwcluster/member.json
 *
 * Exit codes: 0 stopped by signal; 2 bad configuration or personality (the message names the file and
 * field); 70 internal error.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { TrustStore, certificateChainFromPem } from '@gwcluster/security';
import { ConfigError, loadMemberConfig, type MemberConfig } from './config.js';
import { UdpTransport } from './transport.js';
import { InterfaceClusterAddress, NoClusterAddress, type ClusterAddress } from './cluster-address.js';
import { MemberNode, type Credentials } from './member-node.js';
import { applicationsFromConfig } from './applications.js';
import { AdminListenError, startAdminServer } from './server.js';

export class BootError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'BootError';
  }
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new BootError(file, `cannot read the ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Reads and checks the member's certificate, key, CA and CRL (the personality's security part). */
export function loadCredentials(config: MemberConfig, nowMs = Date.now()): Credentials {
  const certPem = readText(config.pki.certificate, 'member certificate');
  const keyPem = readText(config.pki.key, 'member private key');
  const caPem = readText(config.pki.ca, 'cluster CA certificate');
  const crlPem = config.pki.crl ? readText(config.pki.crl, 'revocation list') : undefined;
  const mode = statSync(config.pki.key).mode & 0o077;
  if (mode !== 0) throw new BootError(config.pki.key, `private key is readable by group or others (mode ${(statSync(config.pki.key).mode & 0o777).toString(8)}); chmod 600 it`);
  let chain: Uint8Array[];
  try {
    chain = certificateChainFromPem(certPem);
  } catch (e) {
    throw new BootError(config.pki.certificate, `not a PEM certificate chain: ${(e as Error).message}`);
  }
  if (chain.length === 0) throw new BootError(config.pki.certificate, 'holds no certificate');
  let trust: TrustStore;
  try {
    trust = new TrustStore({ caCertPem: caPem, ...(crlPem ? { crlPem } : {}), ...(config.pki.allowedCertificates ? { allowedFingerprints: config.pki.allowedCertificates } : {}) });
  } catch (e) {
    throw new BootError(config.pki.ca, (e as Error).message);
  }
  const verdict = trust.verifyChain(chain, config.member.address, nowMs);
  if (!verdict.ok) throw new BootError(config.pki.certificate, `this member's own certificate is refused (${verdict.code}): ${verdict.reason}`);
  return { certChainDer: chain, keyPem, caPem, ...(crlPem ? { crlPem } : {}) };
}

export interface RunningMember {
  readonly node: MemberNode;
  stop(): Promise<void>;
}

export async function runMember(config: MemberConfig): Promise<RunningMember> {
  const logger = pino({ level: config.logLevel, base: { service: 'gwclusterd', cluster: config.cluster.name } });
  const credentials = loadCredentials(config);
  let transport: UdpTransport;
  try {
    transport = await UdpTransport.open({ port: config.cluster.port, broadcastAddress: config.cluster.broadcastAddress, localAddress: config.member.address });
  } catch (e) {
    throw new BootError(config.source, `cluster.port ${config.cluster.port}: cannot bind UDP (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const clusterAddress: ClusterAddress =
    config.clusterAddress.mode === 'interface'
      ? new InterfaceClusterAddress(config.cluster.clusterIp, config.member.interface, (what, err) => logger.error({ err: err.message }, `cluster address: ${what} failed`))
      : new NoClusterAddress();
  // A previous run may have died as master: never start out answering for the cluster IP.
  await clusterAddress.release();
  const node = new MemberNode({ config, credentials, transport, clusterAddress, applications: applicationsFromConfig(config.applications), logger });
  let admin;
  try {
    admin = await startAdminServer({ node, logger, host: config.admin.listen, port: config.admin.port, ...(config.admin.token ? { token: config.admin.token } : {}) });
  } catch (e) {
    await transport.close();
    if (e instanceof AdminListenError) throw new BootError(config.source, e.message);
    throw e;
  }
  node.start();
  return {
    node,
    async stop() {
      await node.stop();
      await admin.close();
      await transport.close();
    },
  };
}

export async function main(argv: string[]): Promise<void> {
  let values: { config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`gwclusterd: ${(e as Error).message}\nusage: gwclusterd --config FILE\n`);
    process.exit(2);
  }
  if (values.help || !values.config) {
    process.stdout.write('usage: gwclusterd --config FILE\n\nRuns one member of a gwcluster cluster. FILE is the member configuration (docs/configuration.md).\n');
    process.exit(values.help ? 0 : 2);
  }
  let member: RunningMember;
  try {
    member = await runMember(loadMemberConfig(values.config));
  } catch (e) {
    if (e instanceof ConfigError || e instanceof BootError) {
      process.stderr.write(`gwclusterd: cannot boot: ${e.message}\n`);
      process.exit(2);
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`gwclusterd: cannot boot: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
    process.exit(70);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    member.node.core.counters['shutdown'] = 1;
    void member.stop().finally(() => {
      process.stderr.write(`gwclusterd: stopped on ${signal}\n`);
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
