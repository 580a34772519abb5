// gwctl wg: the cluster's WireGuard key. The private key is made by node:crypto (X25519 key generation),
// written as base64 (the format of `wg genkey`) to a file of mode 0600 that must not exist yet (unless
// force), and never printed: only its public key is shown.
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, openSync, writeSync, constants } from 'node:fs';

export interface GeneratedWireGuardKey {
  path: string;
  publicKey: string;
}

export function generateWireGuardKey(opts: { out: string; force: boolean }): GeneratedWireGuardKey {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' }) as { d?: string; x?: string };
  if (!jwk.d || !jwk.x) throw new Error('gwctl wg genkey: node:crypto returned an X25519 key without its raw parts');
  const raw = Buffer.from(jwk.d, 'base64url');
  const publicKey = Buffer.from(jwk.x, 'base64url').toString('base64');
  const flags = constants.O_WRONLY | constants.O_CREAT | (opts.force ? constants.O_TRUNC : constants.O_EXCL);
  let fd: number;
  try {
    fd = openSync(opts.out, flags, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new Error(`gwctl wg genkey: ${opts.out} exists; pass --force to replace the key (peers must then be given the new public key)`);
    throw new Error(`gwctl wg genkey: cannot create ${opts.out}: ${(e as Error).message}`);
  }
  try {
    writeSync(fd, `${raw.toString('base64')}\n`);
  } finally {
    closeSync(fd);
    raw.fill(0);
  }
  return { path: opts.out, publicKey };
}
