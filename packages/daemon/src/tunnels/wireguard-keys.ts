/**
 * The key files of the WireGuard section (tunnels.wireguard): the cluster's private key and the peers'
 * preshared keys, each base64 of 32 bytes in a file of mode 0600 or stricter (the format of `wg genkey`,
 * `wg genpsk`, `gwctl wg genkey`). Read at boot, by `gwclusterd --check` and by a reload, with the checks
 * of a boot: an unreadable file, a mode wider than 0600 or a bad key stops the member with a BootError
 * naming the file. Only the public key is ever shown.
 */
import { readFileSync, statSync } from 'node:fs';
import { wireGuardKeyBytes, type WireGuardConfig } from '@gwcluster/contracts';
import { BootError } from '../config/credentials.js';
import { publicKeyOf } from './primitives.js';

export interface WireGuardKeys {
  readonly privateKey: Uint8Array;
  /** base64, as `wg pubkey` prints it. */
  readonly publicKey: string;
  /** Per peer (same order as the configuration), its preshared key when it has one. */
  readonly presharedKeys: readonly (Uint8Array | undefined)[];
}

function readKeyFile(file: string, what: string): Uint8Array {
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new BootError(file, `cannot read the ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if ((mode & 0o077) !== 0) throw new BootError(file, `the ${what} is readable or writable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  const bytes = wireGuardKeyBytes(text);
  if (typeof bytes === 'string') throw new BootError(file, `the ${what} ${bytes}`);
  return bytes;
}

export function loadWireGuardKeys(wg: WireGuardConfig): WireGuardKeys {
  const privateKey = readKeyFile(wg.privateKeyFile, 'WireGuard private key (tunnels.wireguard.privateKeyFile)');
  const publicKey = Buffer.from(publicKeyOf(privateKey)).toString('base64');
  const presharedKeys = wg.peers.map((p, i) => (p.presharedKeyFile ? readKeyFile(p.presharedKeyFile, `preshared key of tunnels.wireguard.peers[${i}]`) : undefined));
  const self = wg.peers.findIndex((p) => p.publicKey === publicKey);
  if (self >= 0) throw new BootError(wg.privateKeyFile, `tunnels.wireguard.peers[${self}].publicKey is the cluster's own public key; a peer must have its own key`);
  return { privateKey, publicKey, presharedKeys };
}
