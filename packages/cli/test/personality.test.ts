// gwctl personality as a process: a personality gwclusterd would refuse is refused before anything is
// written (the error names the field), and --owner makes one the service account can read and boot from
// (checked by gwclusterd --check running as that account) while nobody else can read the token or key.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const GWCTL = join(ROOT, 'packages/cli/bin/gwctl.js');
const GWCLUSTERD = join(ROOT, 'packages/daemon/bin/gwclusterd.js');
// The account every Debian system has; the package's own account (gwcluster) may not exist here.
const ACCOUNT = { name: 'nobody', uid: 65534, gid: 65534 };
const isRoot = process.getuid?.() === 0;

let dir: string;

function gwctl(args: string[]) {
  return spawnSync(process.execPath, [GWCTL, ...args], { encoding: 'utf8', env: { ...process.env, GWCTL_TOKEN: '', GWCTL_ENDPOINT: '' } });
}

function personality(out: string, overrides: Record<string, string> = {}, extra: string[] = []) {
  const opts: Record<string, string> = {
    '--cluster-name': 'edge',
    '--cluster-ip': '198.51.100.10',
    '--member-ip': '192.0.2.11',
    '--interface': 'eth0',
    '--token': 'personality-test-token-0123',
    ...overrides,
  };
  return gwctl(['personality', '--ca-dir', join(dir, 'ca'), '--out', out, ...Object.entries(opts).flat(), ...extra]);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gwctl-personality-'));
  // The service account must be able to reach the personality directories below.
  chmodSync(dir, 0o755);
  const ca = gwctl(['pki', 'init-ca', '--dir', join(dir, 'ca'), '--name', 'test CA']);
  expect(ca.status, ca.stderr).toBe(0);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gwctl personality refuses what gwclusterd would refuse, writing nothing', () => {
  it.each([
    ['a bad cluster name', { '--cluster-name': 'edge cluster!' }, /cluster\.name: must match pattern/],
    ['a 35-character interface name', { '--interface': 'i'.repeat(35) }, /member\.interface: must NOT have more than 15 characters/],
    ['the cluster IP equal to the member IP', { '--cluster-ip': '192.0.2.11' }, /cluster\.clusterIp: must differ from member\.address/],
  ])('%s', (_what, overrides, field) => {
    const out = join(dir, `refused-${Object.keys(overrides)[0]!.slice(2)}`);
    const r = personality(out, overrides);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^gwctl: .*member\.json: gwclusterd would refuse this configuration, nothing written: /);
    expect(r.stderr).toMatch(field);
    expect(existsSync(out)).toBe(false);
  });

  it('a --set that breaks the schema is refused the same way, and an existing directory keeps its files', () => {
    const out = join(dir, 'kept');
    expect(personality(out).status).toBe(0);
    const before = readdirSync(out).map((f) => [f, statSync(join(out, f)).mtimeMs]);
    const r = personality(out, {}, ['--set', '{"logLevel":"loud"}', '--force']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/logLevel: must be one of/);
    expect(readdirSync(out).map((f) => [f, statSync(join(out, f)).mtimeMs])).toEqual(before);
  });

  it('an unknown --owner is refused before anything is written', () => {
    const out = join(dir, 'no-owner');
    const r = personality(out, {}, ['--owner', 'no-such-user-gwc']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--owner no-such-user-gwc: no such user/);
    expect(existsSync(out)).toBe(false);
  });
});

describe.skipIf(!isRoot)('gwctl personality --owner (as root)', () => {
  const check = (config: string, as?: typeof ACCOUNT) =>
    spawnSync(process.execPath, [GWCLUSTERD, '--config', config, '--check'], { encoding: 'utf8', ...(as ? { uid: as.uid, gid: as.gid } : {}) });

  it('without --owner the service account cannot read the personality (owner-only modes)', () => {
    const out = join(dir, 'root-only');
    expect(personality(out).status).toBe(0);
    const r = check(join(out, 'member.json'), ACCOUNT);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/EACCES/);
  });

  it('gives the directory and files to root and the account\'s group, the key to the account; the account boots from it', () => {
    const out = join(dir, 'owned');
    const r = personality(out, {}, ['--owner', ACCOUNT.name, '--sign-bundle']);
    expect(r.status, r.stderr).toBe(0);
    const st = (f: string) => statSync(join(out, f));
    const mode = (f: string) => (st(f).mode & 0o777).toString(8);
    expect(mode('.')).toBe('750');
    expect([st('.').uid, st('.').gid]).toEqual([0, ACCOUNT.gid]);
    for (const f of ['member.json', 'member.crt', 'ca.crt', 'bundle.sig']) {
      expect(mode(f), f).toBe('640');
      expect([st(f).uid, st(f).gid], f).toEqual([0, ACCOUNT.gid]);
    }
    expect(mode('member.key')).toBe('600');
    expect([st('member.key').uid, st('member.key').gid]).toEqual([ACCOUNT.uid, ACCOUNT.gid]);
    const ok = check(join(out, 'member.json'), ACCOUNT);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/is valid; bundle signature verified/);
  });
});
