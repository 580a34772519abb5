// Reload and revocation on real namespaces and processes: gwclusterd re-reads its personality on SIGHUP
// (systemctl reload) without leaving the cluster; a broken file is refused and the member carries on;
// a certificate revoked with gwctl pki revoke and installed on the other members (reload) is refused at
// the revoked member's next message, while the two others carry on.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFixture, GWCTL, balanced, type Sample } from './cluster-fixture.mjs';
import { waitFor } from '../harness/wait.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'] as const;
const [M1, M2, M3] = M;
const NEW_TOKEN = 'e2e-new-token-0123456789abcdef';

function editConfig(f: ClusterFixture, ip: string, edit: (raw: Record<string, any>) => void): void {
  const file = f.member(ip).config;
  const raw = JSON.parse(readFileSync(file, 'utf8'));
  edit(raw);
  writeFileSync(file, `${JSON.stringify(raw, null, 2)}\n`);
}

/** Every sample since t0 in which each of `ips` reports `ips` among its members, without an error. */
function stayedTogether(samples: readonly Sample[], t0: number, ips: readonly string[]): { samples: number; broken: number } {
  const since = samples.filter((s) => s.t >= t0);
  const broken = since.filter((s) => !ips.every((ip) => !s.views[ip]?.error && ips.every((other) => s.views[ip]!.members.includes(other))));
  return { samples: since.length, broken: broken.length };
}

describe('reload (SIGHUP) and revocation of a member certificate', () => {
  let f: ClusterFixture;
  let original: string;

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3 });
    original = readFileSync(f.member(M1).config, 'utf8');
    f.startMonitor(50);
    f.startAll();
    await f.waitForView((v) => balanced(v, [...M]), { what: 'a balanced three-member cluster', timeoutMs: 20_000 });
  }, 60_000);

  afterAll(async () => {
    await f?.destroy();
  });

  it('a member reloaded with a new token accepts the new one and refuses the old, and never leaves the cluster', async () => {
    const t0 = Date.now();
    editConfig(f, M1, (raw) => (raw.admin.token = NEW_TOKEN));
    f.signal(M1, 'SIGHUP');
    const line = await waitFor(() => f.logLine(M1, /^reload of .*: applied admin\.token$/, t0), { timeoutMs: 5000, what: 'the reload log line' });
    console.log(`reload applied ${line.time - t0} ms after SIGHUP`);
    const withNew = await f.gwctl(['--token', NEW_TOKEN, 'cluster', '--json'], { endpoint: `http://${M1}:7401` });
    expect(withNew.code, withNew.stderr).toBe(0);
    expect(JSON.parse(withNew.stdout)).toMatchObject({ self: M1 });
    const withOld = await f.gwctl(['cluster'], { endpoint: `http://${M1}:7401` });
    expect(withOld.code).toBe(4);
    expect(withOld.stderr).toMatch(/wrong bearer token/);
    // The others saw no change of membership; the process did not restart.
    await new Promise((r) => setTimeout(r, 1500));
    const together = stayedTogether(f.samples, t0, [M2, M3]);
    expect(together.samples).toBeGreaterThan(10);
    expect(together.broken).toBe(0);
    expect(f.samples.filter((s) => s.t >= t0).every((s) => [M2, M3].every((ip) => s.views[ip]!.members.includes(M1)))).toBe(true);
    expect(f.logs.get(M1)!.some((l) => l.exited)).toBe(false);
  });

  it('a reload with a broken file keeps the running configuration (new token still works) and logs why', async () => {
    const t0 = Date.now();
    writeFileSync(f.member(M1).config, '{"cluster": {"name": ');
    f.signal(M1, 'SIGHUP');
    const refused = await waitFor(() => f.logLine(M1, /^reload refused, the running configuration is kept: .*not valid JSON/, t0), { timeoutMs: 5000, what: 'the refusal log line' });
    expect(refused.level).toBe(50);
    const r = await f.gwctl(['--token', NEW_TOKEN, 'counters', '--json'], { endpoint: `http://${M1}:7401` });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(r.stdout))).toContain('"node.reload.failed":1');
    // Put the personality back with the original token: the monitor reads every member with it again.
    writeFileSync(f.member(M1).config, original);
    const t1 = Date.now();
    f.signal(M1, 'SIGHUP');
    await waitFor(() => f.logLine(M1, /^reload of .*: applied admin\.token$/, t1), { timeoutMs: 5000, what: 'the second reload' });
    await f.waitForView((v) => balanced(v, [...M]), { since: t1, what: 'all three read with the original token' });
    expect(stayedTogether(f.samples, t0, [M2, M3]).broken).toBe(0);
    expect(f.logs.get(M1)!.some((l) => l.exited)).toBe(false);
  });

  it('member 3 revoked with gwctl pki revoke, the CRL installed and reloaded on members 1 and 2: member 3 is refused and stays out; 1 and 2 carry on', async () => {
    const rev = spawnSync(process.execPath, [GWCTL, 'pki', 'revoke', '--ca-dir', f.caDir, '--member-ip', M3], { encoding: 'utf8' });
    expect(rev.status, rev.stderr).toBe(0);
    const crl = join(f.caDir, 'crl.pem');
    const t0 = Date.now();
    for (const ip of [M1, M2]) {
      copyFileSync(crl, join(dirname(f.member(ip).config), 'ca.crl'));
      editConfig(f, ip, (raw) => (raw.pki.crl = 'ca.crl'));
      f.signal(ip, 'SIGHUP');
    }
    for (const ip of [M1, M2]) await waitFor(() => f.logLine(ip, /^reload of .*: applied pki\.crl \(1 revoked, newly revoked [0-9a-f]+\)$/, t0), { timeoutMs: 5000, what: `the CRL reload on ${ip}` });
    const out = await f.waitForView((v) => [M1, M2].every((ip) => v[ip]!.members.length === 2 && !v[ip]!.members.includes(M3)), { since: t0, timeoutMs: 10_000, what: 'member 3 out of the cluster' });
    console.log(`member 3 out of members 1 and 2's cluster ${out.t - t0} ms after the reloads began`);
    // It stays out (it keeps trying with its revoked certificate), and 1 and 2 never lost each other.
    const t1 = Date.now();
    await new Promise((r) => setTimeout(r, 4000));
    const after = f.samples.filter((s) => s.t >= t1);
    expect(after.length).toBeGreaterThan(20);
    expect(after.every((s) => [M1, M2].every((ip) => !s.views[ip]!.members.includes(M3)))).toBe(true);
    expect(stayedTogether(f.samples, t0, [M1, M2]).broken).toBe(0);
    const last = f.latest()!.views;
    expect([last[M1]!.role, last[M2]!.role].sort()).toEqual(['master', 'member']);
    expect(last[M1]!.owned + last[M2]!.owned).toBe(1024);
    const master = last[M1]!.role === 'master' ? M1 : M2;
    expect(f.logLine(master, /^dropped datagram: certificate of 192\.0\.2\.13 rejected \(revoked\)|^dropped datagram: message from 192\.0\.2\.13 carries no certificate/, t0)).toBeDefined();
    // Member 3 itself refuses a reload of a CRL that revokes its own certificate, and keeps running.
    const t2 = Date.now();
    copyFileSync(crl, join(dirname(f.member(M3).config), 'ca.crl'));
    editConfig(f, M3, (raw) => (raw.pki.crl = 'ca.crl'));
    f.signal(M3, 'SIGHUP');
    await waitFor(() => f.logLine(M3, /^reload refused, .*own certificate is refused \(revoked\)/, t2), { timeoutMs: 5000, what: "member 3's refusal" });
    expect(f.logs.get(M3)!.some((l) => l.exited)).toBe(false);
  });
});
