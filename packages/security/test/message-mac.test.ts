import { createPublicKey, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { LIMITS, PROTOCOL_VERSION, decodeEnvelope, encodeEnvelope, encodeSignedMessage, type ClusterMessageType, type MemberId } from '@gwcluster/wire';
import {
  MAC_ELIGIBLE,
  MESSAGE_MAC_BYTES,
  MessageMacKeys,
  MessageOpener,
  MessageSealer,
  SecurityConfigError,
  createTestPki,
  issueMemberCertificate,
  loadPrivateKey,
  messageMac,
  type OpenFailure,
  type OpenResult,
  type TestPki,
} from '../src/index.js';
import { CLUSTER, NOW, SAMPLE_MESSAGES } from './fixtures.js';

const A = '192.0.2.11';
const B = '192.0.2.12';
const C = '192.0.2.13';

let pki: TestPki;

beforeAll(async () => {
  pki = await createTestPki([A, B, C]);
});

/** One member as the daemon wires it: a sealer and an opener sharing MAC keys over the opener's certificates. */
interface Member {
  readonly ip: MemberId;
  readonly sealer: MessageSealer;
  readonly opener: MessageOpener;
  readonly macKeys: MessageMacKeys;
  /** The private key the MAC keys read (switched with the sealer's credentials, as member-node.ts does). */
  key: KeyObject;
}

function member(ip: MemberId, opts: { incarnation?: number; macs?: boolean } = {}): Member {
  const creds = pki.members[ip]!;
  const m = { ip, key: loadPrivateKey(creds.keyPem) } as { -readonly [K in keyof Member]: Member[K] };
  const macKeys = new MessageMacKeys({ cluster: CLUSTER, self: ip, privateKey: () => m.key, peerPublicKey: (peer) => m.opener.certificateOf(peer)?.publicKey });
  m.macKeys = macKeys;
  const withMacs = opts.macs !== false;
  m.sealer = new MessageSealer({ cluster: CLUSTER, memberIp: ip, certChainDer: creds.chainDer, privateKeyPem: creds.keyPem, incarnation: opts.incarnation ?? 1, ...(withMacs ? { macKeys } : {}) });
  m.opener = new MessageOpener({ cluster: CLUSTER, self: ip, trust: pki.trustStore(), ...(withMacs ? { macKeys } : {}) });
  return m;
}

function failure(r: OpenResult): OpenFailure {
  if (r.ok) throw new Error(`expected a failure, got ok from ${r.signed.sender} seq ${r.signed.seq}`);
  return r;
}

function ok(r: OpenResult): void {
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.reason}`);
}

/** Each of `members` learns every other's certificate (a signed message carrying it, as a JOIN or a probe does). */
function introduce(...members: Member[]): void {
  for (const from of members) for (const to of members) if (from !== to) ok(to.opener.open(from.sealer.seal({ type: 'state-ack', seqs: [] }, to.ip, NOW, { includeCertificate: true }), NOW));
}

function authOf(datagram: Uint8Array): 'mac' | 'signature' {
  const e = decodeEnvelope(datagram);
  if (!e.ok) throw e.error;
  if (e.value.mac && e.value.mac.length > 0) {
    expect(e.value.mac.length).toBe(MESSAGE_MAC_BYTES);
    expect(e.value.signature.length).toBe(0);
    return 'mac';
  }
  expect(e.value.signature.length).toBe(64);
  return 'signature';
}

const stateSync = SAMPLE_MESSAGES['state-sync'];
const stateAck = SAMPLE_MESSAGES['state-ack'];

describe('MessageMacKeys', () => {
  it('gives both sides the same key per direction, and different keys per direction and cluster', () => {
    const keyA = loadPrivateKey(pki.members[A]!.keyPem);
    const keyB = loadPrivateKey(pki.members[B]!.keyPem);
    const pubA = createPublicKey(keyA);
    const pubB = createPublicKey(keyB);
    const a = new MessageMacKeys({ cluster: CLUSTER, self: A, privateKey: () => keyA, peerPublicKey: (p) => (p === B ? pubB : undefined) });
    const b = new MessageMacKeys({ cluster: CLUSTER, self: B, privateKey: () => keyB, peerPublicKey: (p) => (p === A ? pubA : undefined) });
    const other = new MessageMacKeys({ cluster: 'beta', self: A, privateKey: () => keyA, peerPublicKey: () => pubB });
    expect(a.sendKey(B)!.equals(b.receiveKey(A)!)).toBe(true);
    expect(a.receiveKey(B)!.equals(b.sendKey(A)!)).toBe(true);
    expect(a.sendKey(B)!.equals(a.receiveKey(B)!)).toBe(false);
    expect(a.sendKey(B)!.equals(other.sendKey(B)!)).toBe(false);
    expect(a.sendKey(B)!.length).toBe(32);
    expect(a.sendKey(C)).toBeUndefined();
    expect(a.sendKey(A)).toBeUndefined();
  });

  it('derives again when the own private key or the peer public key object changes; forget drops the peer', async () => {
    const renewed = await issueMemberCertificate({ ca: pki.ca, memberIp: A, notBefore: new Date(0), notAfter: new Date('2100-01-01T00:00:00Z') });
    let keyA = loadPrivateKey(pki.members[A]!.keyPem);
    let pubB = createPublicKey(loadPrivateKey(pki.members[B]!.keyPem));
    const a = new MessageMacKeys({ cluster: CLUSTER, self: A, privateKey: () => keyA, peerPublicKey: () => pubB });
    const first = a.sendKey(B)!;
    expect(a.sendKey(B)).toBe(first); // cached
    keyA = loadPrivateKey(renewed.keyPem);
    const second = a.sendKey(B)!;
    expect(second.equals(first)).toBe(false);
    pubB = createPublicKey(loadPrivateKey(pki.members[C]!.keyPem));
    expect(a.sendKey(B)!.equals(second)).toBe(false);
    expect(a.size).toBe(1);
    a.forget(B);
    expect(a.size).toBe(0);
  });

  it('refuses a self that is not a member IP', () => {
    expect(() => new MessageMacKeys({ cluster: CLUSTER, self: 'x' as MemberId, privateKey: () => loadPrivateKey(pki.members[A]!.keyPem), peerPublicKey: () => undefined })).toThrow(SecurityConfigError);
  });
});

describe('MAC_ELIGIBLE', () => {
  it('names exactly the frequent member-to-member unicasts', () => {
    const eligible = (Object.keys(MAC_ELIGIBLE) as ClusterMessageType[]).filter((t) => MAC_ELIGIBLE[t]).sort();
    expect(eligible).toEqual(['client-keepalive', 'state-ack', 'state-sync', 'work-ack', 'work-assign', 'work-deassign']);
  });
});

describe('MAC-authenticated unicasts', () => {
  it('round-trips every eligible type both ways once the pair knows each other, and counts MACs and signatures', () => {
    const a = member(A);
    const b = member(B);
    introduce(a, b);
    expect(a.sealer.counters).toEqual({ signature: 1, mac: 0 });
    for (const type of Object.keys(SAMPLE_MESSAGES) as ClusterMessageType[]) {
      if (!MAC_ELIGIBLE[type]) continue;
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        const d = from.sealer.seal(SAMPLE_MESSAGES[type], to.ip, NOW, { includeCertificate: false });
        expect(authOf(d)).toBe('mac');
        const r = to.opener.open(d, NOW, { sourceIp: from.ip });
        ok(r);
        if (r.ok) expect(r.signed.message).toEqual(SAMPLE_MESSAGES[type]);
      }
    }
    expect(a.sealer.counters).toEqual({ signature: 1, mac: 6 });
    expect(b.opener.counters.ok).toBe(7);
  });

  it('still signs broadcasts, certificate-carrying messages, ineligible types and recipients whose certificate is unknown', () => {
    const a = member(A);
    const b = member(B);
    introduce(a, b);
    expect(authOf(a.sealer.seal(stateAck, 'broadcast', NOW))).toBe('signature');
    expect(authOf(a.sealer.seal(stateAck, B, NOW, { includeCertificate: true }))).toBe('signature');
    expect(authOf(a.sealer.seal(SAMPLE_MESSAGES['master-offer'], B, NOW, { includeCertificate: false }))).toBe('signature');
    expect(authOf(a.sealer.seal(SAMPLE_MESSAGES['exit-cluster'], B, NOW, { includeCertificate: false }))).toBe('signature');
    expect(authOf(a.sealer.seal(stateAck, C, NOW))).toBe('signature'); // A never verified C's certificate
    const plain = member(A, { macs: false, incarnation: 2 });
    introduce(plain, b);
    expect(authOf(plain.sealer.seal(stateAck, B, NOW))).toBe('signature');
  });

  it('refuses a MAC over altered bytes or an altered MAC (bad-signature, saying MAC), and the genuine one still opens', () => {
    const a = member(A);
    const b = member(B);
    introduce(a, b);
    const genuine = a.sealer.seal(stateSync, B, NOW);
    const e = decodeEnvelope(genuine);
    if (!e.ok) throw e.error;
    const signed = new Uint8Array(e.value.signed);
    const at = Buffer.from(signed).indexOf(Buffer.from([9, 9, 9, 9]));
    expect(at).toBeGreaterThan(0);
    signed[at] = 8; // a record's state: still a well-formed message
    const tampered = failure(b.opener.open(encodeEnvelope({ ...e.value, signed }), NOW));
    expect(tampered.code).toBe('bad-signature');
    expect(tampered.mac).toBe(true);
    expect(tampered.reason).toMatch(/MAC of 192\.0\.2\.11 does not verify/);
    const mac = new Uint8Array(e.value.mac!);
    mac[0]! ^= 0x80;
    expect(failure(b.opener.open(encodeEnvelope({ ...e.value, mac }), NOW)).code).toBe('bad-signature');
    ok(b.opener.open(genuine, NOW)); // the failures committed no replay state
  });

  it('a MAC\'d message replayed to a third member fails wrong-recipient there, and replay at its recipient', () => {
    const a = member(A);
    const b = member(B);
    const c = member(C);
    introduce(a, b, c);
    const d = a.sealer.seal(stateSync, B, NOW);
    expect(authOf(d)).toBe('mac');
    expect(failure(c.opener.open(d, NOW)).code).toBe('wrong-recipient');
    ok(b.opener.open(d, NOW));
    expect(failure(b.opener.open(d, NOW)).code).toBe('replay');
  });

  it('a MAC\'d message from a sender whose certificate the receiver does not hold fails unknown-signer (the receiver restarted)', () => {
    const a = member(A);
    const b = member(B);
    introduce(a, b);
    const restarted = member(B, { incarnation: 2 });
    const r = failure(restarted.opener.open(a.sealer.seal(stateAck, B, NOW), NOW));
    expect(r.code).toBe('unknown-signer');
    expect(r.sender).toBe(A);
    expect(r.mac).toBe(true);
  });

  it('a member without MAC keys refuses MACs as bad-signature, saying so', () => {
    const a = member(A);
    const plain = member(B, { macs: false });
    const b = member(B);
    introduce(a, b);
    ok(plain.opener.open(a.sealer.seal(stateAck, B, NOW, { includeCertificate: true }), NOW));
    const r = failure(plain.opener.open(a.sealer.seal(stateAck, B, NOW), NOW));
    expect(r.code).toBe('bad-signature');
    expect(r.reason).toContain('does not accept MACs');
  });

  it('refuses a MAC on a broadcast and a MAC beside a certificate chain (invalid), even with the right key', () => {
    const a = member(A);
    const b = member(B);
    introduce(a, b);
    const key = a.macKeys.sendKey(B)!;
    const craft = (recipient: MemberId | 'broadcast', certChain: readonly Uint8Array[], seq: number) => {
      const signed = encodeSignedMessage({ cluster: CLUSTER, sender: A, certChain, incarnation: 1, seq, sentAtMs: NOW, message: stateAck, recipient, version: PROTOCOL_VERSION });
      return encodeEnvelope({ version: PROTOCOL_VERSION, signed, signature: new Uint8Array(0), mac: messageMac(key, signed) });
    };
    const broadcast = failure(b.opener.open(craft('broadcast', [], 100), NOW));
    expect(broadcast.code).toBe('invalid');
    expect(broadcast.reason).toMatch(/broadcasts are signed/);
    const withChain = failure(b.opener.open(craft(B, pki.members[A]!.chainDer, 101), NOW));
    expect(withChain.code).toBe('invalid');
    expect(withChain.reason).toMatch(/certificate chain/);
    ok(b.opener.open(craft(B, [], 102), NOW)); // the same crafting, well-formed, opens: the checks above are what refused
  });

  it('a key change signs during the certificate grace; afterwards MACs verify at a peer that learnt the new certificate, and fail at one that did not', async () => {
    const a = member(A);
    const b = member(B);
    const c = member(C);
    introduce(a, b, c);
    const renewed = await issueMemberCertificate({ ca: pki.ca, memberIp: A, notBefore: new Date(0), notAfter: new Date('2100-01-01T00:00:00Z') });
    a.sealer.replaceCredentials([renewed.certDer], renewed.keyPem, NOW, 1000);
    a.key = loadPrivateKey(renewed.keyPem);
    // Grace: every message carries the new chain, so it is signed; B learns the new certificate from it.
    const during = a.sealer.seal(stateSync, B, NOW + 500, { includeCertificate: false });
    expect(authOf(during)).toBe('signature');
    const r = b.opener.open(during, NOW + 500);
    ok(r);
    expect(r.ok && r.fingerprint).toBe(renewed.fingerprint);
    // After the grace: MACs with the new key, both ways, at B.
    const after = a.sealer.seal(stateSync, B, NOW + 1500);
    expect(authOf(after)).toBe('mac');
    ok(b.opener.open(after, NOW + 1500));
    const back = b.sealer.seal(stateAck, A, NOW + 1500);
    expect(authOf(back)).toBe('mac');
    ok(a.opener.open(back, NOW + 1500));
    // C heard nothing during the grace: it still holds the old certificate, so the pair's keys disagree.
    const missed = failure(c.opener.open(a.sealer.seal(stateSync, C, NOW + 1500), NOW + 1500));
    expect(missed.code).toBe('bad-signature');
    expect(missed.mac).toBe(true);
    // Once C learns it (a certificate probe, as the daemon sends on such a failure), MACs verify there too.
    ok(c.opener.open(a.sealer.seal({ type: 'state-ack', seqs: [] }, C, NOW + 1600, { includeCertificate: true }), NOW + 1600));
    ok(c.opener.open(a.sealer.seal(stateSync, C, NOW + 1700), NOW + 1700));
  });

  it('refuses malformed envelopes with decode codes, never throwing: both, neither, a MAC of 31 bytes', () => {
    const a = member(A);
    const b = member(B);
    introduce(a, b);
    const e = decodeEnvelope(a.sealer.seal(stateAck, B, NOW));
    if (!e.ok) throw e.error;
    const cases: [Uint8Array, string, RegExp][] = [
      [encodeEnvelope({ ...e.value, signature: new Uint8Array(64).fill(1) }), 'invalid', /both a signature/],
      [encodeEnvelope({ ...e.value, mac: new Uint8Array(0) }), 'invalid', /neither a signature nor a MAC/],
      [encodeEnvelope({ ...e.value, mac: e.value.mac!.subarray(0, 31) }), 'limit', /MAC is 31 bytes/],
      [encodeEnvelope({ ...e.value, mac: new Uint8Array(LIMITS.macBytes + 1) }), 'limit', /MAC is 33 bytes/],
    ];
    for (const [d, code, reason] of cases) {
      const r = failure(b.opener.open(d, NOW));
      expect(r.code).toBe(code);
      expect(r.reason).toMatch(reason);
    }
    ok(b.opener.open(encodeEnvelope(e.value), NOW));
  });

  it('never accepts altered content from a single-bit change of a MAC\'d datagram, never throwing', () => {
    const a = member(A);
    const b = member(B);
    introduce(a, b);
    const d = a.sealer.seal(stateSync, B, NOW);
    expect(authOf(d)).toBe('mac');
    const original = decodeEnvelope(d);
    if (!original.ok) throw original.error;
    const codes = new Set<string>();
    for (let i = 0; i < d.length; i++) {
      for (const bit of [0, 3, 7]) {
        const m = new Uint8Array(d);
        m[i]! ^= 1 << bit;
        const r = b.opener.open(m, NOW, { sourceIp: A });
        if (r.ok) {
          // Only a change of the envelope's framing that decodes to the same signed bytes and MAC (the
          // protobuf decoder reads a field whatever its wire type says) may pass, once.
          const e = decodeEnvelope(m);
          expect(e.ok && Buffer.from(e.value.signed).equals(Buffer.from(original.value.signed)) && Buffer.from(e.value.mac!).equals(Buffer.from(original.value.mac!)), `byte ${i} bit ${bit}`).toBe(true);
        } else codes.add(r.code);
      }
    }
    expect(codes).toContain('bad-signature');
    expect(b.opener.counters.ok).toBeLessThanOrEqual(2); // the introduction and at most one framing variant
  });

  it('refuses MAC keys of another member or cluster', () => {
    const creds = pki.members[A]!;
    const keys = new MessageMacKeys({ cluster: CLUSTER, self: B, privateKey: () => loadPrivateKey(creds.keyPem), peerPublicKey: () => undefined });
    expect(() => new MessageSealer({ cluster: CLUSTER, memberIp: A, certChainDer: creds.chainDer, privateKeyPem: creds.keyPem, incarnation: 1, macKeys: keys })).toThrow(SecurityConfigError);
    expect(() => new MessageOpener({ cluster: CLUSTER, self: A, trust: pki.trustStore(), macKeys: keys })).toThrow(SecurityConfigError);
  });
});
