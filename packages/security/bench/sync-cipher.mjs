// Cost of sealing state sync (SyncCipher, docs/state-sync.md "Encryption"), in records per second on one
// core: a StateSync of 7 records (112-byte Figure 7 state + 40-byte key each, the most one 1200-byte
// batch holds) sent and received, with the records in the clear and sealed. Measured on the built
// packages: the sender's side (encode, seal, sign) and the receiver's (verify, open, decode). Times are
// the process's CPU time per message (one thread: one core).
// Run: npx tsc -b && taskset -c 1 node packages/security/bench/sync-cipher.mjs [messages]
import { X509Certificate, randomBytes } from 'node:crypto';
import { decodeSyncRecords, encodeSyncRecords } from '@gwcluster/wire';
import { MessageOpener, MessageSealer, SyncCipher, createTestPki, loadPrivateKey } from '../dist/index.js';

const N = Number(process.argv[2] ?? 4000);
const RECORDS = 7;
const NOW = Date.UTC(2030, 0, 1);
const [A, B] = ['192.0.2.1', '192.0.2.2'];
const pki = await createTestPki([A, B]);
const pub = new Map([A, B].map((ip) => [ip, new X509Certificate(Buffer.from(pki.members[ip].certDer)).publicKey]));
const cipherOf = (ip) => {
  const key = loadPrivateKey(pki.members[ip].keyPem);
  return new SyncCipher({ cluster: 'bench', self: ip, incarnation: 1, privateKey: () => key, peerPublicKey: (p) => pub.get(p) });
};
const records = Array.from({ length: RECORDS }, () => ({ key: new Uint8Array(randomBytes(40)), version: 7, state: new Uint8Array(randomBytes(112)), removed: false }));
const ad = Buffer.alloc(9);

function rate(label, n, fn) {
  for (let i = 0; i < 300; i++) fn(i);
  // CPU time of this process (user + system), not wall time: on a shared host other processes' time
  // slices do not count.
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const d = process.cpuUsage(t);
  const s = (d.user + d.system) / 1e6;
  const us = (s * 1e6) / n;
  console.log(`${label.padEnd(64)} ${us.toFixed(1).padStart(7)} µs/msg ${Math.round((n * RECORDS) / s).toString().padStart(9)} records/s`);
  return us;
}

// The AEAD step alone: encode + seal, open + decode.
const a = cipherOf(A);
const b = cipherOf(B);
let frame;
rate('seal: encode 7 records + ChaCha20-Poly1305', N, () => { frame = a.seal(B, encodeSyncRecords(records), ad); });
console.log(`  frame ${frame.length} bytes (records ${encodeSyncRecords(records).length})`);
const frames = Array.from({ length: N + 300 }, () => a.seal(B, encodeSyncRecords(records), ad));
let j = 0;
rate('open: ChaCha20-Poly1305 + decode 7 records', N, () => {
  const r = b.open(A, frames[j++], ad);
  if (!r.ok || !decodeSyncRecords(r.plaintext).ok) throw new Error(`open failed: ${r.code}`);
});
j = 0;
const plain = encodeSyncRecords(records);
rate('  of which ChaCha20-Poly1305 seal alone (7 records)', N, () => a.seal(B, plain, ad));
const c = cipherOf(B);
const plainFrames = Array.from({ length: N + 300 }, () => a.seal(B, plain, ad));
rate('  of which ChaCha20-Poly1305 open alone', N, () => { if (!c.open(A, plainFrames[j++], ad).ok) throw new Error('open'); });
j = 0;
rate('  reference: encode 7 records (protobuf)', N, () => encodeSyncRecords(records));
rate('  reference: decode 7 records (protobuf)', N, () => { if (!decodeSyncRecords(plain).ok) throw new Error('decode'); });

// The whole message, signed as every cluster message (the member's path): clear against sealed.
const m = pki.members[A];
const mk = (incarnation) => new MessageSealer({ cluster: 'bench', memberIp: A, certChainDer: m.chainDer, privateKeyPem: m.keyPem, incarnation });
const clearSealer = mk(1);
const sealedSealer = mk(2);
const opener = new MessageOpener({ cluster: 'bench', self: B, trust: pki.trustStore(), replayWindow: 64 });
if (!opener.open(mk(0).seal({ type: 'state-ack', seqs: [] }, B, NOW, { includeCertificate: true }), NOW).ok) throw new Error('warm-up');
let seq = 0;
const clearMsg = () => ({ type: 'state-sync', seq: ++seq, records, snapshotComplete: false });
const sealedMsg = () => {
  const s = ++seq;
  return { type: 'state-sync', seq: s, records: [], snapshotComplete: false, sealed: a.seal(B, encodeSyncRecords(records), ad) };
};
const tClearSend = rate('send clear: sign StateSync(7 records)', N, () => clearSealer.seal(clearMsg(), B, NOW));
const tSealedSend = rate('send sealed: encode + seal + sign', N, () => sealedSealer.seal(sealedMsg(), B, NOW));
const clearD = Array.from({ length: N + 300 }, () => clearSealer.seal(clearMsg(), B, NOW));
const sealedD = Array.from({ length: N + 300 }, () => sealedSealer.seal(sealedMsg(), B, NOW));
j = 0;
const tClearRecv = rate('receive clear: verify', N, () => { if (!opener.open(clearD[j++], NOW).ok) throw new Error('open'); });
j = 0;
const rx = cipherOf(B);
const tSealedRecv = rate('receive sealed: verify + open + decode', N, () => {
  const r = opener.open(sealedD[j++], NOW);
  if (!r.ok) throw new Error(`open ${r.code}`);
  const o = rx.open(A, r.signed.message.sealed, ad);
  if (!o.ok || !decodeSyncRecords(o.plaintext).ok) throw new Error('sync open');
});
const perRecord = (us) => Math.round((RECORDS * 1e6) / us);
console.log(`one core, send + receive: clear ${perRecord(tClearSend + tClearRecv)} records/s, sealed ${perRecord(tSealedSend + tSealedRecv)} records/s (${(((tSealedSend + tSealedRecv) / (tClearSend + tClearRecv) - 1) * 100).toFixed(1)} % more time per message)`);
console.log(`node ${process.version}, ${N} messages of ${RECORDS} records per line`);
