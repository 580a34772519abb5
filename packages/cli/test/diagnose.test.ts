// gwctl diagnose and gwctl capture as processes against a running gwclusterd (one member on loopback,
// its personality made by gwctl, with an admin token and a read-only metrics token). Nothing leaves
// 127.0.0.0/8. The capture of real packets is in test/e2e/observe.e2e.test.ts (network namespaces).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const GWCTL = join(ROOT, 'packages/cli/bin/gwctl.js');
const GWCLUSTERD = join(ROOT, 'packages/daemon/bin/gwclusterd.js');
const TOKEN = 'diag-test-token-0123456789';
const METRICS_TOKEN = 'diag-metrics-token-0123456789';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function gwctl(args: string[], cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [GWCTL, ...args], { env: { ...process.env, GWCTL_TOKEN: '', GWCTL_ENDPOINT: '' }, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'gwctl-diagnose-test-'));
let proc: ChildProcess | undefined;
let endpoint = '';

beforeAll(async () => {
  const [udp, admin] = await Promise.all([freePort(), freePort()]);
  expect((await gwctl(['pki', 'init-ca', '--dir', join(dir, 'ca')])).code).toBe(0);
  const made = await gwctl([
    'personality', '--ca-dir', join(dir, 'ca'), '--out', join(dir, 'm1'), '--cluster-name', 'diag', '--cluster-ip', '198.51.100.10',
    '--member-ip', '127.0.0.1', '--prefix-length', '8', '--interface', 'lo', '--token', TOKEN,
    '--set', JSON.stringify({ cluster: { port: udp, reclaimGraceMs: 0 }, admin: { port: admin, metricsToken: METRICS_TOKEN }, clusterAddress: { mode: 'none' }, logLevel: 'info' }),
  ]);
  expect(made.code, made.stderr).toBe(0);
  proc = spawn(process.execPath, [GWCLUSTERD, '--config', join(dir, 'm1', 'member.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
  endpoint = `http://127.0.0.1:${admin}`;
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(`${endpoint}/healthz`, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (r.ok && ((await r.json()) as { role?: string }).role === 'master') return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('gwclusterd did not become master');
}, 90_000);

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc!.on('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

function untar(archive: string): string {
  const out = join(dir, `x-${Date.now()}`);
  mkdirSync(out);
  const r = spawnSync('tar', ['-xzf', archive, '-C', out]);
  expect(r.status, String(r.stderr)).toBe(0);
  const [top] = readdirSync(out);
  return join(out, top!);
}

function allText(root: string): string {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'))
    .join('\n');
}

describe('gwctl diagnose', () => {
  it('one tar.gz with status, events, counters, configuration without secrets, recent logs and metrics of the member', async () => {
    const archive = join(dir, 'diag.tar.gz');
    const r = await gwctl(['-e', endpoint, '-t', TOKEN, 'diagnose', '--out', archive]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(archive);
    expect(r.stderr).toMatch(/127\.0\.0\.1: 9\/9 files/);
    const root = untar(archive);
    expect(readdirSync(join(root, '127.0.0.1')).sort()).toEqual(['cluster.json', 'config.json', 'counters.json', 'events.json', 'logs.jsonl', 'member-config.json', 'members.json', 'metrics.txt', 'units.json']);
    const cluster = JSON.parse(readFileSync(join(root, '127.0.0.1', 'cluster.json'), 'utf8'));
    expect(cluster).toMatchObject({ self: '127.0.0.1', master: '127.0.0.1' });
    const events = JSON.parse(readFileSync(join(root, '127.0.0.1', 'events.json'), 'utf8'));
    expect(events.events.some((e: { kind: string }) => e.kind === 'role')).toBe(true);
    // Recent logs: the daemon's own pino lines, e.g. taking office as master.
    const logs = readFileSync(join(root, '127.0.0.1', 'logs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg?: string; level: number });
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.some((l) => /master/.test(l.msg ?? ''))).toBe(true);
    const memberConfig = JSON.parse(readFileSync(join(root, '127.0.0.1', 'member-config.json'), 'utf8'));
    expect(memberConfig.config.admin).toMatchObject({ token: '<redacted>', metricsToken: '<redacted>' });
    expect(memberConfig.config.pki.key).toMatch(/member\.key$/);
    expect(readFileSync(join(root, '127.0.0.1', 'metrics.txt'), 'utf8')).toMatch(/^gwcluster_build_info\{version="[^"]+",protocol="2"\} 1$/m);
    const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8'));
    expect(manifest.members['127.0.0.1'].failed).toEqual({});
    // No secret anywhere in the archive: neither token, nor a private key.
    const text = allText(root);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(METRICS_TOKEN);
    expect(text).not.toMatch(/PRIVATE KEY/);
  });

  it('with the read-only metrics token: the archive has what that token may read, and says what it may not', async () => {
    const archive = join(dir, 'diag-ro.tar.gz');
    const r = await gwctl(['-e', endpoint, '-t', METRICS_TOKEN, 'diagnose', '--out', archive]);
    expect(r.code, r.stderr).toBe(0);
    const root = untar(archive);
    const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.members['127.0.0.1'].failed).sort()).toEqual(['logs.jsonl', 'member-config.json']);
    expect(manifest.members['127.0.0.1'].failed['logs.jsonl']).toMatch(/403 GW_FORBIDDEN/);
    expect(existsSync(join(root, '127.0.0.1', 'metrics.txt'))).toBe(true);
  });

  it('exit 4 with a wrong token, exit 3 when no member answers, exit 2 for an --out in a missing directory', async () => {
    expect((await gwctl(['-e', endpoint, '-t', 'wrong-token-wrong-token', 'diagnose', '--out', join(dir, 'w.tar.gz')])).code).toBe(4);
    const port = await freePort();
    const gone = await gwctl(['-e', `http://127.0.0.1:${port}`, '-t', TOKEN, 'diagnose', '--out', join(dir, 'gone.tar.gz')]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/no member answered/);
    const bad = await gwctl(['-e', endpoint, '-t', TOKEN, 'diagnose', '--out', join(dir, 'no', 'such', 'dir', 'x.tar.gz')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/does not exist/);
  });
});

describe('gwctl capture (argument and refusal paths; packets: test/e2e/observe.e2e.test.ts)', () => {
  it('a member without a data plane refuses (exit 5, GW_REFUSED); bad unit is exit 2; the metrics token is exit 4', async () => {
    const r = await gwctl(['-e', endpoint, '-t', TOKEN, 'capture', '--unit', '5', '--out', join(dir, 'u5.pcap')]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/GW_REFUSED: .*no packet capture/);
    expect(existsSync(join(dir, 'u5.pcap'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
    const bad = await gwctl(['-e', endpoint, '-t', TOKEN, 'capture', '--unit', '1024']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--unit "1024" must be a whole number from 0 to 1023/);
    const ro = await gwctl(['-e', endpoint, '-t', METRICS_TOKEN, 'capture', '--unit', '5', '--out', join(dir, 'u5.pcap')]);
    expect(ro.code).toBe(4);
  });
});
