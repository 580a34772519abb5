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
  const wg = (c.tunnels as Record<string, any> | undefined)?.wireguard as WireGuardShape | undefined;
  if (wg) {
    problems.push(...wireGuardProblems(wg, 'tunnels.wireguard'));
    // The endpoint binds the cluster IP on every member: only the data plane puts it on every member's lo.
    if ((wg as { enabled?: boolean }).enabled !== false && !d) problems.push('tunnels.wireguard: needs the dataplane section (the endpoint binds the cluster IP on every member, and only the data plane puts it there and delivers each peer to one member)');
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

/** An IPv4 address of one of this host's interfaces, with its prefix (os.networkInterfaces()). */
export interface HostSubnet {
  readonly iface: string;
  readonly address: string;
  readonly prefixLength: number;
}

/**
 * The rules of cluster.addressPool that need the running cluster (checked by the member that applies a
 * change, before anything is applied): no address is a member's own address, and each address lies in a
 * subnet of its interface on that member (`subnets`: its interfaces' IPv4 addresses; null: not checked).
 */
export function addressPoolClusterProblems(pool: readonly { address: string; interface: string }[], members: readonly string[], subnets: readonly HostSubnet[] | null, self = ''): string[] {
  const problems: string[] = [];
  const inside = (address: string, s: HostSubnet) => {
    const mask = s.prefixLength === 0 ? 0 : (0xffffffff << (32 - s.prefixLength)) >>> 0;
    return ((ipv4Number(address) & mask) >>> 0) === ((ipv4Number(s.address) & mask) >>> 0);
  };
  pool.forEach((p, i) => {
    const at = `cluster.addressPool[${i}]`;
    if (members.includes(p.address)) problems.push(`${at}.address: ${p.address} is the own address of member ${p.address}; a pool address must be another address`);
    if (!subnets) return;
    const own = subnets.filter((s) => s.iface === p.interface);
    if (own.length === 0) {
      problems.push(`${at}.interface: ${p.interface} has no IPv4 address on ${self || 'this member'} (interfaces with one: ${[...new Set(subnets.map((s) => s.iface))].join(', ') || 'none'})`);
      return;
    }
    if (!own.some((s) => inside(p.address, s))) {
      const other = subnets.find((s) => s.iface !== p.interface && inside(p.address, s));
      problems.push(
        `${at}.address: ${p.address} is outside every subnet of ${p.interface} on ${self || 'this member'} (${own.map((s) => `${s.address}/${s.prefixLength}`).join(', ')})${other ? `; it is in the subnet of ${other.iface}` : ''}`,
      );
    }
  });
  return problems;
}

interface WireGuardShape {
  readonly peers?: readonly { readonly publicKey: string; readonly allowedIps: readonly string[] }[];
}

/** The 32 bytes of a base64 WireGuard key (`wg genkey`, `wg pubkey`), or a reason it is not one. */
export function wireGuardKeyBytes(text: string): Uint8Array | string {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(t)) return 'must be base64 of 32 bytes (44 characters ending in "=", as wg genkey / wg pubkey print)';
  const bytes = Uint8Array.from(atob(t), (ch) => ch.charCodeAt(0));
  return bytes.length === 32 ? bytes : 'must be base64 of 32 bytes';
}

/** An IPv4 prefix "a.b.c.d/n" as [network, length], or a reason it is not one (host bits must be zero). */
export function ipv4Prefix(text: string): [number, number] | string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0'))) || Number(m[5]) > 32) return 'must be an IPv4 prefix a.b.c.d/n (n 0..32)';
  const len = Number(m[5]);
  const addr = ipv4Number(`${m[1]}.${m[2]}.${m[3]}.${m[4]}`);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const net = (addr & mask) >>> 0;
  if (net !== addr) {
    const n = [24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.');
    return `has host bits set (the prefix is ${n}/${len})`;
  }
  return [net, len];
}

/**
 * The rules of a WireGuard section the schema cannot say: keys are base64 of 32 bytes, each allowed IP a
 * prefix, no public key twice, and no two peers' allowed IPs overlapping (a destination must name one
 * peer: cryptokey routing). Key files are read by the daemon (it checks their mode).
 */
export function wireGuardProblems(wg: WireGuardShape, at: string): string[] {
  const problems: string[] = [];
  const keys = new Map<string, number>();
  const prefixes: { net: number; len: number; peer: number; text: string }[] = [];
  (wg.peers ?? []).forEach((p, i) => {
    const k = wireGuardKeyBytes(p.publicKey);
    if (typeof k === 'string') problems.push(`${at}.peers[${i}].publicKey: ${k}`);
    const first = keys.get(p.publicKey.trim());
    if (first !== undefined) problems.push(`${at}.peers[${i}].publicKey: the same peer as ${at}.peers[${first}]`);
    else keys.set(p.publicKey.trim(), i);
    p.allowedIps.forEach((a, j) => {
      const r = ipv4Prefix(a);
      if (typeof r === 'string') {
        problems.push(`${at}.peers[${i}].allowedIps[${j}]: ${a} ${r}`);
        return;
      }
      const [net, len] = r;
      for (const q of prefixes) {
        const shorter = Math.min(len, q.len);
        const mask = shorter === 0 ? 0 : (0xffffffff << (32 - shorter)) >>> 0;
        if (((net & mask) >>> 0) === ((q.net & mask) >>> 0)) {
          problems.push(
            q.peer === i
              ? `${at}.peers[${i}].allowedIps[${j}]: ${a} overlaps ${q.text} of the same peer`
              : `${at}.peers[${i}].allowedIps[${j}]: ${a} overlaps ${q.text} of ${at}.peers[${q.peer}] (a destination must belong to one peer)`,
          );
        }
      }
      prefixes.push({ net, len, peer: i, text: a });
    });
  });
  return problems;
}
