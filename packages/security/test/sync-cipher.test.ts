import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { FRAME_HEADER_BYTES, SyncCipher, createTestPki, loadPrivateKey, type SyncOpenResult, type TestPki } from '../src/index.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '192.0.2.3';
const CLUSTER = 'alpha';

let pki: TestPki;
let other: TestPki;
const pub = new Map<string, KeyObject>();
const priv = new Map<string, KeyObject>();

beforeAll(async () => {
  [pki, other] = await Promise.all([createTestPki([A, B, C]), createTestPki([A, B], { caCommonName: 'other CA' })]);
  for (const ip of [A, B, C]) {
    const m = pki.members[ip]!;
    pub.set(ip, new X509Certificate(Buffer.from(m.certDer)).publicKey);
    priv.set(ip, loadPrivateKey(m.keyPem));
  }
});

function cipher(self: string, opts: { incarnation?: number; cluster?: string; privateKey?: KeyObject; peers?: Map<string, KeyObject> } = {}): SyncCipher {
  const key = opts.privateKey ?? priv.get(self)!;
  const peers = opts.peers ?? pub;
  return new SyncCipher({ cluster: opts.cluster ?? CLUSTER, self, incarnation: opts.incarnation ?? 1000, privateKey: () => key, peerPublicKey: (p) => peers.get(p) });
}

const text = (s: string) => new TextEncoder().encode(s);
const ok = (r: SyncOpenResult) => {
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.reason}`);
  return Buffer.from(r.plaintext).toString();
};
const code = (r: SyncOpenResult) => (r.ok ? 'ok' : r.code);

describe('SyncCipher', () => {
  it('round trip: B opens what A sealed for it; the frame does not contain the plaintext', () => {
    const a = cipher(A);
    const b = cipher(B);
    const plain = text('198.51.100.7:40001 > 203.0.113.9:80 seq 12345');
    const frame = a.seal(B, plain, text('ad'))!;
    expect(frame.length).toBe(FRAME_HEADER_BYTES + plain.length + 16);
    expect(Buffer.from(frame).includes(Buffer.from(plain))).toBe(false);
    expect(ok(b.open(A, frame, text('ad')))).toBe(Buffer.from(plain).toString());
    // Both directions, many frames, different keys per direction.
    for (let i = 0; i < 50; i++) expect(ok(a.open(B, b.seal(A, text(`r${i}`))!))).toBe(`r${i}`);
    expect(a.counters.opened).toBe(50);
    expect(b.counters).toMatchObject({ sealed: 50, opened: 1, decrypt: 0, replay: 0 });
  });

  it('refuses any altered byte (header, body, tag) and other associated data', () => {
    const a = cipher(A);
    const frame = a.seal(B, text('secret record'), text('seq 1'))!;
    for (let i = 0; i < frame.length; i++) {
      const b = cipher(B);
      const t = new Uint8Array(frame);
      t[i]! ^= 0x01;
      expect(code(b.open(A, t, text('seq 1')))).not.toBe('ok');
    }
    const b = cipher(B);
    expect(code(b.open(A, frame, text('seq 2')))).toBe('decrypt');
    expect(code(b.open(A, frame.subarray(0, 20), text('seq 1')))).toBe('malformed');
    expect(ok(b.open(A, frame, text('seq 1')))).toBe('secret record');
  });

  it('refuses replays, accepts reordering inside the window', () => {
    const a = cipher(A);
    const b = cipher(B);
    const frames = Array.from({ length: 5 }, (_, i) => a.seal(B, text(`m${i}`))!);
    expect(ok(b.open(A, frames[3]!))).toBe('m3');
    expect(ok(b.open(A, frames[1]!))).toBe('m1');
    expect(code(b.open(A, frames[3]!))).toBe('replay');
    expect(code(b.open(A, frames[1]!))).toBe('replay');
    expect(ok(b.open(A, frames[4]!))).toBe('m4');
    expect(ok(b.open(A, frames[0]!))).toBe('m0');
    expect(b.counters.replay).toBe(2);
  });

  it('a frame for another receiver, from another sender, cluster or CA does not open', () => {
    const a = cipher(A);
    const toC = a.seal(C, text('for C'))!;
    expect(code(cipher(B).open(A, toC))).toBe('decrypt'); // B is not the receiver
    expect(code(cipher(C).open(B, toC))).toBe('wrong-sender'); // arrived from B, names A
    expect(code(cipher(B, { cluster: 'beta' }).open(A, a.seal(B, text('x'))!))).toBe('decrypt');
    // The reverse direction's key: B cannot open a frame of its own direction reflected back.
    const b = cipher(B);
    const bToA = b.seal(A, text('b to a'))!;
    expect(code(b.open(A, bToA))).toBe('wrong-sender');
    // A sender whose key is another CA's certificate (same member IP): B derives another key.
    const rogue = cipher(A, { privateKey: loadPrivateKey(other.members[A]!.keyPem) });
    expect(code(cipher(B).open(A, rogue.seal(B, text('x'))!))).toBe('decrypt');
    // No certificate of the sender: unknown sender; no certificate of the receiver: nothing sealed.
    const blind = cipher(B, { peers: new Map() });
    expect(code(blind.open(A, a.seal(B, text('x'))!))).toBe('unknown-sender');
    expect(blind.seal(A, text('x'))).toBeNull();
    expect(blind.counters).toMatchObject({ unknownSender: 1, noPeerKey: 1 });
  });

  it('restart of the sender: the new boot (new salt, counter from 1) is accepted, the old boot replayed is refused', () => {
    const b = cipher(B);
    const a1 = cipher(A, { incarnation: 1000 });
    const old = [a1.seal(B, text('old 1'))!, a1.seal(B, text('old 2'))!];
    expect(ok(b.open(A, old[0]!))).toBe('old 1');
    const a2 = cipher(A, { incarnation: 2000 });
    expect(a2.bootSalt).not.toBe(a1.bootSalt);
    const fresh = a2.seal(B, text('new 1'))!; // counter 1 again, under a new key
    expect(Buffer.from(fresh.subarray(29, 37)).readBigUInt64BE()).toBe(1n);
    expect(ok(b.open(A, fresh))).toBe('new 1');
    expect(b.counters.newBoot).toBe(1);
    expect(code(b.open(A, old[0]!))).toBe('replay');
    expect(code(b.open(A, old[1]!))).toBe('replay'); // never seen, but from a boot that has ended
    expect(code(b.open(A, fresh))).toBe('replay');
    // Same incarnation, another salt (not something a sender does): refused.
    const twin = cipher(A, { incarnation: 2000 });
    expect(code(b.open(A, twin.seal(B, text('twin'))!))).toBe('replay');
  });

  it('a forged frame does not move the replay state', () => {
    const a = cipher(A);
    const b = cipher(B);
    const frame = a.seal(B, text('x'))!;
    const forged = new Uint8Array(frame);
    forged.set(Buffer.from('0000000000fffff0', 'hex'), 5); // a far newer incarnation, same tag
    expect(code(b.open(A, forged))).toBe('decrypt');
    expect(ok(b.open(A, frame))).toBe('x');
  });

  it('a new private key (renewed certificate) re-derives the keys', async () => {
    let key = priv.get(A)!;
    const peers = new Map(pub);
    const a = new SyncCipher({ cluster: CLUSTER, self: A, incarnation: 1, privateKey: () => key, peerPublicKey: (p) => peers.get(p) });
    const b = cipher(B, { peers });
    expect(ok(b.open(A, a.seal(B, text('one'))!))).toBe('one');
    const renewed = await createTestPki([A]);
    key = createPrivateKey(renewed.members[A]!.keyPem);
    // B still knows the old certificate: the frame does not open until B learns the new one.
    const frame = a.seal(B, text('two'))!;
    expect(code(b.open(A, frame))).toBe('decrypt');
    peers.set(A, new X509Certificate(Buffer.from(renewed.members[A]!.certDer)).publicKey);
    expect(ok(b.open(A, a.seal(B, text('three'))!))).toBe('three');
  });
});
