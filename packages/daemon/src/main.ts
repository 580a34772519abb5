/**
 * gwclusterd: one member of a gwcluster cluster.
 *
 *   gwclusterd --config /etc/gwcluster/member.json [--state-dir /var/lib/gwcluster]
 *
 * Signals: SIGTERM and SIGINT leave the cluster (EXIT CLUSTER) and stop; SIGHUP reloads the configuration
 * file and credentials without leaving the cluster (reload.ts).
 *
 * Exit codes: 0 stopped by signal (or --help, --version); 2 bad configuration or personality (the message
 * names the file and field); 70 internal error; 75 an address to bind is still not on this host after the
 * bind retry window (BIND_RETRY: the address may come up late at boot; systemd restarts the unit).
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { sdNotify } from '@gwcluster/native-addon';
import { ConfigError, type MemberConfig } from './config/config.js';
import { AdoptedConfigStore, loadMemberConfigWithState } from './config/adopted-config.js';
import { BootError, loadCredentialsAndTrust } from './config/credentials.js';
import { MemberReloader, type ReloadOutcome } from './reload.js';
import { UdpTransport } from './control/udp-transport.js';
import { InterfaceClusterAddress, NoClusterAddress, type ClusterAddress } from './control/cluster-address.js';
import { InterfaceAddressHolder, NoAddressHolder, removeStaleAddresses, type AddressHolder } from './control/held-addresses.js';
import { AffinityAddressHolder, NftAffinityKernel } from './control/pool-affinity.js';
import { MemberNode } from './control/member-node.js';
import { applicationsFromConfig } from './control/applications.js';
import { DataPlane } from './dataplane/data-plane.js';
import { isStateSyncMessage } from './sync/replication.js';
import { AdminListenError, startAdminServer } from './operator/server.js';
import { OperatorChannel } from './operator/operator-channel.js';
import { createMetrics } from './operator/metrics.js';
import { EMPTY_PROVIDERS, NO_SESSIONS, type OperatorProviders } from './operator/providers.js';
import { EventLoopWatch } from './operator/event-loop-watch.js';
import { BindRetryExhausted, bindWithRetry } from './control/bind-retry.js';
import { versionLine } from './version.js';
import { LogRing } from './operator/log-ring.js';
import { redactSecrets } from './config/redact.js';
import { unitCaptureSource } from './dataplane/unit-capture.js';
import { livenessPort, openFastLiveness, type FastLiveness } from './control/fast-liveness.js';
import { WireGuardTunnels } from './tunnels/wireguard-tunnels.js';
import { loadWireGuardKeys } from './tunnels/wireguard-keys.js';
import { readiness } from './operator/readiness.js';
import { ServiceNotifier, serviceNotifierFromEnv } from './service-notify.js';

/** Exit code when an address is still missing after the bind retry window: temporary, so systemd restarts. */
export const EXIT_ADDRESS_NOT_AVAILABLE = 75;

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

export { BootError, loadCredentials } from './config/credentials.js';

export interface RunningMember {
  readonly node: MemberNode;
  readonly dataPlane?: DataPlane;
  /** Reads the configuration file again and applies what can change live (reload.ts). Never throws. */
  reload(): ReloadOutcome;
  stop(): Promise<void>;
}

export async function runMember(
  config: MemberConfig,
  opts: {
    readonly state?: AdoptedConfigStore | null;
    readonly notifier?: ServiceNotifier | null;
    /** Fields of this release that the configuration held for it (adopted while an older release ran). */
    readonly releasedHeldFields?: readonly string[];
  } = {},
): Promise<RunningMember> {
  // Every line goes to stdout (the journal) and to a bounded ring in memory (GET /v1/logs, gwctl diagnose).
  const logs = new LogRing();
  const logger = pino(
    { level: config.logLevel, base: { service: 'gwclusterd', cluster: config.cluster.name } },
    pino.multistream([
      { level: 'trace', stream: process.stdout },
      { level: 'trace', stream: logs },
    ]),
  );
  const { credentials, trust } = loadCredentialsAndTrust(config);
  const clockOffsetMs = testClockOffsetMs(config);
  const wallClock = clockOffsetMs === 0 ? () => Date.now() : () => Date.now() + clockOffsetMs;
  if (opts.releasedHeldFields && opts.releasedHeldFields.length > 0) {
    logger.info(
      { fields: opts.releasedHeldFields, configVersion: config.cluster.configVersion },
      `configuration version ${config.cluster.configVersion}: field(s) adopted while an older release ran, which it could not apply, now in force: ${opts.releasedHeldFields.join(', ')}`,
    );
  }
  if (clockOffsetMs !== 0) logger.warn({ clockOffsetMs }, `${TEST_CLOCK_OFFSET_ENV} is set: the protocol's wall clock is shifted by ${clockOffsetMs} ms (tests only)`);
  let transport: UdpTransport;
  const retryLog = (info: { what: string; attempt: number; code: string; delayMs: number }) =>
    logger.warn(info, `${info.what}: ${info.code} (the address is not on this host yet); attempt ${info.attempt}, trying again in ${info.delayMs} ms`);
  try {
    // Bound to the member and broadcast addresses only; anything from outside the cluster subnet is dropped
    // before it is decoded (docs/security.md). The address may come up after gwclusterd at boot: retried.
    transport = await bindWithRetry(
      `cluster.port ${config.cluster.port} on ${config.member.address}`,
      () =>
        UdpTransport.open({
          port: config.cluster.port,
          broadcastAddress: config.cluster.broadcastAddress,
          localAddress: config.member.address,
          sourceSubnet: { address: config.member.address, prefixLength: config.member.prefixLength },
        }),
      retryLog,
    );
  } catch (e) {
    if (e instanceof BindRetryExhausted) throw e;
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
    const dpLog = logger.child({ component: 'dataplane', member: config.member.address });
    const path =
      config.dataplane.path === 'kernel'
        ? await import('./dataplane/kernel-path.js').then((m) => ({ packetPath: m.kernelPacketPath, kernel: m.kernelPathSetup }))
        : config.dataplane.path === 'auto'
          ? await import('./dataplane/kernel-path.js').then((m) => ({
              packetPath: m.autoPacketPathFactory((why) =>
                dpLog.warn({ path: 'nfqueue', why }, 'dataplane.path auto: the kernel fast path is not available here; every packet is decided in user space (nfqueue), at a fraction of the throughput'),
              ),
              kernel: m.kernelPathSetup,
            }))
          : await import('./dataplane/nfqueue-path.js').then((m) => ({ packetPath: m.nfqueuePacketPath }));
    dataPlane = new DataPlane({
      config: config.dataplane,
      self: config.member.address,
      localAddresses: config.cluster.addressPool.map((p) => p.address),
      logger: dpLog,
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
  // WireGuard (tunnels.wireguard): on the cluster IP, which the data plane has just put on lo.
  const tunnels = new WireGuardTunnels({
    clusterIp: config.cluster.clusterIp,
    logger: logger.child({ component: 'tunnels', member: config.member.address }),
    owners: () => node?.status().owners ?? [],
    // Tunnel state travels with the sessions (docs/tunnels.md, "Replication and takeover").
    self: config.member.address,
    members: () => node?.status().members.map((m) => m.id) ?? [],
    ownedUnits: () => node?.status().ownedUnits ?? [],
    replicated: Boolean(dataPlane?.sessions && config.dataplane?.sessions.sync),
  });
  dataPlane?.sessions?.attachExtra(tunnels.sync);
  try {
    await tunnels.apply(config);
  } catch (e) {
    await transport.close();
    await dataPlane?.stop();
    throw e;
  }
  const clusterAddress: ClusterAddress =
    dataPlane ??
    (config.clusterAddress.mode === 'interface'
      ? new InterfaceClusterAddress(config.cluster.clusterIp, config.member.interface, (what, err) => logger.error({ err: err.message }, `cluster address: ${what} failed`))
      : new NoClusterAddress());
  // A previous run may have died as master: never start out answering for the cluster IP.
  await clusterAddress.release();
  // Nor for pool addresses (a previous run killed together with its address leases).
  const leases: AddressHolder =
    config.clusterAddress.mode === 'interface'
      ? new InterfaceAddressHolder(config.member.interface, (what, detail) => logger.error({ err: detail }, `address pool: ${what} failed`))
      : new NoAddressHolder();
  if (config.clusterAddress.mode === 'interface') await removeStaleAddresses(config.cluster.addressPool);
  // Affinity: a pool address that moves keeps its old connections on the member that serves them.
  const affinityLog = logger.child({ component: 'address-pool', member: config.member.address });
  const affinity =
    config.clusterAddress.mode === 'interface'
      ? new AffinityAddressHolder({
          self: config.member.address,
          inner: leases,
          kernel: new NftAffinityKernel(),
          send: (to, message) => node?.sendControl(to, message),
          members: () => node?.status().members.map((m) => m.id) ?? [],
          log: (level, msg, fields) => affinityLog[level](fields ?? {}, msg),
        })
      : null;
  try {
    await affinity?.start();
  } catch (e) {
    await transport.close();
    await dataPlane?.stop();
    tunnels.stop();
    throw new BootError(config.source, `address pool: cannot set up affinity (nft): ${(e as Error).message}`);
  }
  const addressHolder: AddressHolder = affinity ?? leases;
  const incarnation = wallClock();
  let liveness: FastLiveness | null;
  try {
    liveness = openFastLiveness(config, incarnation, logger.child({ component: 'liveness', member: config.member.address }));
  } catch (e) {
    tunnels.stop();
    await transport.close();
    await dataPlane?.stop();
    throw new BootError(config.source, `liveness: cannot start (UDP ${livenessPort(config)} on ${config.member.address}): ${(e as Error).message}`);
  }
  node = new MemberNode({
    config,
    credentials,
    incarnation,
    ...(liveness ? { liveness } : {}),
    transport,
    clusterAddress,
    addressHolder,
    applications: applicationsFromConfig(config.applications),
    logger,
    wallClock,
    ...(dataPlane ? { dataPlane } : {}),
  });
  liveness?.attach(node);
  // State-sync plane messages go to the session replication (a stateless member drops them).
  const sessions = dataPlane?.sessions ?? null;
  node.addPlaneHandler((from, message) => (isStateSyncMessage(message) ? (sessions?.handleMessage(from, message), true) : false));
  node.addPlaneHandler((from, message) => (message.type === 'pool-affinity' ? (affinity?.onMessage(from, message), true) : false));
  const capture = config.dataplane
    ? unitCaptureSource({
        interfaces: [config.member.interface, ...config.dataplane.interfaces.map((i) => i.name)],
        clusterIps: [config.cluster.clusterIp, ...config.dataplane.interfaces.flatMap((i) => i.clusterIps)],
      })
    : null;
  const providers: OperatorProviders = dataPlane ? { sessions: sessions ?? NO_SESSIONS, traffic: dataPlane.traffic, sync: sessions, capture, tunnels } : { ...EMPTY_PROVIDERS, tunnels };
  // The operator plane (forwarded actions, configuration propagation) and the Prometheus metrics.
  // With a state directory adopted versions go there, and the configuration file is never written.
  const state = opts.state ?? null;
  const channel = new OperatorChannel({
    node,
    wallClock,
    ...(state ? { writeConfigFile: (_file: string, raw: Record<string, unknown>) => state.write(raw), readConfigFile: (c: MemberConfig) => state.configFile(c) } : {}),
  });
  // The certificates in force: a reload (SIGHUP) may renew them.
  let reloader: MemberReloader | undefined;
  const current = () => reloader?.currentCredentials ?? credentials;
  const metrics = createMetrics({ node, providers, processMetrics: true, certificates: () => ({ member: current().certChainDer[0], ca: current().caPem }) });
  const eventLoop = new EventLoopWatch();
  let admin;
  try {
    admin = await bindWithRetry(
      `admin API on ${config.admin.listen}:${config.admin.port}`,
      () =>
        startAdminServer({
          node: node!,
          channel,
          metrics,
          logger,
          providers,
          eventLoop,
          logs,
          memberConfig: () => redactSecrets(config) as Record<string, unknown>,
          ...(dataPlane ? { dataPlane } : {}),
          host: config.admin.listen,
          port: config.admin.port,
          ...(config.admin.token ? { token: config.admin.token } : {}),
          ...(config.admin.metricsToken ? { metricsToken: config.admin.metricsToken } : {}),
          ...(config.admin.tls ? { tls: config.admin.tls } : {}),
        }),
      retryLog,
    );
  } catch (e) {
    eventLoop.close();
    channel.close();
    metrics.close();
    liveness?.close();
    tunnels.stop();
    await transport.close();
    await dataPlane?.stop();
    if (e instanceof AdminListenError) throw new BootError(config.source, e.message);
    throw e;
  }
  node.start();
  const running = node;
  opts.notifier?.attach(
    {
      readiness: () => readiness(running, dataPlane),
      status: () => statusLine(running),
      live: () => !eventLoop.stalled(),
    },
    logger,
  );
  reloader = new MemberReloader({ node, admin, credentials, trust, tunnels, ...(opts.state ? { load: (file: string) => loadMemberConfigWithState(file, opts.state ?? null) } : {}) });
  return {
    node,
    reload: () => reloader.reload(),
    ...(dataPlane ? { dataPlane } : {}),
    async stop() {
      await node!.stop();
      // After the EXIT CLUSTER: the peers are told this member leaves (they disarm, no death is reported).
      liveness?.close({ announceLeaving: true });
      channel.close();
      metrics.close();
      eventLoop.close();
      await admin.close();
      tunnels.stop();
      await dataPlane?.stop();
      await transport.close();
    },
  };
}

/** One line for the service manager's STATUS=: role, master, units, configuration version. */
function statusLine(node: MemberNode): string {
  const c = node.core;
  const role = c.role === 'member' ? `member (master ${c.master})` : c.role;
  return `${role}, ${c.owned.size} units, configuration version ${c.configVersion}`;
}

/** The state directory: --state-dir, else the first of systemd's $STATE_DIRECTORY (colon-separated), else none. */
export function stateStore(flag: string | undefined, env: string | undefined): AdoptedConfigStore | null {
  const dir = flag ?? (env ? env.split(':')[0] : undefined);
  return dir ? new AdoptedConfigStore(dir) : null;
}

export async function main(argv: string[]): Promise<void> {
  let values: { config?: string; help?: boolean; check?: boolean; version?: boolean; 'state-dir'?: string };
  const usage = 'usage: gwclusterd --config FILE [--state-dir DIR] [--check]\n       gwclusterd --version\n';
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, 'state-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' }, check: { type: 'boolean' }, version: { type: 'boolean', short: 'V' } },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`gwclusterd: ${(e as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (values.version) {
    process.stdout.write(`${versionLine('gwclusterd')}\n`);
    process.exit(0);
  }
  if (values.help || !values.config) {
    process.stdout.write(
      `${usage}\nRuns one member of a gwcluster cluster. FILE is the member configuration (docs/configuration.md).\n--state-dir: where adopted cluster configuration versions are kept (default $STATE_DIRECTORY, set by systemd's StateDirectory=); without one they are written to FILE.\n--check: verify the personality (schema, certificate chain and dates, key permissions, bundle signature) and exit.\n--version: print the software release, the cluster protocol and admin API versions.\n\nExit codes: 0 stopped by a signal; 2 bad configuration or personality; 70 internal error; 75 an address to bind still missing after the retry window.\n`,
    );
    process.exit(values.help ? 0 : 2);
  }
  const state = stateStore(values['state-dir'], process.env.STATE_DIRECTORY);
  if (values.check) {
    try {
      const config = loadMemberConfigWithState(values.config, state);
      loadCredentialsAndTrust(config);
      if (config.tunnels?.wireguard) loadWireGuardKeys(config.tunnels.wireguard);
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
  // Type=notify (service-notify.ts): started before the member, so the watchdog runs during a bind retry.
  const notifier = serviceNotifierFromEnv(process.env, (address, line) => void sdNotify(line, address), {
    info: (msg) => process.stderr.write(`gwclusterd: ${msg}\n`),
    warn: (_fields, msg) => process.stderr.write(`gwclusterd: ${msg}\n`),
  });
  notifier?.start();
  let member: RunningMember;
  try {
    let releasedHeldFields: readonly string[] = [];
    const config = loadMemberConfigWithState(values.config, state, (fields) => (releasedHeldFields = fields));
    member = await runMember(config, { state, notifier, releasedHeldFields });
  } catch (e) {
    if (e instanceof ConfigError || e instanceof BootError) {
      process.stderr.write(`gwclusterd: cannot boot: ${e.message}\n`);
      process.exit(2);
    }
    if (e instanceof BindRetryExhausted) {
      process.stderr.write(`gwclusterd: cannot boot: ${e.message}; the address is not configured on this host (ip addr), check member.address / admin.listen\n`);
      process.exit(EXIT_ADDRESS_NOT_AVAILABLE);
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`gwclusterd: cannot boot: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
    process.exit(70);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    notifier?.stopping(signal);
    member.node.submit({ type: 'shutdown' });
    void member.stop().finally(() => {
      process.stderr.write(`gwclusterd: stopped on ${signal}\n`);
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 2000).unref();
  };
  // SIGHUP (systemctl reload): re-read the configuration and credentials; the member stays in the cluster.
  process.on('SIGHUP', () => {
    if (stopping) return;
    notifier?.reloading();
    const outcome = member.reload();
    notifier?.reloaded(outcome.ok ? `reload applied${outcome.changed.length ? `: ${outcome.changed.join(', ')}` : ''}` : `reload refused, the running configuration is kept: ${outcome.error}`);
  });
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
