/**
 * Where a member keeps the cluster configuration versions it adopts at run time (`gwctl config set`,
 * CONFIG UPDATE from the master), when it has a state directory (`gwclusterd --state-dir DIR`, or
 * systemd's $STATE_DIRECTORY: /var/lib/gwcluster under the packaged unit).
 *
 * The operator's configuration file (/etc/gwcluster/member.json) is then never written: the adopted
 * version and its live fields go to STATE/cluster-config.json, atomically, and at every boot they are laid
 * over the file's when their version is higher. A file with a higher version than the state (the operator
 * made new personalities) wins. Without a state directory the member rewrites its configuration file as
 * before (a member run from a checkout).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { CLUSTER_LIVE_FIELDS } from '@gwcluster/contracts';
import type { MemberConfig } from '@gwcluster/contracts';
import { ConfigError, parseMemberConfig, readConfigJson } from './config.js';
import { HELD_FIELDS_KEY, releaseHeldFields, writeFileAtomically } from './cluster-config.js';

/** The state file's name in the state directory. */
export const ADOPTED_CONFIG_FILE = 'cluster-config.json';

/** What the state file holds: the adopted version and its live fields, nothing of the member's own. */
export interface AdoptedClusterConfig {
  readonly configVersion: number;
  readonly settings: Readonly<Record<string, unknown>>;
}

export class AdoptedConfigStore {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = join(resolve(dir), ADOPTED_CONFIG_FILE);
  }

  /** The adopted version, or null when none was adopted yet. Throws ConfigError naming the file when it is unreadable or malformed. */
  read(): AdoptedClusterConfig | null {
    if (!existsSync(this.file)) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (e) {
      throw new ConfigError(this.file, [`cannot read the adopted cluster configuration (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); remove it to boot from the configuration file alone`]);
    }
    const c = (parsed as { cluster?: unknown } | null)?.cluster as Record<string, unknown> | undefined;
    if (!c || typeof c !== 'object' || Array.isArray(c) || !Number.isInteger(c.configVersion) || (c.configVersion as number) < 1) {
      throw new ConfigError(this.file, ['cluster.configVersion: must be a positive integer (this file holds the adopted cluster configuration; remove it to boot from the configuration file alone)']);
    }
    const settings: Record<string, unknown> = {};
    for (const f of [...CLUSTER_LIVE_FIELDS, HELD_FIELDS_KEY]) if (f in c) settings[f] = c[f];
    return { configVersion: c.configVersion as number, settings };
  }

  /** `raw` (the configuration file's JSON) with the adopted version laid over it when that is newer. */
  overlay(raw: Record<string, unknown>): Record<string, unknown> {
    const adopted = this.read();
    const cluster = raw.cluster;
    if (!adopted || !cluster || typeof cluster !== 'object' || Array.isArray(cluster)) return raw;
    const fileVersion = (cluster as Record<string, unknown>).configVersion;
    if (typeof fileVersion === 'number' && fileVersion >= adopted.configVersion) return raw;
    return { ...raw, cluster: { ...(cluster as Record<string, unknown>), ...adopted.settings, configVersion: adopted.configVersion } };
  }

  /** Persists an adopted configuration (its raw file form): only its version and live fields. Throws when it cannot. */
  write(raw: Readonly<Record<string, unknown>>): void {
    const cluster = (raw.cluster ?? {}) as Record<string, unknown>;
    const kept: Record<string, unknown> = { configVersion: cluster.configVersion };
    for (const f of [...CLUSTER_LIVE_FIELDS, HELD_FIELDS_KEY]) if (f in cluster) kept[f] = cluster[f];
    writeFileAtomically(this.file, { cluster: kept }, 0o640);
  }

  /** The file form of `config` as the operator plane builds the next version on: the file plus the adopted version. */
  configFile(config: MemberConfig): Record<string, unknown> {
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(readFileSync(config.source, 'utf8')) as Record<string, unknown>;
    } catch {
      const { source: _source, ...rest } = config;
      return structuredClone(rest) as unknown as Record<string, unknown>;
    }
    try {
      return this.overlay(raw);
    } catch {
      return raw;
    }
  }
}

/** Reads and validates `file`, with the adopted version of `store` laid over it. Throws ConfigError naming the file and every problem. */
export function loadMemberConfigWithState(file: string, store: AdoptedConfigStore | null, onReleased?: (fields: readonly string[]) => void): MemberConfig {
  const released = new Set<string>();
  const collect = (fields: readonly string[]) => fields.forEach((f) => released.add(f));
  const { path, raw: read } = readConfigJson(file);
  const raw = withHeldFieldsReleased(read, collect);
  let config: MemberConfig | null = null;
  if (store && raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const laid = withHeldFieldsReleased(store.overlay(raw as Record<string, unknown>), collect);
    if (laid !== raw) {
      try {
        config = parseMemberConfig(laid, path, dirname(path), store.dir);
      } catch (e) {
        if (e instanceof ConfigError) throw new ConfigError(store.file, e.problems.map((p) => `${p} (adopted version laid over ${path})`));
        throw e;
      }
    }
  }
  config ??= parseMemberConfig(raw, path, dirname(path), store?.dir);
  if (released.size > 0) onReleased?.([...released].sort());
  return config;
}

/**
 * `raw` with the held fields of a newer release that this release knows made the cluster section's own
 * (releaseHeldFields); `raw` itself when there is nothing to release. Tells `onReleased` the names.
 */
function withHeldFieldsReleased(raw: unknown, onReleased?: (fields: readonly string[]) => void): unknown {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const cluster = (raw as Record<string, unknown>).cluster;
  if (!cluster || typeof cluster !== 'object' || Array.isArray(cluster) || !(HELD_FIELDS_KEY in cluster)) return raw;
  const { cluster: next, released } = releaseHeldFields(cluster as Record<string, unknown>);
  if (released.length === 0) return raw;
  onReleased?.(released);
  return { ...(raw as Record<string, unknown>), cluster: next };
}
