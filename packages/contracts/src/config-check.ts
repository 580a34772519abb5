/**
 * The check of a member configuration's JSON that gwclusterd runs at boot (and `--check`) and gwctl runs
 * before it writes a personality: the schema (every problem, each naming the field) and the rules across
 * fields. Fills the schema's defaults into the object it is given.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { MemberConfigSchema } from './member-config.js';

let compiled: ValidateFunction | undefined;

/** The compiled schema, made on first use (so that a gwctl command that checks nothing does not pay for it). */
function validator(): ValidateFunction {
  if (!compiled) {
    // useDefaults fills every `default` of the schema (sections that default to {} get their fields' defaults).
    const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false });
    (addFormatsModule as unknown as (a: Ajv) => void)(ajv);
    compiled = ajv.compile(MemberConfigSchema);
  }
  return compiled;
}

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

/**
 * The problems of `raw` as a member configuration, each naming its field; [] when it is valid. `raw` is
 * modified: the schema's defaults are filled in (pass a copy to keep the original).
 */
export function memberConfigProblems(raw: unknown): string[] {
  const validate = validator();
  if (!validate(raw)) return (validate.errors ?? []).map(describe);
  const c = raw as Record<string, any>;
  const problems: string[] = [];
  if (c.cluster.clusterIp === c.member.address) problems.push('cluster.clusterIp: must differ from member.address');
  problems.push(...addressPoolProblems(c.cluster.addressPool as { address: string; interface: string }[], c.cluster.clusterIp as string, c.member as { address: string; prefixLength: number; interface: string }));
  const admin = c.admin as Record<string, any> | undefined;
  if (admin?.metricsToken !== undefined && admin.metricsToken === admin.token) problems.push('admin.metricsToken: must differ from admin.token (the metrics token is the read-only one)');
  const d = c.dataplane as Record<string, any> | undefined;
  if (d) {
    const mac = typeof d.clusterMac === 'string' ? (d.clusterMac as string).toLowerCase() : undefined;
    // The default cluster MAC (01:00:5e:... for multicast-mac, 02:00:5e:... otherwise) always fits its method.
    if (mac !== undefined) {
      const group = (parseInt(mac.slice(0, 2), 16) & 1) === 1;
      if (d.method === 'multicast-mac' && !group) problems.push(`dataplane.clusterMac: ${mac} is not a multicast MAC (method multicast-mac needs the group bit set)`);
      if (d.method === 'unicast-mac' && group) problems.push(`dataplane.clusterMac: ${mac} is a multicast MAC (method unicast-mac needs a unicast one)`);
    }
    const names = (d.interfaces as { name: string }[]).map((i) => i.name);
    if (new Set(names).size !== names.length) problems.push('dataplane.interfaces: an interface is listed twice');
  }
  return problems;
}

function ipv4Number(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/**
 * The rules across fields of cluster.addressPool: no address twice, never the cluster IP or this member's
 * own address, and an address on the member interface inside the member's subnet (other interfaces'
 * subnets are not in the configuration; the member checks them when it takes the address).
 */
export function addressPoolProblems(pool: readonly { address: string; interface: string }[], clusterIp: string, member: { address: string; prefixLength: number; interface: string }): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const mask = member.prefixLength === 0 ? 0 : (0xffffffff << (32 - member.prefixLength)) >>> 0;
  const subnet = (ipv4Number(member.address) & mask) >>> 0;
  pool.forEach((p, i) => {
    const at = `cluster.addressPool[${i}].address`;
    const first = seen.get(p.address);
    if (first !== undefined) problems.push(`${at}: ${p.address} is listed twice (also cluster.addressPool[${first}])`);
    else seen.set(p.address, i);
    if (p.address === clusterIp) problems.push(`${at}: ${p.address} is the cluster IP (cluster.clusterIp); a pool address must be another address`);
    if (p.address === member.address) problems.push(`${at}: ${p.address} is this member's own address (member.address); a pool address must be another address`);
    if (p.interface === member.interface && ((ipv4Number(p.address) & mask) >>> 0) !== subnet) {
      problems.push(`${at}: ${p.address} is outside the subnet of ${p.interface} (${member.address}/${member.prefixLength})`);
    }
  });
  return problems;
}
