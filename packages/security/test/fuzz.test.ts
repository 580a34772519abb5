// Fuzzing what opens datagrams from the network (fast-check): MessageOpener.open and SyncCipher.open
// never throw (an exception inside open() would be reported as "internal error"), fail only with their
// documented codes, and never accept an altered sealed frame.
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { MessageOpener, MessageSealer, OPEN_OUTCOMES, SyncCipher, createTestPki, loadPrivateKey, mutateBytes as mutate, type TestPki } from '../src/index.js';
import { CLUSTER, NOW, SAMPLE_MESSAGES } from './fixtures.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
let pki: TestPki;
let datagrams: Uint8Array[];
beforeAll(async () => {
  pki = await createTestPki([A, B]);
  const m = pki.members[A]!;
  const sealer = new MessageSealer({ cluster: CLUSTER, memberIp: A, certChainDer: m.chainDer, privateKeyPem: m.keyPem, incarnation: 1 });
  datagrams = Object.values(SAMPLE_MESSAGES).map((msg) => sealer.seal(msg, B, NOW, { includeCertificate: true }));
});

const edits = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('flip', 'set', 'cut', 'insert')), { minLength: 1, maxLength: 5 });

describe('openers under fuzzing', () => {
  it('MessageOpener.open: random and mutated datagrams never throw and fail with documented codes', () => {
    const opener = new MessageOpener({ cluster: CLUSTER, self: B, trust: pki.trustStore() });
    const known = new Set<string>(OPEN_OUTCOMES);
    const check = (d: Uint8Array) => {
      const r = opener.open(d, NOW, { sourceIp: A });
      if (r.ok) return true;
      return known.has(r.code) && !r.reason.startsWith('internal error');
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), check), { numRuns: 1000 });
    fc.assert(fc.property(fc.nat(), edits, (i, e) => check(mutate(datagrams[i % datagrams.length]!, e))), { numRuns: 1000 });
  });

  it('SyncCipher.open: random and mutated frames never throw, and an altered frame never opens', () => {
    const pub = new Map([A, B].map((ip) => [ip, new X509Certificate(Buffer.from(pki.members[ip]!.certDer)).publicKey]));
    const cipher = (ip: string) => {
      const key = loadPrivateKey(pki.members[ip]!.keyPem);
      return new SyncCipher({ cluster: CLUSTER, self: ip, incarnation: 1, privateKey: () => key, peerPublicKey: (p) => pub.get(p) });
    };
    const a = cipher(A);
    const b = cipher(B);
    const codes = new Set(['malformed', 'wrong-sender', 'unknown-sender', 'replay', 'decrypt']);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (f) => {
      const r = b.open(A, f);
      return !r.ok && codes.has(r.code);
    }), { numRuns: 1000 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), edits, (plain, e) => {
        const frame = a.seal(B, plain)!;
        const altered = mutate(frame, e);
        if (Buffer.from(altered).equals(Buffer.from(frame))) return true;
        const r = b.open(A, altered);
        return !r.ok && codes.has(r.code);
      }),
      { numRuns: 1000 },
    );
    expect(b.counters.opened).toBe(0);
  });
});
