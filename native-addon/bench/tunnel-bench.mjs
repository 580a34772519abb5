#!/usr/bin/env node
// Micro-benchmarks of the WireGuard plane, in one process, no network:
//  - handshakes per second a responder TunnelCore completes (consume an initiation, answer it: node:crypto
//    X25519, BLAKE2s, ChaCha20-Poly1305), counting the responder's time only;
//  - the data path: TunnelTransport.encryptBatch then decryptBatch of 1400-byte inner packets in batches of
//    64 (libsodium ChaCha20-Poly1305, replay window, cryptokey routing), in Gbit/s of inner bytes, one thread.
// Needs the build (npx tsc -b) and the addon. Usage: node native-addon/bench/tunnel-bench.mjs [--seconds 3]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { TunnelTransport } from '../dist/index.js';
import { TunnelCore } from '../../packages/daemon/dist/tunnels/tunnel-core.js';
import { clampPrivateKey, publicKeyOf } from '../../packages/daemon/dist/tunnels/primitives.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);

function handshakes() {
  const server = clampPrivateKey(randomBytes(32));
  const clients = Array.from({ length: 64 }, () => clampPrivateKey(randomBytes(32)));
  const responder = new TunnelCore({ privateKey: server, random: randomBytes, underLoadPerSecond: 1e9, peers: clients.map((k) => ({ publicKey: publicKeyOf(k) })) });
  const serverEp = { address: '192.0.2.1', port: 51820 };
  const initiators = clients.map((k) => new TunnelCore({ privateKey: k, random: randomBytes, peers: [{ publicKey: publicKeyOf(server), endpoint: serverEp }] }));
  const from = { address: '198.51.100.7', port: 40000 };
  const wall0 = Date.now();
  let done = 0, responderMs = 0, now = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    now += 1000; // past each peer's initiation rate limit; timestamps grow with it
    for (const ini of initiators) {
      const init = ini.step({ kind: 'need-keypair', peer: 0 }, now, wall0 + now).find((e) => e.kind === 'send');
      const s = performance.now();
      const fx = responder.step({ kind: 'datagram', from, bytes: init.bytes }, now, wall0 + now);
      responderMs += performance.now() - s;
      if (fx.some((e) => e.kind === 'handshake-complete')) done++;
      ini.step({ kind: 'datagram', from: serverEp, bytes: fx.find((e) => e.kind === 'send').bytes }, now, wall0 + now);
    }
  }
  return { handshakes: done, perSecond: Math.round(done / (responderMs / 1000)) };
}

function dataPath() {
  const k1 = randomBytes(32), k2 = randomBytes(32);
  const a = new TunnelTransport(), b = new TunnelTransport();
  a.setAllowedIps(0, ['203.0.113.0/24']);
  a.setKeypairs(0, [{ localIndex: 1, remoteIndex: 2, sendKey: k1, receiveKey: k2, canSend: true }]);
  a.setEndpoint(0, { address: '198.51.100.7', port: 40000 });
  b.setAllowedIps(0, ['192.0.2.0/24']);
  b.setKeypairs(0, [{ localIndex: 2, remoteIndex: 1, sendKey: k2, receiveKey: k1, canSend: true }]);
  const N = 64, L = 1400;
  const pkt = Buffer.alloc(L);
  pkt[0] = 0x45; pkt.writeUInt16BE(L, 2); pkt[9] = 17; pkt.set([192, 0, 2, 100], 12); pkt.set([203, 0, 113, 65], 16);
  const packets = Buffer.concat(Array.from({ length: N }, () => pkt));
  const offsets = Uint32Array.from({ length: N + 1 }, (_, i) => i * L);
  let bytes = 0, ok = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const e = a.encryptBatch(-1, packets, offsets);
    const d = b.decryptBatch(e.datagrams, e.offsets, { address: '192.0.2.1', port: 51820 });
    ok += d.status.filter((s) => s === 'data').length;
    bytes += N * L;
  }
  const s = (performance.now() - t0) / 1000;
  return { packets: ok, gbitPerSecond: +((bytes * 8) / s / 1e9).toFixed(2), packetsPerSecond: Math.round(ok / s) };
}

console.log(JSON.stringify({ handshake: handshakes(), encryptThenDecrypt1400B: dataPath() }));
