/**
 * The member configuration file (its "personality"): loading, validation against the schema defined once
 * in @gwcluster/contracts (member-config.ts; schema/member-config.schema.json is generated from it) with
 * errors that name the bad field, the schema's defaults, derived values, and resolution of relative paths.
 * docs/configuration.md explains each field.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ipv4Broadcast, ipv4Octets } from '@gwcluster/wire';
import { memberConfigProblems, type AdminTlsConfig, type ApplicationConfig, type DataPlaneConfig, type MemberConfig, type WireGuardConfig } from '@gwcluster/contracts';

export type { AdminTlsConfig, ApplicationConfig, DataPlaneConfig, MemberConfig, WireGuardConfig };

/** The default cluster MAC: locally administered unicast 02:00:5e:<ip> or IPv4-multicast 01:00:5e:<ip & 0x7fffff>. */
export function defaultClusterMac(method: DataPlaneConfig['method'], clusterIp: string): string {
  const b = ipv4Octets(clusterIp);
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return method === 'multicast-mac' ? `01:00:5e:${hex(b[1]! & 0x7f)}:${hex(b[2]!)}:${hex(b[3]!)}` : `02:00:5e:${hex(b[1]!)}:${hex(b[2]!)}:${hex(b[3]!)}`;
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file || 'configuration'}: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Checks the data plane section (already validated and defaulted) and fills in its derived values. */
function dataplaneConfig(d: Record<string, any>, clusterIp: string, memberInterface: string, stateDir: (p: string) => string): DataPlaneConfig {
  const method = d.method as DataPlaneConfig['method'];
  const clusterMac = ((d.clusterMac as string | undefined) ?? defaultClusterMac(method, clusterIp)).toLowerCase();
  const sessions = d.sessions as DataPlaneConfig['sessions'];
  return {
    method,
    interfaces: d.interfaces,
    clusterMac,
    path: d.path,
    queueNum: d.queueNum,
    whenDaemonDies: d.whenDaemonDies,
    forwarding: d.forwarding,
    forwardInterface: (d.forwardInterface as string | undefined) ?? memberInterface,
    ppsPerUnitWeight: d.ppsPerUnitWeight,
    bytesPerUnitWeight: d.bytesPerUnitWeight,
    hold: { ...(d.hold as DataPlaneConfig['hold']) },
    // Replication needs tracking: without it there is nothing to replicate.
    sessions: { ...sessions, sync: sessions.tracking && sessions.sync, stateFile: stateDir((sessions.stateFile as string | undefined) ?? 'sessions.state') },
  };
}

/** The WireGuard section (validated and defaulted) with its key files' paths made absolute. */
function wireGuardConfig(w: Record<string, any>, abs: (p: string) => string): WireGuardConfig {
  return {
    enabled: w.enabled,
    listenPort: w.listenPort,
    privateKeyFile: abs(w.privateKeyFile),
    interface: w.interface,
    mtu: w.mtu,
    underLoadPerSecond: w.underLoadPerSecond,
    replicateKeys: w.replicateKeys,
    forwardPort: w.forwardPort,
    peers: (w.peers as Record<string, any>[]).map((p) => ({
      publicKey: (p.publicKey as string).trim(),
      allowedIps: p.allowedIps,
      ...(p.presharedKeyFile ? { presharedKeyFile: abs(p.presharedKeyFile) } : {}),
      ...(p.name !== undefined ? { name: p.name } : {}),
    })),
  };
}

/**
 * Validates a parsed configuration object; relative paths resolve against baseDir, except the session
 * state file, which resolves against the state directory when there is one (gwclusterd --state-dir,
 * systemd's StateDirectory=). Throws ConfigError.
 */
export function parseMemberConfig(raw: unknown, file = '', baseDir = process.cwd(), stateDir?: string): MemberConfig {
  const copy = structuredClone(raw);
  // The schema and the rules across fields (the same check gwctl runs before it writes a personality).
  const problems = memberConfigProblems(copy);
  if (problems.length > 0) throw new ConfigError(file, problems);
  const c = copy as Record<string, any>;
  const member = c.member as Record<string, any>;
  const cluster = c.cluster as Record<string, any>;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const pki = c.pki as Record<string, any>;
  const admin = c.admin as Record<string, any>;
  const broadcastAddress = (cluster.broadcastAddress as string | undefined) ?? ipv4Broadcast(member.address, member.prefixLength);
  return {
    cluster: { ...(cluster as MemberConfig['cluster']), broadcastAddress },
    member: { address: member.address, prefixLength: member.prefixLength, interface: member.interface, name: member.name ?? member.address },
    pki: {
      certificate: abs(pki.certificate),
      key: abs(pki.key),
      ca: abs(pki.ca),
      ...(pki.crl ? { crl: abs(pki.crl) } : {}),
      ...(pki.allowedCertificates ? { allowedCertificates: pki.allowedCertificates } : {}),
      ...(pki.bundleSignature ? { bundleSignature: abs(pki.bundleSignature) } : {}),
    },
    admin: {
      listen: admin.listen ?? member.address,
      port: admin.port,
      ...(admin.token ? { token: admin.token } : {}),
      ...(admin.metricsToken ? { metricsToken: admin.metricsToken } : {}),
      ...(admin.tls
        ? {
            tls: {
              certificate: abs(admin.tls.certificate ?? pki.certificate),
              key: abs(admin.tls.key ?? pki.key),
              ca: abs(admin.tls.ca ?? pki.ca),
              requireClientCertificate: admin.tls.requireClientCertificate,
            },
          }
        : {}),
    },
    clusterAddress: { ...(c.clusterAddress as MemberConfig['clusterAddress']) },
    liveness: { ...(c.liveness as MemberConfig['liveness']) },
    applications: c.applications as ApplicationConfig[],
    ...(c.dataplane ? { dataplane: dataplaneConfig(c.dataplane as Record<string, any>, cluster.clusterIp as string, member.interface as string, (p) => (isAbsolute(p) ? p : resolve(stateDir ?? baseDir, p))) } : {}),
    ...(c.tunnels?.wireguard ? { tunnels: { wireguard: wireGuardConfig(c.tunnels.wireguard as Record<string, any>, abs) } } : {}),
    logLevel: c.logLevel,
    source: file,
  };
}

/** Reads and validates a configuration file. Throws ConfigError naming the file and every problem. */
export function loadMemberConfig(file: string): MemberConfig {
  const { path, raw } = readConfigJson(file);
  return parseMemberConfig(raw, path, dirname(path));
}

/** Reads a configuration file as JSON, not yet validated. Throws ConfigError naming the file. */
export function readConfigJson(file: string): { path: string; raw: unknown } {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [`cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, [`not valid JSON: ${(e as Error).message}`]);
  }
  return { path, raw };
}
