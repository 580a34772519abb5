import { X509Certificate, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, livenessKeys, loadPrivateKey, type TestPki } from '../src/index.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '192.0.2.3';

let pki: TestPki;
const pub = new Map<string, KeyObject>();
const priv = new Map<string, KeyObject>();

beforeAll(async () => {
  pki = await createTestPki([A, B, C]);
  for (const ip of [A, B, C]) {
    pub.set(ip, new X509Certificate(Buffer.from(pki.members[ip]!.certDer)).publicKey);
    priv.set(ip, loadPrivateKey(pki.members[ip]!.keyPem));
  }
});

const keys = (self: string, peer: string, cluster = 'alpha') => livenessKeys({ cluster, self, peer, privateKey: priv.get(self)!, peerPublicKey: pub.get(peer)! })!;

describe('livenessKeys', () => {
  it('both ends derive the same key per direction, and the two directions differ', () => {
    const ab = keys(A, B);
    const ba = keys(B, A);
    expect(ab.tx.equals(ba.rx)).toBe(true);
    expect(ab.rx.equals(ba.tx)).toBe(true);
    expect(ab.tx.equals(ab.rx)).toBe(false);
    expect(ab.tx).toHaveLength(32);
  });

  it('another pair or another cluster has other keys', () => {
    const ab = keys(A, B);
    expect(keys(A, C).tx.equals(ab.tx)).toBe(false);
    expect(keys(A, B, 'beta').tx.equals(ab.tx)).toBe(false);
  });

  it('refuses a member towards itself and addresses that are not IPv4', () => {
    expect(() => keys(A, A)).toThrow(/no key towards itself/);
    expect(() => livenessKeys({ cluster: 'alpha', self: 'x', peer: B, privateKey: priv.get(A)!, peerPublicKey: pub.get(B)! })).toThrow(/IPv4/);
  });
});
