/**
 * The member configuration file (its "personality"): loading, validation against the schema defined once
 * in @gwcluster/contracts (member-config.ts; schema/member-config.schema.json is generated from it) with
 * errors that name the bad field, the schema's defaults, derived values, and resolution of relative paths.
 * docs/configuration.md explains each field.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { ipv4Broadcast, ipv4Octets } from '@gwcluster/wire';
import { MemberConfigSchema, type AdminTlsConfig, type ApplicationConfig, type DataPlaneConfig, type MemberConfig } from '@gwcluster/contracts';

export type { AdminTlsConfig, ApplicationConfig, DataPlaneConfig, MemberConfig };

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

// useDefaults fills every `default` of the schema (sections that default to {} get their fields' defaults).
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false });
(addFormatsModule as unknown as (a: Ajv) => void)(ajv);
const validate = ajv.compile(MemberConfigSchema);

function describe(e: ErrorObject): string {
  const at = e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(top level)';
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at === '(top level)' ? '' : at + '.'}${String(e.params.additionalProperty)}: unknown field (check its spelling against docs/configuration.md)`;
    case 'required':
      return `${at === '(top level)' ? '' : at + '.'}${String(e.params.missingProperty)}: required field is missing`;
    case 'enum':
      return `${at}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'format':
      return `${at}: must be ${e.params.format === 'ipv4' ? 'a dotted-quad IPv4 address' : `in ${String(e.params.format)} format`}`;
    default:
      return `${at}: ${e.message ?? 'is invalid'}`;
  }
}

/** Checks the data plane section (already validated and defaulted) and fills in its derived values. */
function dataplaneConfig(d: Record<string, any>, clusterIp: string, memberInterface: string, problems: string[], file: string): DataPlaneConfig {
  const method = d.method as DataPlaneConfig['method'];
  const clusterMac = ((d.clusterMac as string | undefined) ?? defaultClusterMac(method, clusterIp)).toLowerCase();
  const first = parseInt(clusterMac.slice(0, 2), 16);
  if (method === 'multicast-mac' && (first & 1) === 0) problems.push(`dataplane.clusterMac: ${clusterMac} is not a multicast MAC (method multicast-mac needs the group bit set)`);
  if (method === 'unicast-mac' && (first & 1) === 1) problems.push(`dataplane.clusterMac: ${clusterMac} is a multicast MAC (method unicast-mac needs a unicast one)`);
  const names = (d.interfaces as { name: string }[]).map((i) => i.name);
  if (new Set(names).size !== names.length) problems.push('dataplane.interfaces: an interface is listed twice');
  if (problems.length > 0) throw new ConfigError(file, problems);
  const sessions = d.sessions as DataPlaneConfig['sessions'];
  return {
    method,
    interfaces: d.interfaces,
    clusterMac,
    path: d.path,
    queueNum: d.queueNum,
    forwarding: d.forwarding,
    forwardInterface: (d.forwardInterface as string | undefined) ?? memberInterface,
    ppsPerUnitWeight: d.ppsPerUnitWeight,
    bytesPerUnitWeight: d.bytesPerUnitWeight,
    hold: { ...(d.hold as DataPlaneConfig['hold']) },
    // Replication needs tracking: without it there is nothing to replicate.
    sessions: { ...sessions, sync: sessions.tracking && sessions.sync },
  };
}

/** Validates a parsed configuration object; relative paths resolve against baseDir. Throws ConfigError. */
export function parseMemberConfig(raw: unknown, file = '', baseDir = process.cwd()): MemberConfig {
  const copy = structuredClone(raw);
  if (!validate(copy)) throw new ConfigError(file, (validate.errors ?? []).map(describe));
  const c = copy as Record<string, any>;
  const problems: string[] = [];
  const member = c.member as Record<string, any>;
  const cluster = c.cluster as Record<string, any>;
  if (cluster.clusterIp === member.address) problems.push('cluster.clusterIp: must differ from member.address');
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const pki = c.pki as Record<string, any>;
  const admin = c.admin as Record<string, any>;
  const broadcastAddress = (cluster.broadcastAddress as string | undefined) ?? ipv4Broadcast(member.address, member.prefixLength);
  if (problems.length > 0) throw new ConfigError(file, problems);
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
    applications: c.applications as ApplicationConfig[],
    ...(c.dataplane ? { dataplane: dataplaneConfig(c.dataplane as Record<string, any>, cluster.clusterIp as string, member.interface as string, problems, file) } : {}),
    logLevel: c.logLevel,
    source: file,
  };
}

/** Reads and validates a configuration file. Throws ConfigError naming the file and every problem. */
export function loadMemberConfig(file: string): MemberConfig {
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
  return parseMemberConfig(raw, path, dirname(path));
}
