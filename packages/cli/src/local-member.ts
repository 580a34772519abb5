/**
 * gwctl's default endpoint: the admin API of the member on this host, as its configuration file says
 * (admin.listen, by default the member address; admin.port, by default 7401; https with admin.tls).
 * gwclusterd does not listen on 127.0.0.1 unless admin.listen says so, so there is no fixed default.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AdminSectionSchema } from '@gwcluster/contracts';

/** Where an appliance keeps its member configuration (appliance/README.md). */
export const DEFAULT_MEMBER_CONFIG = '/etc/gwcluster/member.json';

/** The admin port when the configuration names none (the schema's default). */
export const DEFAULT_ADMIN_PORT: number = AdminSectionSchema.properties.port.default as number;

export interface LocalEndpoint {
  readonly endpoint: string;
  /** With admin.tls: the cluster CA that signed the member certificate (pki.ca), to check the server. */
  readonly caFile?: string;
  readonly source: string;
}

/** The configuration file gwctl reads: GWCTL_CONFIG, else DEFAULT_MEMBER_CONFIG. */
export function localConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.GWCTL_CONFIG || DEFAULT_MEMBER_CONFIG;
}

/**
 * The admin endpoint in the member configuration `file`, or a reason why there is none (no file, not
 * readable, not a member configuration).
 */
export function localAdminEndpoint(file: string): LocalEndpoint | { readonly missing: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { missing: code ? `${file}: ${code}` : `${file}: not JSON (${(e as Error).message})` };
  }
  const c = raw as { member?: { address?: unknown }; admin?: { listen?: unknown; port?: unknown; tls?: unknown }; pki?: { ca?: unknown } } | null;
  const host = c?.admin?.listen ?? c?.member?.address;
  const port = c?.admin?.port ?? DEFAULT_ADMIN_PORT;
  if (typeof host !== 'string' || !/^[0-9.]+$/.test(host) || typeof port !== 'number' || !Number.isInteger(port)) {
    return { missing: `${file}: no member.address or admin.listen / admin.port in it` };
  }
  const https = c?.admin?.tls !== undefined && c.admin.tls !== null;
  const ca = typeof c?.pki?.ca === 'string' ? resolve(dirname(file), c.pki.ca) : undefined;
  return { endpoint: `${https ? 'https' : 'http'}://${host}:${port}/`, ...(https && ca ? { caFile: ca } : {}), source: file };
}
