/**
 * gwclusterd's software release (its package version) and the protocol and admin API versions it speaks:
 * what `gwclusterd --version` prints, what the member announces in JOIN REQUEST and CLIENT KEEPALIVE, and
 * what GET /v1/cluster reports.
 */
import { readFileSync } from 'node:fs';
import { PROTOCOL_VERSION } from '@gwcluster/wire';
import { ADMIN_API_VERSION } from '@gwcluster/contracts';

/** The package version of gwclusterd (packages/daemon/package.json). */
export const SOFTWARE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const VERSIONS = { software: SOFTWARE_VERSION, protocol: PROTOCOL_VERSION, api: ADMIN_API_VERSION } as const;

export function versionLine(program: string): string {
  return `${program} ${SOFTWARE_VERSION} (cluster protocol ${PROTOCOL_VERSION}, admin API ${ADMIN_API_VERSION})`;
}
