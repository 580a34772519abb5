// Cost of MessageSealer.seal() and MessageOpener.open() per message, on the built package.
// Run: npx tsc -b packages/security && node packages/security/bench/seal-open.mjs [messages]
import { createHmac, sign, verify } from 'node:crypto';
import { UNIT_COUNT } from '@gwcluster/wire';
import { MessageMacKeys, MessageOpener, MessageSealer, createTestPki, loadPrivateKey } from '../dist/index.js';

const N = Number(process.argv[2] ?? 5000);
const NOW = Date.UTC(2030, 0, 1);
const ips = Array.from({ length: 8 }, (_, i) => `192.0.2.${i + 1}`);
const pki = await createTestPki(ips);
const m = pki.members[ips[0]];
const sealer = new MessageSealer({ cluster: 'bench', memberIp: m.memberIp, certChainDer: m.chainDer, privateKeyPem: m.keyPem, incarnation: 1 });

const clientKeepalive = { type: 'client-keepalive', epoch: 1, seq: 1, load: 0.5, ownedUnits: Array.from({ length: 128 }, (_, i) => i * 8), busiestUnits: [{ unit: 8, weight: 1 }] };
const masterKeepalive = {
  type: 'master-keepalive', epoch: 1, seq: 1, keepalivePeriodMs: 100, configVersion: 1,
  members: ips.map((member) => ({ member, watchdogPeriods: 3, loss: 0, load: 0.5 })),
  table: { version: 1, owners: Array.from({ length: UNIT_COUNT }, (_, u) => ips[u >> 7]) }, // 8 contiguous runs
};

function time(label, n, fn) {
  for (let i = 0; i < 500; i++) fn(i); // warm-up on items 0..499; measured: 500..n+499 (fresh, in seq order)
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(500 + i);
  const us = Number(process.hrtime.bigint() - t) / 1000 / n;
  console.log(`${label.padEnd(58)} ${us.toFixed(1).padStart(7)} µs/msg`);
  return us;
}

/** Two variants timed in alternating blocks (10 of n/10 each), so that a change of machine load hits both alike. */
function pair(labelA, fnA, labelB, fnB, n) {
  for (let i = 0; i < 500; i++) { fnA(i); fnB(i); }
  const blocks = 10;
  const per = Math.floor(n / blocks);
  let a = 0n;
  let b = 0n;
  for (let k = 0; k < blocks; k++) {
    let t = process.hrtime.bigint();
    for (let i = 0; i < per; i++) fnA(500 + k * per + i);
    a += process.hrtime.bigint() - t;
    t = process.hrtime.bigint();
    for (let i = 0; i < per; i++) fnB(500 + k * per + i);
    b += process.hrtime.bigint() - t;
  }
  const usA = Number(a) / 1000 / (per * blocks);
  const usB = Number(b) / 1000 / (per * blocks);
  console.log(`${labelA.padEnd(58)} ${usA.toFixed(1).padStart(7)} µs/msg`);
  console.log(`${labelB.padEnd(58)} ${usB.toFixed(1).padStart(7)} µs/msg  (${(usB / usA).toFixed(2)} of the above)`);
}

let bytes = 0;
time('seal client-keepalive (no certificate)', N, () => { bytes = sealer.seal(clientKeepalive, 'broadcast', NOW).length; });
console.log(`  datagram ${bytes} bytes`);
time('seal master-keepalive (8 members, table, certificate)', N, () => { bytes = sealer.seal(masterKeepalive, 'broadcast', NOW).length; });
console.log(`  datagram ${bytes} bytes`);

const opener = new MessageOpener({ cluster: 'bench', self: '192.0.2.200', trust: pki.trustStore(), replayWindow: 64 });
const warm = sealer.seal(masterKeepalive, 'broadcast', NOW);
if (!opener.open(warm, NOW).ok) throw new Error('warm-up open failed');
const ck = Array.from({ length: N + 500 }, () => sealer.seal(clientKeepalive, 'broadcast', NOW));
const mk = Array.from({ length: N + 500 }, () => sealer.seal(masterKeepalive, 'broadcast', NOW));
let bad = 0;
let firstBad;
time('open client-keepalive (cached certificate)', N, (i) => { const r = opener.open(ck[i], NOW); if (!r.ok) { bad++; firstBad ??= r; } });
time('open master-keepalive (cert in message, TrustStore cache hit)', N, (i) => { const r = opener.open(mk[i], NOW); if (!r.ok) { bad++; firstBad ??= r; } });
if (bad) throw new Error(`${bad} opens failed, first: ${firstBad.code} ${firstBad.reason}`);

// A flood of captured datagrams (issue 10): each is dropped by a check before the signature.
const expectCode = (code) => (i, d) => { const r = opener.open(d, NOW); if (r.ok || r.code !== code) throw new Error(`expected ${code}, got ${r.ok ? 'ok' : r.code}`); };
const replayMk = expectCode('replay');
time('open replayed master-keepalive (dropped: replay)', N, (i) => replayMk(i, mk[i]));
const elsewhere = Array.from({ length: N + 500 }, () => sealer.seal(clientKeepalive, '192.0.2.7', NOW));
const misaddressed = expectCode('wrong-recipient');
time('open client-keepalive for another member (dropped: wrong-recipient)', N, (i) => misaddressed(i, elsewhere[i]));

// The same unicast CLIENT KEEPALIVE (to a member that knows the sender), signed and MAC'd (message-mac.ts).
const r = pki.members[ips[1]];
const publicKeyOf = (member) => pki.trustStore().verifyChain(member.chainDer, member.memberIp, NOW).publicKey;
const senderKeys = new MessageMacKeys({ cluster: 'bench', self: m.memberIp, privateKey: () => senderKey, peerPublicKey: () => receiverPub });
const senderKey = loadPrivateKey(m.keyPem);
const receiverPub = publicKeyOf(r);
const senderPub = publicKeyOf(m);
const receiverKey = loadPrivateKey(r.keyPem);
const receiverKeys = new MessageMacKeys({ cluster: 'bench', self: r.memberIp, privateKey: () => receiverKey, peerPublicKey: () => senderPub });
const signer = new MessageSealer({ cluster: 'bench', memberIp: m.memberIp, certChainDer: m.chainDer, privateKeyPem: m.keyPem, incarnation: 2 });
const macer = new MessageSealer({ cluster: 'bench', memberIp: m.memberIp, certChainDer: m.chainDer, privateKeyPem: m.keyPem, incarnation: 3, macKeys: senderKeys });
// One receiver per sender process (each knows its sender's certificate from a signed MASTER KEEPALIVE).
const receiverOf = (sender) => {
  const o = new MessageOpener({ cluster: 'bench', self: r.memberIp, trust: pki.trustStore(), replayWindow: 64, macKeys: receiverKeys });
  if (!o.open(sender.seal(masterKeepalive, 'broadcast', NOW), NOW).ok) throw new Error('warm-up open failed');
  return o;
};
const signedReceiver = receiverOf(signer);
const macReceiver = receiverOf(macer);
let signedBytes = 0;
const signedBefore = macer.counters.signature;
pair('seal unicast client-keepalive, signature', () => { signedBytes = signer.seal(clientKeepalive, r.memberIp, NOW).length; },
  'seal unicast client-keepalive, MAC', () => { bytes = macer.seal(clientKeepalive, r.memberIp, NOW).length; }, N);
console.log(`  datagrams ${signedBytes} bytes signed, ${bytes} bytes MAC'd`);
if (macer.counters.mac === 0 || macer.counters.signature !== signedBefore) throw new Error(`the MAC sealer signed: ${JSON.stringify(macer.counters)}`);
const signedUni = Array.from({ length: N + 500 }, () => signer.seal(clientKeepalive, r.memberIp, NOW));
const macdUni = Array.from({ length: N + 500 }, () => macer.seal(clientKeepalive, r.memberIp, NOW));
pair('open unicast client-keepalive, signature', (i) => { const o = signedReceiver.open(signedUni[i], NOW); if (!o.ok) { bad++; firstBad ??= o; } },
  'open unicast client-keepalive, MAC', (i) => { const o = macReceiver.open(macdUni[i], NOW); if (!o.ok) { bad++; firstBad ??= o; } }, N);
if (bad) throw new Error(`${bad} opens failed, first: ${firstBad.code} ${firstBad.reason}`);

// Reference: the raw ECDSA P-256 operations node:crypto does inside seal/open.
const key = loadPrivateKey(m.keyPem);
const pub = pki.trustStore().verifyChain(m.chainDer, m.memberIp, NOW).publicKey;
const data = Buffer.alloc(200, 1);
const sig = sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
time('  reference: crypto.sign ECDSA P-256 (200 bytes)', N, () => sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
time('  reference: crypto.verify ECDSA P-256 (200 bytes)', N, () => verify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig));
const macKey = receiverKeys.receiveKey(m.memberIp);
time('  reference: HMAC-SHA-256 (200 bytes)', N, () => createHmac('sha256', macKey).update(data).digest());
console.log(`node ${process.version}, ${N} messages per line`);
