// The operator's path end to end: a CA and three personalities made with gwctl (each with a signed
// software and configuration bundle), three gwclusterd booted in network namespaces from those files,
// then gwctl from the operator's namespace: a configuration change that all three report, a drain with
// progress, undrain and rebalance.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFixture, GWCTL, balanced, healthy } from './cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];

describe('operating a three-member cluster with gwctl', () => {
  let f: ClusterFixture;

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3, extraConfig: { pki: { bundleSignature: 'bundle.sig' } } });
    for (const m of f.members) {
      const r = spawnSync(process.execPath, [GWCTL, 'bundle', 'sign', '--ca-dir', f.caDir, '--config', m.config], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    f.startMonitor(50);
    f.startAll();
    await f.waitForView((v) => balanced(v, M), { what: 'a balanced three-member cluster', timeoutMs: 20_000 });
  }, 60_000);

  afterAll(async () => {
    await f?.destroy();
  });

  it('booted from signed personalities: every member verified its bundle', () => {
    for (const ip of M) {
      expect(f.logLine(ip, /^member starting$/)).toBeDefined();
      expect(f.logs.get(ip)!.some((l) => l.exited)).toBe(false);
    }
  });

  it('a configuration value changed through gwctl is reported by all three members and written to their files', async () => {
    const before = JSON.parse((await f.gwctl(['config', 'get', '--json'])).stdout);
    expect(before.version).toBe(1);
    const t0 = Date.now();
    const set = await f.gwctl(['config', 'set', 'keepalivePeriodMs=150', 'rebalanceIntervalMs=3000', '--base-version', '1'], { endpoint: `http://${M[1]}:7401` });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('configuration version 2: keepalivePeriodMs=150 rebalanceIntervalMs=3000\n');
    const s = await f.waitForView((v) => healthy(v, M) && M.every((ip) => v[ip]!.configVersion === 2), { since: t0, what: 'all three members on configuration version 2' });
    expect(s.t - t0).toBeLessThan(5000);
    console.log(`configuration version 2 reported by all three members ${s.t - t0} ms after gwctl config set started`);
    for (const ip of M) {
      const r = await f.gwctl(['cluster', '--json'], { endpoint: `http://${ip}:7401` });
      expect(JSON.parse(r.stdout)).toMatchObject({ self: ip, configVersion: 2, keepalivePeriodMs: 150 });
      const file = JSON.parse(readFileSync(f.member(ip).config, 'utf8'));
      expect(file.cluster).toMatchObject({ configVersion: 2, keepalivePeriodMs: 150, rebalanceIntervalMs: 3000 });
      const cfg = JSON.parse((await f.gwctl(['config', 'get', '--json'], { endpoint: `http://${ip}:7401` })).stdout);
      expect(cfg.settings.keepalivePeriodMs).toBe(150);
    }
    // The change moved no work: nobody left the cluster for it.
    expect(f.samples.filter((x) => x.t >= t0).every((x) => M.every((ip) => !x.views[ip]!.error && x.views[ip]!.members.length === 3))).toBe(true);
  });

  it('drain shows progress until the member owns nothing; undrain and rebalance spread the units again', async () => {
    const master = f.latest()!.views[M[0]!]!.master!;
    const victim = M.find((ip) => ip !== master)!;
    const d = await f.gwctl(['drain', victim], { endpoint: `http://${M.find((ip) => ip !== victim)!}:7401` });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(new RegExp(`draining ${victim.replaceAll('.', '\\.')}: 0 unit\\(s\\) left, 0 moving`));
    expect(d.stdout).toBe(`drain ${victim}: done\n`);
    const members = JSON.parse((await f.gwctl(['members', '--json'], { endpoint: `http://${victim}:7401` })).stdout).members as { id: string; units: number; draining: boolean }[];
    expect(members.find((m) => m.id === victim)).toMatchObject({ units: 0, draining: true });
    expect((await f.gwctl(['undrain', victim, '--no-wait'])).code).toBe(0);
    const rb = await f.gwctl(['rebalance']);
    expect(rb.code, rb.stderr).toBe(0);
    await f.waitForView((v) => balanced(v, M), { since: Date.now(), what: 'balanced again after undrain' });
    const mt = await f.gwctl(['members']);
    expect(mt.stdout).toMatch(/^MEMBER +ROLE +VERSION +UNITS +LOAD +LOSS +WATCHDOG +LAST KEEPALIVE$/m);
    // Every member announced its release (the daemon's package version), carried by the master's keepalive.
    for (const ip of M) expect(mt.stdout).toMatch(new RegExp(`^${ip.replaceAll('.', '\\.')} +(master|member) +\\d+\\.\\d+\\.\\d+\\S* +34[12] `, 'm'));
  });

  it('metrics from every member; actions refused without the token (exit 4)', async () => {
    for (const ip of M) {
      const r = await f.ops.exec([process.execPath, '-e', `fetch('http://${ip}:7401/metrics',{headers:{authorization:'Bearer e2e-token-0123456789abcdef'}}).then(r=>r.text()).then(t=>process.stdout.write(t))`]);
      const me = ip.replaceAll('.', '\\.');
      expect(r.stdout).toMatch(new RegExp(`gwcluster_config_version\\{member="${me}"\\} 2`));
      // Each member exports its own row only.
      expect([...r.stdout.matchAll(/^gwcluster_member_units\{member="([^"]+)"\} \d+$/gm)].map((m) => m[1])).toEqual([ip]);
    }
    const r = await f.ops.exec([process.execPath, GWCTL, '--endpoint', `http://${M[0]}:7401`, 'rebalance']);
    expect(r.code).toBe(4);
  });
});
