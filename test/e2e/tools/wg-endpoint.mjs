#!/usr/bin/env node
// Runs one WireGuard endpoint of gwcluster (packages/daemon/dist/tunnels/wireguard-endpoint.js: the handshake
// core over the addon's data path) for end-to-end tests. Needs the build (npx tsc -b, the addon).
//   node wg-endpoint.mjs CONFIG.json
// CONFIG: { privateKey (base64), listenAddress, listenPort, tunName, underLoadPerSecond?, peers: [{ publicKey, allowedIps, presharedKey? }] }
// Prints one JSON line {"ready":true,"publicKey":...} once listening; each line "status" on stdin prints
// {"status":[...],"drops":{...},"device":{...}}; exits on SIGTERM or when stdin closes.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { WireGuardEndpoint } from '../../../packages/daemon/dist/tunnels/wireguard-endpoint.js';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const b64 = (s) => Buffer.from(s, 'base64');
const ep = new WireGuardEndpoint({
  privateKey: b64(cfg.privateKey),
  listenAddress: cfg.listenAddress,
  listenPort: cfg.listenPort,
  tunName: cfg.tunName,
  ...(cfg.underLoadPerSecond !== undefined ? { underLoadPerSecond: cfg.underLoadPerSecond } : {}),
  peers: cfg.peers.map((p) => ({ publicKey: b64(p.publicKey), allowedIps: p.allowedIps, ...(p.presharedKey ? { presharedKey: b64(p.presharedKey) } : {}) })),
});
ep.start();
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
out({ ready: true, publicKey: Buffer.from(ep.publicKey).toString('base64'), port: ep.port });
const stop = () => { ep.close(); process.exit(0); };
process.on('SIGTERM', stop);
createInterface({ input: process.stdin })
  .on('line', (line) => { if (line.trim() === 'status') out({ status: ep.status(), drops: ep.drops() }); })
  .on('close', stop);
setInterval(() => {}, 1 << 30);
