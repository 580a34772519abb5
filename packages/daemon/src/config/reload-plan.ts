/**
 * What a reload (SIGHUP, systemctl reload) of the member configuration may change, *pure*: which fields
 * of a newly read file differ from the configuration in force, which of them apply live, and which need
 * a restart. The effects (reading files, installing credentials) are in ../reload.ts.
 *
 * Live: pki.* (certificate, key, CA, revocation list, allow-list, bundle signature: re-read even when
 * the paths are unchanged), admin.token, admin.tls certificate/key/CA, applications, logLevel,
 * tunnels.wireguard (the endpoint is restarted with the new section; its key files are re-read).
 * Restart: member.*, admin.listen, admin.port, turning admin.tls on or off, its requireClientCertificate,
 * clusterAddress, dataplane, and the cluster's fixed fields. The cluster's live fields and configVersion
 * belong to the cluster (gwctl config set, propagated by the master): a file edit of them is not applied.
 */
import { isDeepStrictEqual } from 'node:util';
import { CLUSTER_FIXED_FIELDS, CLUSTER_LIVE_FIELDS } from '@gwcluster/contracts';
import type { MemberConfig } from './config.js';

export interface NotApplied {
  /** Dotted field path, e.g. "member.address". */
  readonly field: string;
  readonly reason: string;
}

export interface ReloadPlan {
  /** Live fields whose value in the file changed (file contents such as the CRL are compared by ../reload.ts). */
  readonly changed: readonly string[];
  /** Fields that changed but are not applied by a reload. */
  readonly notApplied: readonly NotApplied[];
  /** The configuration to run with: the new file's live fields over the current configuration. */
  readonly config: MemberConfig;
}

export const NEEDS_RESTART = 'needs restart (systemctl restart gwclusterd); the running value is kept';
export const CLUSTER_SETTING = 'a cluster setting: change it with gwctl config set (the master propagates it); the running value is kept';

const LIVE_PKI = ['certificate', 'key', 'ca', 'crl', 'allowedCertificates', 'bundleSignature'] as const;

type Section = Readonly<Record<string, unknown>> | undefined;

function differing(prefix: string, a: Section, b: Section, keys?: readonly string[]): string[] {
  const names = keys ?? [...new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])].sort();
  return names.filter((k) => !isDeepStrictEqual(a?.[k], b?.[k])).map((k) => `${prefix}.${k}`);
}

export function planReload(current: MemberConfig, next: MemberConfig): ReloadPlan {
  const changed: string[] = [];
  const notApplied: NotApplied[] = [];
  const restart = (fields: string[]) => notApplied.push(...fields.map((field) => ({ field, reason: NEEDS_RESTART })));

  changed.push(...differing('pki', current.pki, next.pki, LIVE_PKI));
  if (current.admin.token !== next.admin.token) changed.push('admin.token');
  restart(differing('admin', current.admin, next.admin, ['listen', 'port']));
  const [tlsNow, tlsNext] = [current.admin.tls, next.admin.tls];
  if (Boolean(tlsNow) !== Boolean(tlsNext)) restart(['admin.tls']);
  else if (tlsNow && tlsNext) {
    changed.push(...differing('admin.tls', tlsNow, tlsNext, ['certificate', 'key', 'ca']));
    restart(differing('admin.tls', tlsNow, tlsNext, ['requireClientCertificate']));
  }
  if (!isDeepStrictEqual(current.applications, next.applications)) changed.push('applications');
  if (current.logLevel !== next.logLevel) changed.push('logLevel');
  if (!isDeepStrictEqual(current.tunnels, next.tunnels)) changed.push('tunnels.wireguard');

  restart(differing('member', current.member, next.member));
  restart(differing('clusterAddress', current.clusterAddress, next.clusterAddress));
  restart(differing('liveness', current.liveness, next.liveness));
  if (!isDeepStrictEqual(current.dataplane, next.dataplane)) restart(['dataplane']);
  restart(differing('cluster', current.cluster, next.cluster, [...CLUSTER_FIXED_FIELDS, 'broadcastAddress']));
  notApplied.push(...differing('cluster', current.cluster, next.cluster, ['configVersion', ...CLUSTER_LIVE_FIELDS]).map((field) => ({ field, reason: CLUSTER_SETTING })));

  const { token: _old, ...adminWithoutToken } = current.admin;
  const admin = {
    ...adminWithoutToken,
    ...(next.admin.token !== undefined ? { token: next.admin.token } : {}),
    ...(tlsNow && tlsNext ? { tls: { ...tlsNext, requireClientCertificate: tlsNow.requireClientCertificate } } : {}),
  };
  const { tunnels: _tunnels, ...rest } = current;
  const config: MemberConfig = { ...rest, pki: next.pki, admin, applications: next.applications, logLevel: next.logLevel, ...(next.tunnels ? { tunnels: next.tunnels } : {}) };
  return { changed, notApplied, config };
}
