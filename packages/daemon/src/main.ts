/**
 * gwclusterd: one member of a gwcluster cluster.
 *
 *   gwclusterd --config /etc/gwcluster/member.json
 *
 * Exit codes: 0 stopped by signal; 2 bad configuration or personality (the message names the file and
 * field); 70 internal error.
 */
import { readFileSync, statSync } from 'node:fs';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { BundleError, TrustStore, certificateChainFromPem, packageRootOf, softwarePackageRoots, verifyBundle } from '@gwcluster/security';
import { ConfigError, loadMemberConfig, type MemberConfig } from './config/config.js';
import { UdpTransport } from './control/udp-transport.js';
import { InterfaceClusterAddress, NoClusterAddress, type ClusterAddress } from './control/cluster-address.js';
import { MemberNode, type Credentials } from './control/member-node.js';
import { applicationsFromConfig } from './control/applications.js';
import { DataPlane } from './dataplane/data-plane.js';
import { isStateSyncMessage } from './sync/replication.js';
import { AdminListenError, startAdminServer } from './operator/server.js';
import { OperatorChannel } from './operator/operator-channel.js';
import { createMetrics } from './operator/metrics.js';
import { EMPTY_PROVIDERS, NO_SESSIONS, type OperatorProviders } from './operator/providers.js';
import { LogRing } from './operator/log-ring.js';
import { redactSecrets } from './config/redact.js';
import { unitCaptureSource } from './dataplane/unit-capture.js';

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

/** A directory anyone may write to lets anyone replace the personality's files (and the token with them). */
function refuseWorldWritableDirectory(file: string, what: string): void {
  const dir = dirname(file);
  let mode: number;
  try {
    mode = statSync(dir).mode;
  } catch (e) {
    throw new BootError(dir, `cannot stat the directory of the ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if ((mode & 0o002) !== 0) throw new BootError(dir, `the directory of the ${what} is writable by everyone (mode ${(mode & 0o7777).toString(8)}); chmod 700 it (or 755)`);
}

/** The private key must be the one the leaf certificate certifies; otherwise every signature is refused by the peers. */
function checkKeyMatchesCertificate(keyFile: string, keyPem: string, certFile: string, leafDer: Uint8Array): void {
  let publicOfKey: Buffer;
  try {
    publicOfKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  } catch (e) {
    throw new BootError(keyFile, `not a PEM private key: ${(e as Error).message}`);
  }
  const publicOfCert = new X509Certificate(leafDer).publicKey.export({ type: 'spki', format: 'der' });
  if (!publicOfKey.equals(publicOfCert)) throw new BootError(keyFile, `this private key does not belong to the member certificate ${certFile}; install the key issued with it (gwctl personality makes both)`);
}

/** Reads and checks the member's certificate, key, CA and CRL (the personality's security part). */
export function loadCredentials(config: MemberConfig, nowMs = Date.now()): Credentials {
  refuseWorldWritableDirectory(config.source, 'configuration');
  refuseWorldWritableDirectory(config.pki.key, 'private key');
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
  checkKeyMatchesCertificate(config.pki.key, keyPem, config.pki.certificate, chain[0]!);
  const verdict = trust.verifyChain(chain, config.member.address, nowMs);
  if (!verdict.ok) throw new BootError(config.pki.certificate, `this member's own certificate is refused (${verdict.code}): ${verdict.reason}`);
  if (config.pki.bundleSignature) {
    try {
      const files = { config: config.source, certificate: config.pki.certificate, ca: config.pki.ca, ...(config.pki.crl ? { crl: config.pki.crl } : {}) };
      verifyBundle(config.pki.bundleSignature, files, caPem, softwarePackageRoots(packageRootOf(fileURLToPath(import.meta.url))));
    } catch (e) {
      if (e instanceof BundleError) throw new BootError(e.file, e.message.slice(e.file.length + 2));
      throw e;
    }
  }
  return { certChainDer: chain, keyPem, caPem, ...(crlPem ? { crlPem } : {}) };
}

/**
 * TEST ONLY: GWCLUSTERD_TEST_CLOCK_OFFSET_MS (integer ms, |offset| <= 1 day) shifts the wall clock the
 * cluster protocol sees (message timestamps, incarnation, operator request ids), as a member whose clock
 * is that far off would (test/security/clock-skew). Not a configuration field: a member never needs it.
 */
export const TEST_CLOCK_OFFSET_ENV = 'GWCLUSTERD_TEST_CLOCK_OFFSET_MS';

function testClockOffsetMs(config: MemberConfig): number {
  const raw = process.env[TEST_CLOCK_OFFSET_ENV];
  if (raw === undefined || raw === '') return 0;
  const offset = Number(raw);
  if (!Number.isSafeInteger(offset) || Math.abs(offset) > 86_400_000) {
    throw new BootError(config.source, `environment ${TEST_CLOCK_OFFSET_ENV}="${raw}" must be an integer number of ms within ±86400000 (it is for tests only; unset it)`);
  }
  return offset;
}

export interface RunningMember {
  readonly node: MemberNode;
  readonly dataPlane?: DataPlane;
  stop(): Promise<void>;
}

export async function runMember(config: MemberConfig): Promise<RunningMember> {
  // Every line goes to stdout (the journal) and to a bounded ring in memory (GET /v1/logs, gwctl diagnose).
  const logs = new LogRing();
  const logger = pino(
    { level: config.logLevel, base: { service: 'gwclusterd', cluster: config.cluster.name } },
    pino.multistream([
      { level: 'trace', stream: process.stdout },
      { level: 'trace', stream: logs },
    ]),
  );
  const credentials = loadCredentials(config);
  const clockOffsetMs = testClockOffsetMs(config);
  const wallClock = clockOffsetMs === 0 ? () => Date.now() : () => Date.now() + clockOffsetMs;
  if (clockOffsetMs !== 0) logger.warn({ clockOffsetMs }, `${TEST_CLOCK_OFFSET_ENV} is set: the protocol's wall clock is shifted by ${clockOffsetMs} ms (tests only)`);
  let transport: UdpTransport;
  try {
    // Bound to the member and broadcast addresses only; anything from outside the cluster subnet is dropped
    // before it is decoded (docs/security.md).
    transport = await UdpTransport.open({
      port: config.cluster.port,
      broadcastAddress: config.cluster.broadcastAddress,
      localAddress: config.member.address,
      sourceSubnet: { address: config.member.address, prefixLength: config.member.prefixLength },
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new BootError(
      config.source,
      `cluster.port ${config.cluster.port}: cannot bind UDP on ${config.member.address} and ${config.cluster.broadcastAddress} (${code})${code === 'EADDRNOTAVAIL' ? '; member.address must be an address of this host (ip addr)' : ''}`,
    );
  }
  // With a data plane the packet engine answers ARP for the cluster IPs (on the master only); without
  // one the master binds the cluster IP to its interface.
  let node: MemberNode | undefined;
  let dataPlane: DataPlane | undefined;
  if (config.dataplane) {
    // The kernel path loads a BPF program: only imported when configured.
    const path =
      config.dataplane.path === 'kernel'
        ? await import('./dataplane/kernel-path.js').then((m) => ({ packetPath: m.kernelPacketPath, kernel: m.kernelPathSetup }))
        : await import('./dataplane/nfqueue-path.js').then((m) => ({ packetPath: m.nfqueuePacketPath }));
    dataPlane = new DataPlane({
      config: config.dataplane,
      self: config.member.address,
      logger: logger.child({ component: 'dataplane', member: config.member.address }),
      ...path,
      onUnitNeedsOwner: (unit) => node?.submit({ type: 'unit-needs-owner', unit }),
      onLoad: (load, busiest) => node?.reportLoad(load, busiest),
      send: (to, message, opts) => node?.sendControl(to, message, opts),
      submit: (event) => node?.submit(event),
    });
    try {
      await dataPlane.start();
    } catch (e) {
      await transport.close();
      await dataPlane.stop().catch(() => {});
      throw new BootError(config.source, `dataplane: cannot start: ${(e as Error).message}`);
    }
  }
  const clusterAddress: ClusterAddress =
    dataPlane ??
    (config.clusterAddress.mode === 'interface'
      ? new InterfaceClusterAddress(config.cluster.clusterIp, config.member.interface, (what, err) => logger.error({ err: err.message }, `cluster address: ${what} failed`))
      : new NoClusterAddress());
  // A previous run may have died as master: never start out answering for the cluster IP.
  await clusterAddress.release();
  node = new MemberNode({
    config,
    credentials,
    transport,
    clusterAddress,
    applications: applicationsFromConfig(config.applications),
    logger,
    wallClock,
    ...(dataPlane ? { dataPlane } : {}),
  });
  // State-sync plane messages go to the session replication (a stateless member drops them).
  const sessions = dataPlane?.sessions ?? null;
  node.addPlaneHandler((from, message) => (isStateSyncMessage(message) ? (sessions?.handleMessage(from, message), true) : false));
  const capture = config.dataplane
    ? unitCaptureSource({
        interfaces: [config.member.interface, ...config.dataplane.interfaces.map((i) => i.name)],
        clusterIps: [config.cluster.clusterIp, ...config.dataplane.interfaces.flatMap((i) => i.clusterIps)],
      })
    : null;
  const providers: OperatorProviders = dataPlane ? { sessions: sessions ?? NO_SESSIONS, traffic: dataPlane.traffic, sync: sessions, capture } : EMPTY_PROVIDERS;
  // The operator plane (forwarded actions, configuration propagation) and the Prometheus metrics.
  const channel = new OperatorChannel({ node, wallClock });
  const metrics = createMetrics({ node, providers, processMetrics: true, certificates: () => ({ member: credentials.certChainDer[0], ca: credentials.caPem }) });
  let admin;
  try {
    admin = await startAdminServer({
      node,
      channel,
      metrics,
      logger,
      providers,
      logs,
      memberConfig: () => redactSecrets(config) as Record<string, unknown>,
      host: config.admin.listen,
      port: config.admin.port,
      ...(config.admin.token ? { token: config.admin.token } : {}),
      ...(config.admin.metricsToken ? { metricsToken: config.admin.metricsToken } : {}),
      ...(config.admin.tls ? { tls: config.admin.tls } : {}),
    });
  } catch (e) {
    await transport.close();
    await dataPlane?.stop();
    if (e instanceof AdminListenError) throw new BootError(config.source, e.message);
    throw e;
  }
  node.start();
  return {
    node,
    ...(dataPlane ? { dataPlane } : {}),
    async stop() {
      await node!.stop();
      channel.close();
      metrics.close();
      await admin.close();
      await dataPlane?.stop();
      await transport.close();
    },
  };
}

export async function main(argv: string[]): Promise<void> {
  let values: { config?: string; help?: boolean; check?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, check: { type: 'boolean' } }, strict: true }));
  } catch (e) {
    process.stderr.write(`gwclusterd: ${(e as Error).message}\nusage: gwclusterd --config FILE [--check]\n`);
    process.exit(2);
  }
  if (values.help || !values.config) {
    process.stdout.write(
      'usage: gwclusterd --config FILE [--check]\n\nRuns one member of a gwcluster cluster. FILE is the member configuration (docs/configuration.md).\n--check: verify the personality (schema, certificate chain and dates, key permissions, bundle signature) and exit.\n',
    );
    process.exit(values.help ? 0 : 2);
  }
  if (values.check) {
    try {
      const config = loadMemberConfig(values.config);
      loadCredentials(config);
      process.stdout.write(`gwclusterd: personality ${config.source} is valid${config.pki.bundleSignature ? '; bundle signature verified' : ' (no bundle signature configured)'}\n`);
      process.exit(0);
    } catch (e) {
      if (e instanceof ConfigError || e instanceof BootError) {
        process.stderr.write(`gwclusterd: cannot boot: ${e.message}\n`);
        process.exit(2);
      }
      throw e;
    }
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
    member.node.submit({ type: 'shutdown' });
    void member.stop().finally(() => {
      process.stderr.write(`gwclusterd: stopped on ${signal}\n`);
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
