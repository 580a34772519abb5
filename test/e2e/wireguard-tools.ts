// What the WireGuard e2e tests share: whether wireguard-go and wg are there (and we may use them), key
// generation through `wg`, and the node scripts they run in client namespaces.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

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
