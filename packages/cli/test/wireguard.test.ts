// gwctl wg genkey as a process: the private key lands in a 0600 file in the format of `wg genkey`, only the
// public key is printed (and it is what `wg pubkey` derives), and an existing key is not overwritten
// without --force.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const GWCTL = join(ROOT, 'packages/cli/bin/gwctl.js');
const dir = mkdtempSync(join(tmpdir(), 'gwctl-wg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const gwctl = (args: string[]) => spawnSync(process.execPath, [GWCTL, ...args], { encoding: 'utf8', env: { ...process.env, GWCTL_TOKEN: '', GWCTL_ENDPOINT: '' } });
const haveWg = spawnSync('sh', ['-c', 'command -v wg']).status === 0;

describe('gwctl wg genkey', () => {
  it('writes a 0600 key file and prints only the public key', () => {
    const out = join(dir, 'wireguard.key');
    const r = gwctl(['wg', 'genkey', '--out', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const { publicKey, path } = JSON.parse(r.stdout) as { publicKey: string; path: string };
    expect(path).toBe(out);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const priv = readFileSync(out, 'utf8').trim();
    expect(Buffer.from(priv, 'base64')).toHaveLength(32);
    expect(Buffer.from(publicKey, 'base64')).toHaveLength(32);
    expect(r.stdout).not.toContain(priv);
    if (haveWg) expect(execFileSync('wg', ['pubkey'], { input: priv }).toString().trim()).toBe(publicKey);
  });

  it('refuses to overwrite an existing key without --force', () => {
    const out = join(dir, 'again.key');
    expect(gwctl(['wg', 'genkey', '--out', out]).status).toBe(0);
    const first = readFileSync(out, 'utf8');
    const r = gwctl(['wg', 'genkey', '--out', out]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/exists; pass --force/);
    expect(readFileSync(out, 'utf8')).toBe(first);
    const forced = gwctl(['wg', 'genkey', '--out', out, '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/^wrote .* \(mode 0600\)\npublic key [A-Za-z0-9+/]{43}=\n$/);
    expect(readFileSync(out, 'utf8')).not.toBe(first);
  });
});
