// What the WireGuard e2e tests share: whether wireguard-go and wg are there (and we may use them), key
// generation through `wg`, and the node scripts they run in client namespaces.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor, type Host } from '../harness/netns.mjs';

/** wireguard-go and wg installed, root, and a TUN device: the tests run; else they are skipped. */
export const haveTools = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v wireguard-go && command -v wg'], { stdio: 'ignore' });
    return process.getuid?.() === 0 && existsSync('/dev/net/tun');
  } catch {
    return false;
  }
})();

export const genkey = (): string => execFileSync('wg', ['genkey']).toString().trim();
export const pubkey = (k: string): string => execFileSync('wg', ['pubkey'], { input: k }).toString().trim();

/** A node script run in a client namespace: one TCP connection, `n` random bytes out, the echo back, compared. */
export const TCP_CLIENT = `
const net = require('node:net'); const { randomBytes } = require('node:crypto');
const [host, port, n] = process.argv.slice(1); const data = randomBytes(Number(n)); const got = [];
let local; const s = net.connect({ host, port: Number(port) }, () => { local = s.localAddress; s.write(data); s.end(); });
s.on('data', (d) => got.push(d));
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message })); process.exit(1); });
s.on('close', () => { const b = Buffer.concat(got); console.log(JSON.stringify({ sent: data.length, received: b.length, equal: b.equals(data), localAddress: local })); });
`;

/** A node script that sends datagrams (hex, comma-separated) to host:port from a fresh socket. */
export const UDP_SEND = `
const d = require('node:dgram').createSocket('udp4'); const [host, port, list] = process.argv.slice(1);
const msgs = list.split(',').map((h) => Buffer.from(h, 'hex')); let left = msgs.length;
for (const m of msgs) d.send(m, Number(port), host, () => { if (--left === 0) d.close(); });
`;

/**
 * Brings up a wireguard-go peer on `client` (interface `ifname`, distinct per peer: their control sockets
 * share /var/run/wireguard) with private key `key` (a 0600 file in `dir`), talking to `endpoint` for
 * `allowed`, its tunnel address `inner`.
 */
export async function startPeer(client: Host, o: { ifname: string; key: string; dir: string; peerPublic: string; endpoint: string; allowed: string; inner: string }): Promise<void> {
  client.spawn('wireguard-go', ['-f', o.ifname], { stdio: 'ignore', env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
  await waitFor(async () => (await client.exec(['ip', 'link', 'show', o.ifname])).code === 0, { timeoutMs: 15_000, what: `${o.ifname} to appear` });
  const keyFile = join(o.dir, `${o.ifname}.key`);
  writeFileSync(keyFile, `${o.key}\n`, { mode: 0o600 });
  await client.execOk(['wg', 'set', o.ifname, 'private-key', keyFile, 'peer', o.peerPublic, 'endpoint', o.endpoint, 'allowed-ips', o.allowed]);
  await client.execOk(['ip', 'addr', 'add', `${o.inner}/32`, 'dev', o.ifname]);
  await client.execOk(['ip', 'link', 'set', o.ifname, 'up']);
  await client.execOk(['ip', 'route', 'add', o.allowed, 'dev', o.ifname]);
}
