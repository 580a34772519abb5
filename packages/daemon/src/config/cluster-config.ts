/**
 * The cluster configuration: the part of a member's configuration that is the same on every member,
 * versioned by `cluster.configVersion`, changed through the admin API and propagated by the master
 * (operator/operator-channel.ts). docs/configuration.md has the table of which field is what.
 *
 * - Live fields (CLUSTER_LIVE_FIELDS): protocol timings. Changed with `gwctl config set`; every member
 *   validates the new version, writes it to its configuration file and adopts it without a restart.
 * - Fixed cluster-wide fields (CLUSTER_FIXED_FIELDS): the cluster's identity and wire settings. The same
 *   on every member, set when the personalities are made; changing one means new personalities.
 * - Everything else (member, pki, admin, clusterAddress, applications, logLevel, cluster.broadcastAddress)
 *   belongs to the member.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import type { CoreConfig, CoreTimings } from '@gwcluster/cluster-core';
import { CLUSTER_FIXED_FIELDS, CLUSTER_LIVE_FIELDS, type ClusterLiveField } from '@gwcluster/contracts';
import { ConfigError, parseMemberConfig, type MemberConfig } from './config.js';

export { CLUSTER_FIXED_FIELDS, CLUSTER_LIVE_FIELDS, type ClusterLiveField } from '@gwcluster/contracts';

// Every live field is a core timing: the core adopts them without a restart.
CLUSTER_LIVE_FIELDS satisfies readonly (keyof CoreTimings)[];

export type ClusterSettings = { -readonly [K in ClusterLiveField]: MemberConfig['cluster'][K] };

/** The cluster configuration of version `version`, as propagated and as GET /v1/config shows it. */
export interface ClusterConfiguration {
  readonly version: number;
  readonly settings: ClusterSettings;
}

export class ClusterConfigError extends Error {
  constructor(
    readonly kind: 'invalid' | 'conflict',
    message: string,
  ) {
    super(message);
    this.name = 'ClusterConfigError';
  }
}

export function clusterConfiguration(config: MemberConfig): ClusterConfiguration {
  const settings = {} as ClusterSettings;
  for (const f of CLUSTER_LIVE_FIELDS) (settings as Record<string, unknown>)[f] = structuredClone(config.cluster[f]);
  return { version: config.cluster.configVersion, settings };
}

export function encodeClusterSettings(settings: ClusterSettings): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(settings));
}

/** The raw (file) form of a configuration: the file's JSON as it is now when there is a file, else rebuilt. */
export function readConfigFile(config: MemberConfig): Record<string, unknown> {
  if (config.source) {
    try {
      return JSON.parse(readFileSync(config.source, 'utf8')) as Record<string, unknown>;
    } catch {
      /* fall back to the parsed form (e.g. the file was removed under us) */
    }
  }
  const { source: _source, ...rest } = config;
  return structuredClone(rest) as unknown as Record<string, unknown>;
}

/**
 * Applies `changes` (live fields only) on top of `current`, whose file form is `raw` (readConfigFile()), as
 * version `version`. Validates the result against the member configuration schema. Returns the new
 * configuration and its raw (file) form; reads and writes nothing. Throws ClusterConfigError('invalid')
 * naming the field and the accepted form.
 */
export function withClusterSettings(
  current: MemberConfig,
  raw: Readonly<Record<string, unknown>>,
  changes: Readonly<Record<string, unknown>>,
  version: number,
): { config: MemberConfig; raw: Record<string, unknown> } {
  const problems: string[] = [];
  for (const key of Object.keys(changes)) {
    if ((CLUSTER_FIXED_FIELDS as readonly string[]).includes(key) || key === 'broadcastAddress' || key === 'unitAssignment') {
      problems.push(`cluster.${key} cannot be changed at run time (it is fixed when the personalities are made); change it in every member's personality and restart the members`);
    } else if (key === 'configVersion') {
      problems.push('cluster.configVersion is set by the cluster itself; pass baseVersion to say which version the change is based on');
    } else if (!(CLUSTER_LIVE_FIELDS as readonly string[]).includes(key)) {
      problems.push(`cluster.${key}: unknown field; the fields that can be changed are ${CLUSTER_LIVE_FIELDS.join(', ')}`);
    }
  }
  if (problems.length > 0) throw new ClusterConfigError('invalid', problems.join('; '));
  const cluster = releaseHeldFields({ ...((raw.cluster ?? {}) as Record<string, unknown>), ...changes, configVersion: version }).cluster;
  const next = { ...raw, cluster };
  let config: MemberConfig;
  try {
    config = parseMemberConfig(next, current.source, current.source ? dirname(current.source) : process.cwd());
  } catch (e) {
    if (e instanceof ConfigError) throw new ClusterConfigError('invalid', e.problems.join('; '));
    throw e;
  }
  return { config, raw: next };
}

/** Parses a ConfigUpdate's payload: the complete live settings. Throws ClusterConfigError('invalid'). */
export function decodeClusterSettings(bytes: Uint8Array): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new ClusterConfigError('invalid', `cluster configuration is not UTF-8 JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ClusterConfigError('invalid', 'cluster configuration must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** The cluster section's key for live fields of a newer release held until a release that knows them boots. */
export const HELD_FIELDS_KEY = 'heldForNewerRelease';

/** The fields a cluster section holds for a newer release, or null when it holds none (or not an object). */
export function heldFields(cluster: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> | null {
  const held = cluster[HELD_FIELDS_KEY];
  return held !== null && typeof held === 'object' && !Array.isArray(held) ? (held as Record<string, unknown>) : null;
}

/**
 * `cluster` (a configuration file's cluster section) with the fields of a newer release that this release
 * knows taken out of HELD_FIELDS_KEY: each becomes the section's own field unless the section already has
 * one (a later version set it), and leaves the held set, which disappears when empty. Returns the new section
 * and the names taken. Pure.
 */
export function releaseHeldFields(cluster: Readonly<Record<string, unknown>>): { cluster: Record<string, unknown>; released: string[] } {
  const held = heldFields(cluster);
  if (held === null) return { cluster: { ...cluster }, released: [] };
  const live = new Set<string>(CLUSTER_LIVE_FIELDS);
  const next: Record<string, unknown> = { ...cluster };
  const stillHeld: Record<string, unknown> = {};
  const released: string[] = [];
  for (const [k, v] of Object.entries(held)) {
    if (!live.has(k)) {
      stillHeld[k] = v;
      continue;
    }
    released.push(k);
    if (!(k in next)) next[k] = v;
  }
  if (Object.keys(stillHeld).length > 0) next[HELD_FIELDS_KEY] = stillHeld;
  else delete next[HELD_FIELDS_KEY];
  return { cluster: next, released: released.sort() };
}

/**
 * Splits a propagated configuration's settings into the fields this release knows (live, fixed and the
 * other cluster fields, which withClusterSettings() then judges) and the ones it does not (names, sorted).
 */
export function splitUnknownSettings(settings: Readonly<Record<string, unknown>>): { known: Record<string, unknown>; unknown: string[] } {
  const knownNames = new Set<string>([...CLUSTER_LIVE_FIELDS, ...CLUSTER_FIXED_FIELDS, 'broadcastAddress', 'configVersion']);
  const known: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(settings)) {
    if (knownNames.has(k)) known[k] = v;
    else unknown.push(k);
  }
  return { known, unknown: unknown.sort() };
}

export function liveTimings(config: MemberConfig): Partial<CoreTimings> {
  return clusterConfiguration(config).settings;
}

/** The core's settings on a member with this configuration (coreConfig() fills in the rest). */
export function coreSettings(config: MemberConfig): Partial<CoreConfig> {
  const sync = config.dataplane?.sessions.sync ?? false;
  return {
    ...clusterConfiguration(config).settings,
    // Fixed with the personalities (every member must apply the same rule when it becomes master).
    unitAssignment: config.cluster.unitAssignment,
    // With replicated sessions a member owns units only once it holds everyone's sessions, and a
    // planned move waits until the new owner holds the moved units' sessions.
    waitForSyncReady: sync,
    handoverBeforeAck: sync,
  };
}

/**
 * Whether the core's data-plane view holds a unit while its owner hands it over: with method 1
 * (master-forward) every packet passes the master, which can hold them (CoreView.dataPlaneView).
 */
export function holdsHandedOverUnits(config: MemberConfig): boolean {
  return config.dataplane?.method === 'master-forward';
}

/** The core event that makes a member run `config` (adopted): its version and its live timings. */
export function configChangedEvent(config: MemberConfig): { readonly type: 'config-changed'; readonly configVersion: number; readonly timings: Partial<CoreTimings> } {
  return { type: 'config-changed', configVersion: config.cluster.configVersion, timings: liveTimings(config) };
}

/**
 * Writes `raw` to `file` atomically: a temporary file beside it (same mode), fsync, rename, fsync of the
 * directory. A crash leaves either the old or the new file, never a torn one.
 */
export function writeConfigFileAtomically(file: string, raw: Record<string, unknown>): void {
  writeFileAtomically(file, raw, statSync(file).mode & 0o777);
}

/**
 * Writes `raw` as JSON to `file` atomically (as writeConfigFileAtomically), keeping the mode of an existing
 * file, else with `newMode`.
 */
export function writeFileAtomically(file: string, raw: Record<string, unknown>, newMode: number): void {
  let mode = newMode;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    /* a new file */
  }
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, `${JSON.stringify(raw, null, 2)}\n`, { mode });
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* not created */
    }
    throw e;
  }
  try {
    const dfd = openSync(dirname(file), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some filesystems refuse fsync on a directory; the rename is still atomic */
  }
}
