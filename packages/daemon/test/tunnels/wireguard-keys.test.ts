// The WireGuard key files of tunnels.wireguard: read with the checks of a boot (mode 0600, base64 of 32
// bytes, readable), only the public key shown.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { WireGuardConfig } from '@gwcluster/contracts';
import { BootError } from '../../src/config/credentials.js';
import { loadWireGuardKeys } from '../../src/tunnels/wireguard-keys.js';
import { publicKeyOf } from '../../src/tunnels/primitives.js';

const dir = mkdtempSync(join(tmpdir(), 'gwc-wgkeys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const priv = Buffer.alloc(32, 7);
priv[0]! &= 248;
priv[31] = (priv[31]! & 127) | 64;
function file(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}
function wg(over: Partial<WireGuardConfig>): WireGuardConfig {
  return { enabled: true, listenPort: 51820, privateKeyFile: file('wg.key', `${priv.toString('base64')}\n`), interface: 'gwwg0', mtu: 1420, underLoadPerSecond: 1000, peers: [], ...over };
}

describe('loadWireGuardKeys', () => {
  it('reads the private key and preshared keys; the public key is X25519 of the private key', () => {
    const psk = file('p.psk', `${Buffer.alloc(32, 9).toString('base64')}\n`);
    const keys = loadWireGuardKeys(wg({ peers: [{ publicKey: Buffer.alloc(32, 1).toString('base64'), allowedIps: ['10.0.0.0/24'], presharedKeyFile: psk }, { publicKey: Buffer.alloc(32, 2).toString('base64'), allowedIps: ['10.0.1.0/24'] }] }));
    expect(keys.publicKey).toBe(publicKeyOf(priv).toString('base64'));
    expect(Buffer.from(keys.presharedKeys[0]!)).toEqual(Buffer.alloc(32, 9));
    expect(keys.presharedKeys[1]).toBeUndefined();
  });

  it('agrees with wg pubkey when wireguard-tools is installed', () => {
    let expected: string;
    try {
      expected = execFileSync('wg', ['pubkey'], { input: priv.toString('base64') }).toString().trim();
    } catch {
      return;
    }
    expect(loadWireGuardKeys(wg({})).publicKey).toBe(expected);
  });

  it('refuses a key file wider than 0600, a missing file, a bad key and the own key as a peer, naming the file', () => {
    const open = file('open.key', priv.toString('base64'), 0o640);
    expect(() => loadWireGuardKeys(wg({ privateKeyFile: open }))).toThrow(new BootError(open, 'the WireGuard private key (tunnels.wireguard.privateKeyFile) is readable or writable by group or others (mode 640); chmod 600 it'));
    const missing = join(dir, 'missing.key');
    expect(() => loadWireGuardKeys(wg({ privateKeyFile: missing }))).toThrow(/missing\.key: cannot read the WireGuard private key .*ENOENT/);
    const short = file('short.key', Buffer.alloc(16).toString('base64'));
    expect(() => loadWireGuardKeys(wg({ privateKeyFile: short }))).toThrow(/short\.key: the WireGuard private key .* must be base64 of 32 bytes/);
    const wideP = file('wide.psk', Buffer.alloc(32, 9).toString('base64'), 0o644);
    expect(() => loadWireGuardKeys(wg({ peers: [{ publicKey: Buffer.alloc(32, 1).toString('base64'), allowedIps: ['10.0.0.0/24'], presharedKeyFile: wideP }] }))).toThrow(/wide\.psk: the preshared key of tunnels\.wireguard\.peers\[0\] is readable/);
    const own = publicKeyOf(priv).toString('base64');
    expect(() => loadWireGuardKeys(wg({ peers: [{ publicKey: own, allowedIps: ['10.0.0.0/24'] }] }))).toThrow(/peers\[0\]\.publicKey is the cluster's own public key/);
  });
});
