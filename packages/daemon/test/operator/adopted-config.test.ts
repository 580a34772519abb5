// The state directory (gwclusterd --state-dir, systemd's StateDirectory=): adopted cluster configuration
// versions are kept there, the operator's configuration file is never written, and the next boot runs the
// adopted version unless the file is newer. Real files in a temporary directory.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdoptedConfigStore, loadMemberConfigWithState } from '../../src/config/adopted-config.js';
import { withClusterSettings } from '../../src/config/cluster-config.js';
import { ConfigError } from '../../src/config/config.js';
import { stateStore } from '../../src/main.js';

let dir: string;
let etc: string;
let state: string;
let file: string;

function memberFile(configVersion: number, keepalivePeriodMs?: number): string {
  return `${JSON.stringify(
    {
      cluster: { name: 'edge', clusterIp: '198.51.100.10', configVersion, ...(keepalivePeriodMs ? { keepalivePeriodMs } : {}) },
      member: { address: '192.0.2.11', interface: 'eth0' },
      pki: { certificate: 'member.crt', key: 'member.key', ca: 'ca.crt' },
      admin: { token: 'a-token-of-16-characters' },
    },
    null,
    2,
  )}\n`;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gwc-state-'));
  etc = join(dir, 'etc');
  state = join(dir, 'state');
  mkdirSync(etc);
  mkdirSync(state);
  file = join(etc, 'member.json');
  writeFileSync(file, memberFile(1), { mode: 0o640 });
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Adopts `changes` as `version` the way the operator plane does: the file form from the store, then persist. */
function adopt(store: AdoptedConfigStore, changes: Record<string, unknown>, version: number) {
  const current = loadMemberConfigWithState(file, store);
  const next = withClusterSettings(current, store.configFile(current), changes, version);
  store.write(next.raw);
  return next.config;
}

describe('adopted configuration in the state directory', () => {
  it('keeps the version and live fields in STATE/cluster-config.json and never writes the configuration file', () => {
    const before = readFileSync(file, 'utf8');
    const store = new AdoptedConfigStore(state);
    const adopted = adopt(store, { keepalivePeriodMs: 150 }, 2);
    expect(adopted.cluster.configVersion).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe(before);
    const kept = JSON.parse(readFileSync(join(state, 'cluster-config.json'), 'utf8'));
    expect(kept.cluster.configVersion).toBe(2);
    expect(kept.cluster.keepalivePeriodMs).toBe(150);
    // Nothing of the member's own (token, addresses, pki) goes to the state file.
    expect(JSON.stringify(kept)).not.toMatch(/token|192\.0\.2\.11|member\.key/);
    expect(statSync(join(state, 'cluster-config.json')).mode & 0o777).toBe(0o640);
    expect(readdirSync(state)).toEqual(['cluster-config.json']);
  });

  it('boots the adopted version, and a second change builds on the first', () => {
    const store = new AdoptedConfigStore(state);
    adopt(store, { keepalivePeriodMs: 150 }, 2);
    adopt(store, { rebalanceIntervalMs: 3000 }, 3);
    const booted = loadMemberConfigWithState(file, store);
    expect(booted.cluster.configVersion).toBe(3);
    expect(booted.cluster.keepalivePeriodMs).toBe(150);
    expect(booted.cluster.rebalanceIntervalMs).toBe(3000);
    expect(booted.admin.token).toBe('a-token-of-16-characters');
  });

  it('a configuration file of a higher version than the state wins', () => {
    const store = new AdoptedConfigStore(state);
    adopt(store, { keepalivePeriodMs: 150 }, 2);
    writeFileSync(file, memberFile(5, 120));
    const booted = loadMemberConfigWithState(file, store);
    expect(booted.cluster.configVersion).toBe(5);
    expect(booted.cluster.keepalivePeriodMs).toBe(120);
  });

  it('a damaged state file stops the boot with an error naming it', () => {
    writeFileSync(join(state, 'cluster-config.json'), '{"cluster": {"configVersion": "two"}}');
    const store = new AdoptedConfigStore(state);
    expect(() => loadMemberConfigWithState(file, store)).toThrow(ConfigError);
    expect(() => loadMemberConfigWithState(file, store)).toThrow(/cluster-config\.json: cluster\.configVersion: must be a positive integer/);
    writeFileSync(join(state, 'cluster-config.json'), '{not json');
    expect(() => loadMemberConfigWithState(file, store)).toThrow(/cluster-config\.json: cannot read the adopted cluster configuration/);
  });

  it('an adopted value the schema refuses names the state file and the field', () => {
    writeFileSync(join(state, 'cluster-config.json'), JSON.stringify({ cluster: { configVersion: 4, keepalivePeriodMs: -5 } }));
    expect(() => loadMemberConfigWithState(file, new AdoptedConfigStore(state))).toThrow(/cluster-config\.json: .*keepalivePeriodMs.*adopted version laid over/);
  });

  it('the state directory comes from --state-dir, else the first of $STATE_DIRECTORY, else none', () => {
    expect(stateStore('/srv/x', '/var/lib/gwcluster')?.dir).toBe('/srv/x');
    expect(stateStore(undefined, '/var/lib/gwcluster:/var/lib/other')?.dir).toBe('/var/lib/gwcluster');
    expect(stateStore(undefined, undefined)).toBeNull();
    expect(stateStore(undefined, '')).toBeNull();
  });
});

describe('fields held for a newer release (adopted during a rolling upgrade by a release that did not know them)', () => {
  // A field this release knows stands in for the newer release's field: the file was written by an older
  // release that held it.
  function withHeld(held: Record<string, unknown>, own: Record<string, unknown> = {}): void {
    const raw = JSON.parse(readFileSync(file, 'utf8'));
    raw.cluster = { ...raw.cluster, configVersion: 3, ...own, heldForNewerRelease: held };
    writeFileSync(file, JSON.stringify(raw));
  }

  it('a release that knows a held field boots with its value, says so, and keeps holding the fields it does not know', () => {
    withHeld({ rebalanceIntervalMs: 3000, futureKnobMs: 5 });
    let released: readonly string[] = [];
    const booted = loadMemberConfigWithState(file, null, (f) => (released = f));
    expect(booted.cluster.rebalanceIntervalMs).toBe(3000);
    expect(booted.cluster.heldForNewerRelease).toEqual({ futureKnobMs: 5 });
    expect(released).toEqual(['rebalanceIntervalMs']);
  });

  it("the section's own value, set by a later version, wins over a held one", () => {
    withHeld({ rebalanceIntervalMs: 3000 }, { rebalanceIntervalMs: 4000 });
    let released: readonly string[] = [];
    const booted = loadMemberConfigWithState(file, null, (f) => (released = f));
    expect(booted.cluster.rebalanceIntervalMs).toBe(4000);
    expect(booted.cluster.heldForNewerRelease).toBeUndefined();
    expect(released).toEqual(['rebalanceIntervalMs']);
  });

  it('the state directory keeps the held fields with the adopted version, and the next boot applies the known ones', () => {
    const store = new AdoptedConfigStore(state);
    const current = loadMemberConfigWithState(file, store);
    const raw = store.configFile(current);
    const withHeldRaw = { ...raw, cluster: { ...(raw.cluster as object), heldForNewerRelease: { rebalanceIntervalMs: 3000, futureKnobMs: 5 } } };
    store.write(withClusterSettings(current, withHeldRaw, { keepalivePeriodMs: 150 }, 2).raw);
    // This release knows rebalanceIntervalMs: the adoption itself already made it the section's own.
    const kept = JSON.parse(readFileSync(join(state, 'cluster-config.json'), 'utf8'));
    expect(kept.cluster).toMatchObject({ configVersion: 2, keepalivePeriodMs: 150, rebalanceIntervalMs: 3000, heldForNewerRelease: { futureKnobMs: 5 } });
    const booted = loadMemberConfigWithState(file, store);
    expect(booted.cluster).toMatchObject({ configVersion: 2, keepalivePeriodMs: 150, rebalanceIntervalMs: 3000, heldForNewerRelease: { futureKnobMs: 5 } });
  });

  it('a held field with a value the schema refuses stops the boot naming it', () => {
    withHeld({ keepalivePeriodMs: 'fast' });
    expect(() => loadMemberConfigWithState(file, null)).toThrow(/keepalivePeriodMs/);
  });
});
