// A rolling upgrade on real namespaces: three members of release N (this checkout); one at a time they are
// stopped (SIGTERM: EXIT CLUSTER) and started as release N+1 (tools/next-release.mjs: the same build with a
// higher software version and one more live cluster field, which N does not know). During the upgrade:
// - `gwctl version` and `gwctl members` show both releases;
// - a `gwctl config set` on an N master reaches the N+1 member (which keeps its own default for the field
//   the N master does not send);
// - once an N+1 member is master, a `gwctl config set` of the new field reaches the N member, which adopts
//   the rest of the version and ignores the field (warning, counter) instead of leaving the cluster;
// - no member is pushed out: the members not being restarted stay in the cluster throughout.
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFixture, balanced, healthy } from './cluster-fixture.mjs';
import { makeNextRelease } from './tools/next-release.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const [M1, M2, M3] = M as [string, string, string];
const N = (JSON.parse(readFileSync(join(ROOT, 'packages/daemon/package.json'), 'utf8')) as { version: string }).version;
const NEXT = N.replace(/^(\d+)\.(\d+)\..*$/, (_, major: string, minor: string) => `${major}.${Number(minor) + 1}.0`);
const FIELD = 'futureKnobMs';

describe(`a rolling upgrade from ${N} to ${NEXT}`, () => {
  let f: ClusterFixture;
  let dir: string;
  let next: string[];
  /** When the release-N cluster of the setup was ready (a member restarted during the setup is not an upgrade). */
  let setUp = 0;

  /** Stops a member (SIGTERM) and starts it as release N+1; resolves once the cluster is healthy with it again. */
  async function upgrade(ip: string): Promise<void> {
    const old = f.procs.get(ip)!;
    const exited = once(old, 'exit');
    f.signal(ip, 'SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code, `${ip}: the release ${N} process exit code`).toBe(0);
    const t = Date.now();
    f.start(ip, { command: next });
    await f.waitForView((v) => healthy(v, M), { since: t + 200, timeoutMs: 20_000, what: `${ip} back in the cluster as ${NEXT}` });
  }

  async function versions(endpoint: string): Promise<{ answeredBy: { id: string; software: string }; members: { id: string; version: string | null }[] }> {
    const r = await f.gwctl(['version', '--json'], { endpoint: `http://${endpoint}:7401` });
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  }

  /** Every view of every sample since `t` shows all three members, none missing or answering with an error. */
  const nobodyLeftSince = (t: number) =>
    f.samples.filter((s) => s.t >= t).every((s) => M.every((ip) => !s.views[ip]!.error && (s.views[ip]!.role === 'master' || s.views[ip]!.role === 'member') && s.views[ip]!.members.length === 3));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gwc-next-release-'));
    next = makeNextRelease(dir, { version: NEXT, field: FIELD });
    f = await ClusterFixture.create({ members: 3 });
    f.startMonitor(50);
    f.startAll();
    const fail = (e: unknown) => {
      throw new Error(`${(e as Error).message}\n${JSON.stringify(f.latest())}\n${f.recentLogs()}`);
    };
    await f.waitForView((v) => balanced(v, M), { what: `a balanced cluster of release ${N}`, timeoutMs: 20_000 }).catch(fail);
    // The steps below upgrade the master second. Whoever started first on a loaded machine may be master:
    // then it is restarted (still release N), and M1, the lowest address, takes office as its successor.
    const first = f.latest()!.views[M1]!.master!;
    if (first !== M1) {
      const exited = once(f.procs.get(first)!, 'exit');
      f.signal(first, 'SIGTERM');
      await exited;
      const t = Date.now();
      f.start(first);
      await f.waitForView((v) => balanced(v, M) && v[M1]!.master === M1, { since: t + 200, what: `a balanced cluster of release ${N}, ${M1} master`, timeoutMs: 30_000 }).catch(fail);
    }
    setUp = Date.now();
  }, 90_000);

  afterAll(async () => {
    await f?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`a member upgraded to ${NEXT} re-joins the members of ${N}; gwctl version and gwctl members show both releases`, async () => {
    await upgrade(M2);
    const v = await versions(M1);
    expect(v.answeredBy).toMatchObject({ id: M1, software: N });
    expect(Object.fromEntries(v.members.map((m) => [m.id, m.version]))).toEqual({ [M1]: N, [M2]: NEXT, [M3]: N });
    expect((await versions(M2)).answeredBy).toMatchObject({ id: M2, software: NEXT });
    const text = await f.gwctl(['version']);
    expect(text.stdout).toContain(`members run 2 different versions (${N}, ${NEXT}): a rolling upgrade under way?`);
    const members = await f.gwctl(['members']);
    expect(members.code, members.stderr).toBe(0);
    for (const [ip, version] of [[M1, N], [M2, NEXT], [M3, N]]) expect(members.stdout).toMatch(new RegExp(`^${ip.replace(/\./g, '\\.')} +\\S+ +${version.replace(/\./g, '\\.')} `, 'm'));
  }, 60_000);

  it(`a config set on the ${N} master during the upgrade reaches the ${NEXT} member; nobody leaves`, async () => {
    const t0 = Date.now();
    const set = await f.gwctl(['config', 'set', 'keepalivePeriodMs=60', '--base-version', '1'], { endpoint: `http://${M2}:7401` });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('configuration version 2: keepalivePeriodMs=60\n');
    await f.waitForView((v) => healthy(v, M) && M.every((ip) => v[ip]!.configVersion === 2), { since: t0, what: 'configuration version 2 on every member', holdMs: 500 });
    const atNext = JSON.parse((await f.gwctl(['config', 'get', '--json'], { endpoint: `http://${M2}:7401` })).stdout);
    expect(atNext.settings).toMatchObject({ keepalivePeriodMs: 60, [FIELD]: 0 });
    expect(atNext.liveFields).toContain(FIELD);
    expect(nobodyLeftSince(t0)).toBe(true);
  }, 60_000);

  it(`the master upgraded: its successor (${NEXT}) takes office; a config set of the new field reaches the ${N} member, which ignores that field and stays`, async () => {
    await upgrade(M1);
    expect(f.latest()!.views[M3]!.master).toBe(M2); // the named successor: the lowest ready address
    const v = await versions(M3);
    expect(Object.fromEntries(v.members.map((m) => [m.id, m.version]))).toEqual({ [M1]: NEXT, [M2]: NEXT, [M3]: N });
    const t0 = Date.now();
    const set = await f.gwctl(['config', 'set', `${FIELD}=5`, 'keepalivePeriodMs=50', '--base-version', '2'], { endpoint: `http://${M3}:7401` });
    expect(set.code, set.stderr).toBe(0);
    await f.waitForView((w) => healthy(w, M) && M.every((ip) => w[ip]!.configVersion === 3), { since: t0, what: 'configuration version 3 on every member', holdMs: 500 });
    for (const ip of [M1, M2]) {
      const cfg = JSON.parse((await f.gwctl(['config', 'get', '--json'], { endpoint: `http://${ip}:7401` })).stdout);
      expect(cfg.settings, ip).toMatchObject({ keepalivePeriodMs: 50, [FIELD]: 5 });
    }
    const old = JSON.parse((await f.gwctl(['config', 'get', '--json'], { endpoint: `http://${M3}:7401` })).stdout);
    expect(old.version).toBe(3);
    expect(old.settings.keepalivePeriodMs).toBe(50);
    expect(old.settings).not.toHaveProperty(FIELD);
    const counters = JSON.parse((await f.gwctl(['counters', '--json', '--match', 'node.config.'], { endpoint: `http://${M3}:7401` })).stdout).counters;
    expect(counters['node.config.unknown-fields-ignored']).toBe(1);
    expect(f.logLine(M3, new RegExp(`^cluster configuration version 3 from ${M2.replace(/\./g, '\\.')} has field\\(s\\) this release does not know, ignored: ${FIELD}`), t0)).toBeDefined();
    // The field is held in its configuration for the release that knows it.
    expect(JSON.parse(readFileSync(f.member(M3).config, 'utf8')).cluster).toMatchObject({ configVersion: 3, keepalivePeriodMs: 50, heldForNewerRelease: { [FIELD]: 5 } });
    expect(nobodyLeftSince(t0)).toBe(true);
    // The member of release N is the process that ran since the setup: it never left nor restarted.
    expect(f.logs.get(M3)!.some((l) => l.time >= setUp && (l.exited || /config-mismatch/.test(String(l.msg))))).toBe(false);
  }, 60_000);

  it(`the last member upgraded: every member runs ${NEXT}, the one that held the new field with the cluster's value`, async () => {
    const t0 = Date.now();
    await upgrade(M3);
    const v = await versions(M1);
    expect(v.members.map((m) => m.version)).toEqual([NEXT, NEXT, NEXT]);
    expect((await f.gwctl(['version'])).stdout).not.toContain('different versions');
    for (const ip of M) {
      const cfg = JSON.parse((await f.gwctl(['config', 'get', '--json'], { endpoint: `http://${ip}:7401` })).stdout);
      expect(cfg.version, ip).toBe(3);
      expect(cfg.settings, ip).toMatchObject({ keepalivePeriodMs: 50, [FIELD]: 5 });
    }
    expect(f.logLine(M3, new RegExp(`field\\(s\\) adopted while an older release ran, which it could not apply, now in force: ${FIELD}`), t0)).toBeDefined();
  }, 60_000);
});
