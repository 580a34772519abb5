import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { PROTOCOL_VERSION, decodeEnvelope, decodeSignedMessage, encodeEnvelope, type ClusterMessageType } from '@gwcluster/wire';
import {
  CARRIES_CERTIFICATE,
  MessageOpener,
  MessageSealer,
  SecurityConfigError,
  createRevocationList,
  createTestPki,
  issueMemberCertificate,
  type IssuedCertificate,
  type OpenFailure,
  type OpenResult,
  type TestMember,
  type TestPki,
  type TrustStore,
} from '../src/index.js';
import { CLUSTER, NOW, SAMPLE_MESSAGES, craft, prng } from './fixtures.js';

const M1 = '192.0.2.1';
const M2 = '192.0.2.2';
const M3 = '192.0.2.3';
/** The member the openers in these tests belong to. */
const RECEIVER = '192.0.2.200';

let pki: TestPki;
let foreign: TestPki;
let trust: TrustStore;
let expired: IssuedCertificate;
let future: IssuedCertificate;
let shortLived: IssuedCertificate;

beforeAll(async () => {
  [pki, foreign] = await Promise.all([createTestPki([M1, M2, M3]), createTestPki([M1], { caCommonName: 'foreign CA' })]);
  trust = pki.trustStore();
  [expired, future, shortLived] = await Promise.all([
    issueMemberCertificate({ ca: pki.ca, memberIp: '192.0.2.4', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2021-01-01T00:00:00Z') }),
    issueMemberCertificate({ ca: pki.ca, memberIp: '192.0.2.5', notBefore: new Date('2040-01-01T00:00:00Z'), notAfter: new Date('2041-01-01T00:00:00Z') }),
    issueMemberCertificate({ ca: pki.ca, memberIp: '192.0.2.6', notBefore: new Date(0), notAfter: new Date(NOW + 10_000) }),
  ]);
});

function sealer(member: Pick<TestMember, 'chainDer' | 'keyPem'> & { memberIp: string }, incarnation = 1, cluster = CLUSTER): MessageSealer {
  return new MessageSealer({ cluster, memberIp: member.memberIp, certChainDer: member.chainDer, privateKeyPem: member.keyPem, incarnation });
}

function asMember(c: IssuedCertificate, memberIp: string) {
  return { memberIp, chainDer: [c.certDer], keyPem: c.keyPem };
}

function opener(opts: Partial<ConstructorParameters<typeof MessageOpener>[0]> = {}): MessageOpener {
  return new MessageOpener({ cluster: CLUSTER, self: RECEIVER, trust, ...opts });
}

function failure(r: OpenResult): OpenFailure {
  if (r.ok) throw new Error(`expected a failure, got ok from ${r.signed.sender} seq ${r.signed.seq}`);
  return r;
}

const offer = SAMPLE_MESSAGES['master-offer'];
const clientKeepalive = SAMPLE_MESSAGES['client-keepalive'];

describe('seal and open', () => {
  it('round-trips every message type, with the certificate where the protocol says', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const types = Object.keys(SAMPLE_MESSAGES) as ClusterMessageType[];
    // Certificate-bearing types first, so the opener knows the sender before the others arrive.
    types.sort((a, b) => Number(CARRIES_CERTIFICATE[b]) - Number(CARRIES_CERTIFICATE[a]));
    types.forEach((type, i) => {
      const datagram = s.seal(SAMPLE_MESSAGES[type], 'broadcast', NOW);
      const envelope = decodeEnvelope(datagram);
      expect(envelope.ok && envelope.value.version).toBe(PROTOCOL_VERSION);
      expect(envelope.ok && envelope.value.signature.length).toBe(64);
      const r = o.open(datagram, NOW);
      if (!r.ok) throw new Error(`${type}: ${r.code} ${r.reason}`);
      expect(r.fingerprint).toBe(pki.members[M1]!.fingerprint);
      expect(r.signed).toMatchObject({ cluster: CLUSTER, sender: M1, incarnation: 1, seq: i + 1, sentAtMs: NOW });
      expect(r.signed.message).toEqual(SAMPLE_MESSAGES[type]);
      expect(r.signed.certChain.length, type).toBe(CARRIES_CERTIFICATE[type] ? 1 : 0);
    });
    expect(s.lastSeq).toBe(types.length);
    expect(o.counters.ok).toBe(types.length);
  });

  it('honours includeCertificate both ways', () => {
    const s = sealer(pki.members[M1]!);
    const without = decodeEnvelope(s.seal(offer, 'broadcast', NOW, { includeCertificate: false }));
    const withCert = decodeEnvelope(s.seal(clientKeepalive, 'broadcast', NOW, { includeCertificate: true }));
    const chainLength = (e: typeof without) => (e.ok ? (decodeSignedMessage(e.value.signed) as { value: { certChain: unknown[] } }).value.certChain.length : -1);
    expect(chainLength(without)).toBe(0);
    expect(chainLength(withCert)).toBe(1);
  });

  it('uses the cached certificate for messages without one, and needs one first', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const early = failure(o.open(s.seal(clientKeepalive, 'broadcast', NOW), NOW));
    expect(early.code).toBe('unknown-signer');
    expect(early.sender).toBe(M1);
    expect(early.signed).toBeUndefined();
    expect(o.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.open(s.seal(clientKeepalive, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.certificateOf(M1)?.fingerprint).toBe(pki.members[M1]!.fingerprint);
  });

  it('replaceCredentials: a renewed certificate and key sign from then on, seq carries on, the chain rides every message for the grace period', async () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    expect(o.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    const renewed = await issueMemberCertificate({ ca: pki.ca, memberIp: M1, notBefore: new Date(0), notAfter: new Date('2100-01-01T00:00:00Z') });
    expect(() => s.replaceCredentials([renewed.certDer], pki.members[M2]!.keyPem, NOW)).toThrow(SecurityConfigError);
    expect(() => s.replaceCredentials(pki.members[M2]!.chainDer, pki.members[M2]!.keyPem, NOW)).toThrow(/not for member IP 192\.0\.2\.1/);
    s.replaceCredentials([renewed.certDer], renewed.keyPem, NOW, 1000);
    const during = o.open(s.seal(clientKeepalive, 'broadcast', NOW + 500), NOW + 500);
    if (!during.ok) throw new Error(during.reason);
    expect(during.signed.seq).toBe(2);
    expect(during.signed.certChain).toHaveLength(1);
    expect(during.fingerprint).toBe(renewed.fingerprint);
    const after = o.open(s.seal(clientKeepalive, 'broadcast', NOW + 1500), NOW + 1500);
    expect(after.ok && after.signed.certChain.length).toBe(0);
    expect(after.ok && after.fingerprint).toBe(renewed.fingerprint);
  });

  it('does not cache the certificate of a message that failed later checks', () => {
    const m1 = pki.members[M1]!;
    const o = opener();
    const forged = decodeEnvelope(craft({ sender: M1, chain: m1.chainDer, keyPem: m1.keyPem, seq: 1 }));
    if (!forged.ok) throw forged.error;
    const badSignature = new Uint8Array(forged.value.signature);
    badSignature[5]! ^= 1;
    expect(failure(o.open(encodeEnvelope({ ...forged.value, signature: badSignature }), NOW)).code).toBe('bad-signature');
    expect(failure(o.open(sealer(m1).seal(clientKeepalive, 'broadcast', NOW), NOW)).code).toBe('unknown-signer');
  });
});

describe('anti-replay', () => {
  it('rejects a replayed datagram', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const d = s.seal(offer, 'broadcast', NOW);
    expect(o.open(d, NOW).ok).toBe(true);
    const r = failure(o.open(d, NOW + 5));
    expect(r.code).toBe('replay');
    expect(r.reason).toContain('seq 1 of incarnation 1 was already received');
    expect(o.counters.replay).toBe(1);
  });

  it('accepts reordering inside the window, each message once', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const ds = Array.from({ length: 10 }, () => s.seal(offer, 'broadcast', NOW));
    expect(o.open(ds[9]!, NOW).ok).toBe(true);
    for (const i of [3, 0, 8, 5, 1, 7, 2, 6, 4]) expect(o.open(ds[i]!, NOW).ok, `seq ${i + 1}`).toBe(true);
    for (const d of ds) expect(failure(o.open(d, NOW)).code).toBe('replay');
  });

  it('rejects seqs that fell out of the 64-message window', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const ds = Array.from({ length: 70 }, () => s.seal(offer, 'broadcast', NOW));
    expect(o.open(ds[69]!, NOW).ok).toBe(true); // seq 70
    const old = failure(o.open(ds[5]!, NOW)); // seq 6 = 70 - 64
    expect(old.code).toBe('replay');
    expect(old.reason).toContain('older than the 64-message window');
    expect(o.open(ds[6]!, NOW).ok).toBe(true); // seq 7
  });

  it('honours a configured window size', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener({ replayWindow: 4 });
    const ds = Array.from({ length: 6 }, () => s.seal(offer, 'broadcast', NOW));
    expect(o.open(ds[5]!, NOW).ok).toBe(true); // seq 6
    expect(failure(o.open(ds[1]!, NOW)).code).toBe('replay'); // seq 2 = 6 - 4
    expect(o.open(ds[2]!, NOW).ok).toBe(true); // seq 3
  });

  it('rejects an older incarnation and starts over on a newer one', () => {
    const o = opener();
    expect(o.open(sealer(pki.members[M1]!, 2000).seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    const r = failure(o.open(sealer(pki.members[M1]!, 1000).seal(offer, 'broadcast', NOW), NOW));
    expect(r.code).toBe('replay');
    expect(r.reason).toContain('incarnation 1000 is older than 2000');
    const reborn = sealer(pki.members[M1]!, 3000);
    expect(o.open(reborn.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.open(reborn.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
  });

  it('does not let a forged message move the window', () => {
    const m1 = pki.members[M1]!;
    const o = opener();
    // seq 5 claiming to be M1 with M1's certificate, but signed with M2's key.
    const forged = craft({ sender: M1, chain: m1.chainDer, keyPem: pki.members[M2]!.keyPem, seq: 5 });
    expect(failure(o.open(forged, NOW)).code).toBe('bad-signature');
    const genuine = craft({ sender: M1, chain: m1.chainDer, keyPem: m1.keyPem, seq: 5 });
    expect(o.open(genuine, NOW).ok).toBe(true);
  });

  it('keeps one window for broadcasts and one for unicasts to this member: either scope read first loses nothing', () => {
    // A master's seq counts every message it sends; the receiver reads its unicast socket and its
    // broadcast socket in either order. 100 unicasts (JOIN REPLY, STATE SYNC) interleaved with keepalive
    // broadcasts, the unicasts read first: before the windows were split the broadcasts fell below the
    // 64-seq window and were dropped as replays.
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const unicasts: Uint8Array[] = [];
    const broadcasts: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) {
      unicasts.push(s.seal(clientKeepalive, RECEIVER, NOW, { includeCertificate: true }));
      if (i % 10 === 0) broadcasts.push(s.seal(offer, 'broadcast', NOW));
    }
    for (const d of unicasts) expect(o.open(d, NOW).ok).toBe(true);
    for (const d of broadcasts) {
      const r = o.open(d, NOW);
      expect(r.ok, r.ok ? '' : r.reason).toBe(true);
    }
    // The other order, on a fresh receiver.
    const o2 = opener();
    for (const d of broadcasts) expect(o2.open(d, NOW).ok).toBe(true);
    for (const d of unicasts) expect(o2.open(d, NOW).ok).toBe(true);
    // Each is still accepted once, in its own scope.
    for (const d of [...unicasts, ...broadcasts]) expect(failure(o.open(d, NOW)).code).toBe('replay');
    expect(o.counters.replay).toBe(110);
  });

  it('an older incarnation is refused in both scopes once a newer one was seen in either', () => {
    const o = opener();
    const old = sealer(pki.members[M1]!, 1000);
    const oldBroadcast = old.seal(offer, 'broadcast', NOW);
    expect(o.open(old.seal(clientKeepalive, RECEIVER, NOW, { includeCertificate: true }), NOW).ok).toBe(true);
    // The sender restarts; its first message reaching this member is a unicast.
    expect(o.open(sealer(pki.members[M1]!, 2000).seal(clientKeepalive, RECEIVER, NOW, { includeCertificate: true }), NOW).ok).toBe(true);
    const r = failure(o.open(oldBroadcast, NOW));
    expect(r.code).toBe('replay');
    expect(r.reason).toContain('incarnation 1000 is older than 2000');
  });

  it('keeps replay state per sender', () => {
    const o = opener();
    expect(o.open(sealer(pki.members[M1]!).seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.open(sealer(pki.members[M2]!).seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.knownSenders).toBe(2);
  });
});

describe('recipient binding', () => {
  it('accepts a unicast only at its recipient, and a broadcast everywhere', () => {
    const s = sealer(pki.members[M1]!);
    const atM2 = opener({ self: M2 });
    const atM3 = opener({ self: M3 });
    expect(atM2.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(atM3.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    const toM2 = s.seal(SAMPLE_MESSAGES['exit-cluster'], M2, NOW);
    const opened = atM2.open(toM2, NOW);
    expect(opened.ok && opened.signed.recipient).toBe(M2);
    const elsewhere = failure(atM3.open(toM2, NOW));
    expect(elsewhere.code).toBe('wrong-recipient');
    expect(elsewhere.reason).toContain('addressed to 192.0.2.2, not to this member (192.0.2.3)');
    expect(atM3.counters['wrong-recipient']).toBe(1);
  });

  it('a unicast replayed to another member fails there although that member never saw its seq (the old hole)', () => {
    const s = sealer(pki.members[M1]!);
    const master = opener({ self: M3 });
    expect(master.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    const leaveForM2 = s.seal({ type: 'operator-request', requestId: 1, action: 'leave', member: M2, payload: new Uint8Array(0) }, M2, NOW);
    for (let i = 0; i < 5; i++) expect(master.open(s.seal(clientKeepalive, M3, NOW), NOW).ok).toBe(true);
    // seq 2 is inside M3's window for M1 and was never received there: only the recipient stops it.
    expect(failure(master.open(leaveForM2, NOW + 3500, { sourceIp: M1 })).code).toBe('wrong-recipient');
  });

  it("a unicast captured on its way to a recipient's earlier process is refused by the process that followed it (stale-recipient)", () => {
    // M1 knows M2's first process (incarnation 100) from its messages, and seals for it.
    const m2First = sealer(pki.members[M2]!, 100);
    const atM1 = opener({ self: M1 });
    const s = new MessageSealer({ cluster: CLUSTER, memberIp: M1, certChainDer: pki.members[M1]!.chainDer, privateKeyPem: pki.members[M1]!.keyPem, incarnation: 1, recipientIncarnation: (r) => atM1.incarnationOf(r) });
    expect(atM1.incarnationOf(M2)).toBeUndefined();
    const before = s.seal(SAMPLE_MESSAGES['exit-cluster'], M2, NOW);
    expect(atM1.open(m2First.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(atM1.incarnationOf(M2)).toBe(100);
    const leave = s.seal({ type: 'operator-request', requestId: 1, action: 'leave', member: M2, payload: new Uint8Array(0) }, M2, NOW);
    const first = opener({ self: M2, selfIncarnation: 100 });
    const opened = first.open(leave, NOW);
    expect(opened.ok && opened.signed.recipientIncarnation).toBe(100);
    // M2 restarts (incarnation 200): its replay window is empty, and the capture names incarnation 100.
    const second = opener({ self: M2, selfIncarnation: 200 });
    const refused = failure(second.open(leave, NOW + 3500, { sourceIp: M1 }));
    expect(refused.code).toBe('stale-recipient');
    expect(refused.reason).toContain('addressed to incarnation 100 of this member, which is incarnation 200');
    expect(second.counters['stale-recipient']).toBe(1);
    // What M1 sealed before it knew M2's process (recipient_incarnation 0) binds no process (the remaining gap);
    // broadcasts name none.
    expect(second.open(before, NOW).ok).toBe(true);
    expect(second.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    // Once M1 hears from the new process, its unicasts name it and pass.
    expect(atM1.open(sealer(pki.members[M2]!, 200).seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(second.open(s.seal(clientKeepalive, M2, NOW), NOW).ok).toBe(true);
  });

  it('refuses to seal for a recipient that is not a member IP', () => {
    expect(() => sealer(pki.members[M1]!).seal(offer, 'everyone', NOW)).toThrow(TypeError);
  });
});

describe('check order: cheapest first', () => {
  it('rejects a replay before trying its signature or certificate', () => {
    const m1 = pki.members[M1]!;
    const o = opener();
    const d = sealer(m1).seal(offer, 'broadcast', NOW);
    expect(o.open(d, NOW).ok).toBe(true);
    const verifyChain = vi.spyOn(trust, 'verifyChain');
    const e = decodeEnvelope(d);
    if (!e.ok) throw e.error;
    const corrupted = new Uint8Array(e.value.signature);
    corrupted[0]! ^= 1;
    expect(failure(o.open(encodeEnvelope({ ...e.value, signature: corrupted }), NOW)).code).toBe('replay');
    expect(failure(o.open(d, NOW)).code).toBe('replay');
    expect(verifyChain).not.toHaveBeenCalled();
    verifyChain.mockRestore();
  });

  it('verifies a chain once per sender: the same chain again uses the cached verdict', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const verifyChain = vi.spyOn(trust, 'verifyChain');
    for (let i = 0; i < 5; i++) expect(o.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(verifyChain).toHaveBeenCalledTimes(1);
    verifyChain.mockRestore();
  });

  it('rejects a misaddressed or relayed datagram before its certificate is looked at', () => {
    const foreignMember = foreign.members[M1]!;
    const o = opener({ self: M3 });
    const verifyChain = vi.spyOn(trust, 'verifyChain');
    const join = sealer(foreignMember).seal(SAMPLE_MESSAGES['join-request'], M2, NOW);
    expect(failure(o.open(join, NOW)).code).toBe('wrong-recipient');
    expect(failure(o.open(sealer(foreignMember).seal(SAMPLE_MESSAGES['join-request'], 'broadcast', NOW), NOW, { sourceIp: M2 })).code).toBe('sender-mismatch');
    expect(verifyChain).not.toHaveBeenCalled();
    verifyChain.mockRestore();
  });

  it('rate-limits chain verifications of unknown certificates per source, and overall', () => {
    const o = opener({ chainVerifications: { perSecond: 2, burst: 3, overall: { perSecond: 1, burst: 4 } } });
    const rogue = foreign.members[M1]!;
    const join = SAMPLE_MESSAGES['join-request'];
    const codes = Array.from({ length: 6 }, () => failure(o.open(sealer(rogue).seal(join, 'broadcast', NOW), NOW)).code);
    expect(codes.filter((c) => c === 'certificate-rejected')).toHaveLength(3);
    expect(codes.filter((c) => c === 'rate-limited')).toHaveLength(3);
    // One second later the source has two tokens again.
    expect(failure(o.open(sealer(rogue).seal(join, 'broadcast', NOW + 1000), NOW + 1000)).code).toBe('certificate-rejected');
    // Another source still has its own bucket, until the overall one is empty.
    const m2 = pki.members[M2]!;
    expect(o.open(sealer(m2).seal(offer, 'broadcast', NOW + 1000), NOW + 1000).ok).toBe(true);
    const m3 = pki.members[M3]!;
    expect(failure(o.open(sealer(m3).seal(offer, 'broadcast', NOW + 1000), NOW + 1000)).code).toBe('rate-limited');
  });
});

describe('rejections', () => {
  it('accepts timestamps far off the receiver clock, counting those beyond maxClockSkewMs (freshness is the replay window)', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const past = o.open(s.seal(offer, 'broadcast', NOW - 60_000), NOW);
    expect(past.ok && past.clockSkewMs).toBe(60_000);
    const ahead = o.open(s.seal(offer, 'broadcast', NOW + 60_000), NOW);
    expect(ahead.ok && ahead.clockSkewMs).toBe(-60_000);
    expect(o.counters['clock-skew']).toBe(2);
    expect(o.open(s.seal(offer, 'broadcast', NOW - 30_000), NOW).ok).toBe(true);
    expect(o.counters['clock-skew']).toBe(2);
    const strict = opener({ maxClockSkewMs: 100 });
    expect(strict.open(s.seal(offer, 'broadcast', NOW - 101), NOW).ok).toBe(true);
    expect(strict.counters['clock-skew']).toBe(1);
  });

  it('rejects another cluster', () => {
    const r = failure(opener().open(sealer(pki.members[M1]!, 1, 'beta').seal(offer, 'broadcast', NOW), NOW));
    expect(r.code).toBe('wrong-cluster');
    expect(r.reason).toContain('"beta"');
    expect(r.sender).toBe(M1);
  });

  it('returns certificate-rejected WITH the message for a certificate of another CA', () => {
    const o = opener();
    const join = SAMPLE_MESSAGES['join-request'];
    const r = failure(o.open(sealer(foreign.members[M1]!).seal(join, 'broadcast', NOW), NOW));
    expect(r.code).toBe('certificate-rejected');
    expect(r.certificateCode).toBe('not-issued-by-ca');
    expect(r.sender).toBe(M1);
    expect(r.signed?.message).toEqual(join);
    expect(r.reason).toContain('CN=foreign CA');
    // And it did not teach the opener anything about M1.
    expect(o.knownSenders).toBe(0);
  });

  it('returns bad-signature when a rejected certificate does not match the signature either', () => {
    const chain = foreign.members[M1]!.chainDer;
    const r = failure(opener().open(craft({ sender: M1, chain, keyPem: pki.members[M1]!.keyPem, seq: 1 }), NOW));
    expect(r.code).toBe('bad-signature');
    expect(r.signed).toBeUndefined();
  });

  it('rejects expired and not-yet-valid certificates', () => {
    const o = opener();
    const e = failure(o.open(sealer(asMember(expired, '192.0.2.4')).seal(offer, 'broadcast', NOW), NOW));
    expect(e).toMatchObject({ code: 'certificate-rejected', certificateCode: 'expired' });
    expect(e.reason).toContain(`serial ${expired.serial} expired at 2021-01-01T00:00:00Z`);
    const f = failure(o.open(sealer(asMember(future, '192.0.2.5')).seal(offer, 'broadcast', NOW), NOW));
    expect(f).toMatchObject({ code: 'certificate-rejected', certificateCode: 'not-yet-valid' });
  });

  it('stops accepting a cached certificate once it expires', () => {
    const s = sealer(asMember(shortLived, '192.0.2.6'));
    const o = opener();
    expect(o.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.open(s.seal(clientKeepalive, 'broadcast', NOW + 5_000), NOW + 5_000).ok).toBe(true);
    const r = failure(o.open(s.seal(clientKeepalive, 'broadcast', NOW + 20_000), NOW + 20_000));
    expect(r).toMatchObject({ code: 'certificate-rejected', certificateCode: 'expired' });
  });

  it('rejects a revoked certificate', async () => {
    const crlPem = await createRevocationList({ ca: pki.ca, revokedSerials: [pki.members[M2]!.serial], thisUpdate: new Date(NOW) });
    const o = opener({ trust: pki.trustStore({ crlPem }) });
    expect(o.open(sealer(pki.members[M1]!).seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(failure(o.open(sealer(pki.members[M2]!).seal(offer, 'broadcast', NOW), NOW))).toMatchObject({ code: 'certificate-rejected', certificateCode: 'revoked' });
  });

  it('rejects a spoofed sender: certificate for 192.0.2.2, sender field 192.0.2.3', () => {
    const m2 = pki.members[M2]!;
    const o = opener();
    const withCert = failure(o.open(craft({ sender: M3, chain: m2.chainDer, keyPem: m2.keyPem, seq: 1 }), NOW));
    expect(withCert).toMatchObject({ code: 'certificate-rejected', certificateCode: 'wrong-address', sender: M3 });
    expect(withCert.reason).toContain('is for IP 192.0.2.2, not for member 192.0.2.3');
    // Without a certificate, against M3's cached one: the signature cannot match.
    expect(o.open(sealer(pki.members[M3]!).seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    const cached = failure(o.open(craft({ sender: M3, chain: [], keyPem: m2.keyPem, seq: 2 }), NOW));
    expect(cached.code).toBe('bad-signature');
    expect(cached.reason).toContain('CN=member 192.0.2.3');
  });

  it('rejects a datagram whose UDP source is not the signed sender', () => {
    const s = sealer(pki.members[M2]!);
    const o = opener();
    const r = failure(o.open(s.seal(offer, 'broadcast', NOW), NOW, { sourceIp: M3 }));
    expect(r.code).toBe('sender-mismatch');
    expect(r.reason).toContain('datagram from 192.0.2.3 is signed by member 192.0.2.2');
    expect(o.open(s.seal(offer, 'broadcast', NOW), NOW, { sourceIp: M2 }).ok).toBe(true);
  });

  it('rejects an unsupported version, naming it', () => {
    const m1 = pki.members[M1]!;
    const v1 = decodeEnvelope(craft({ sender: M1, chain: m1.chainDer, keyPem: m1.keyPem, seq: 1 }));
    if (!v1.ok) throw v1.error;
    const v3 = encodeEnvelope({ ...v1.value, version: 3 });
    const r = failure(opener().open(v3, NOW));
    expect(r.code).toBe('unsupported-version');
    expect(r.reason).toContain('protocol version 3 is not supported');
  });

  it('rejects an envelope whose version differs from the signed one (the version a member acts on is signed)', () => {
    const m1 = pki.members[M1]!;
    const r = failure(opener().open(craft({ sender: M1, chain: m1.chainDer, keyPem: m1.keyPem, seq: 1, signedVersion: 1 }), NOW));
    expect(r.code).toBe('unsupported-version');
    expect(r.reason).toContain('version 1 inside its signature and 2 outside');
  });

  it('rejects a signature of the wrong length without trying it', () => {
    const m1 = pki.members[M1]!;
    const e = decodeEnvelope(craft({ sender: M1, chain: m1.chainDer, keyPem: m1.keyPem, seq: 1 }));
    if (!e.ok) throw e.error;
    const r = failure(opener().open(encodeEnvelope({ ...e.value, signature: e.value.signature.subarray(0, 63) }), NOW));
    expect(r.code).toBe('bad-signature');
  });
});

describe('fuzzing: open() never throws and never accepts modified content', () => {
  // The envelope's framing is not signed (only `signed` is), and protobufjs reads a known field whatever its
  // wire type, so a few byte changes (e.g. the version tag 0x08 -> 0x09) decode to the SAME envelope. Those
  // may be accepted; what must never happen is accepting different signed bytes or a different signature.
  function sameAuthenticatedContent(d: Uint8Array, original: Uint8Array): boolean {
    const a = decodeEnvelope(d);
    const b = decodeEnvelope(original);
    return a.ok && b.ok && Buffer.from(a.value.signed).equals(Buffer.from(b.value.signed)) && Buffer.from(a.value.signature).equals(Buffer.from(b.value.signature));
  }

  it('rejects every single-byte change of a certificate-bearing datagram', () => {
    const m1 = pki.members[M1]!;
    // Has never accepted the original: any ok must be the original's content. Every variant's chain is verified.
    const o = opener({ chainVerifications: { perSecond: 1e6, burst: 1e6 } });
    const original = sealer(m1).seal(SAMPLE_MESSAGES['join-request'], 'broadcast', NOW);
    const rand = prng(0x5eed);
    let tried = 0;
    let framingOnly = 0;
    for (let i = 0; i < original.length; i++) {
      for (const flip of [0x01, 0x80, 1 + Math.floor(rand() * 255)]) {
        const d = new Uint8Array(original);
        d[i]! ^= flip;
        const r = o.open(d, NOW);
        if (r.ok) {
          expect(sameAuthenticatedContent(d, original), `byte ${i} ^ 0x${flip.toString(16)} accepted`).toBe(true);
          framingOnly++;
          o.forget(M1); // so that the next equivalent variant is judged afresh, not as a replay
        }
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(1500);
    expect(framingOnly).toBeLessThan(10);
    expect(o.counters['bad-signature']).toBeGreaterThan(1000);
  });

  it('rejects random mutations (flips, truncation, insertion, deletion) of a cached-sender datagram', () => {
    const m1 = pki.members[M1]!;
    const s = sealer(m1);
    const o = opener();
    expect(o.open(s.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true); // M1 known now
    const original = s.seal(clientKeepalive, 'broadcast', NOW); // never opened
    const rand = prng(0xc0ffee);
    const pick = (n: number) => Math.floor(rand() * n);
    for (let k = 0; k < 3000; k++) {
      let d = new Uint8Array(original);
      const mutations = 1 + pick(4);
      for (let j = 0; j < mutations; j++) {
        const kind = pick(4);
        if (kind === 0 && d.length > 0) d[pick(d.length)] = pick(256);
        else if (kind === 1) d = d.subarray(0, pick(d.length));
        else if (kind === 2) {
          const at = pick(d.length + 1);
          d = new Uint8Array([...d.subarray(0, at), pick(256), ...d.subarray(at)]);
        } else if (d.length > 0) {
          const at = pick(d.length);
          d = new Uint8Array([...d.subarray(0, at), ...d.subarray(at + 1)]);
        }
      }
      if (sameAuthenticatedContent(d, original)) continue;
      let r: OpenResult | undefined;
      expect(() => (r = o.open(d, NOW))).not.toThrow();
      expect(r!.ok, `mutation ${k}: ${Buffer.from(d).toString('hex')}`).toBe(false);
    }
    // The untouched datagram is still fresh: nothing above moved the replay window.
    expect(o.open(original, NOW).ok).toBe(true);
  });

  it('rejects random byte strings', () => {
    const o = opener();
    const rand = prng(42);
    for (let k = 0; k < 3000; k++) {
      const d = k % 3 === 0 ? randomBytes(Math.floor(rand() * 700)) : new Uint8Array(Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256)));
      let r: OpenResult | undefined;
      expect(() => (r = o.open(d, NOW))).not.toThrow();
      expect(r!.ok).toBe(false);
    }
    const total = Object.values(o.counters).reduce((a, b) => a + b, 0);
    expect(total).toBe(3000);
  });
});

describe('sender state', () => {
  it('forget() drops the certificate and the replay state', () => {
    const s = sealer(pki.members[M1]!);
    const o = opener();
    const d = s.seal(offer, 'broadcast', NOW);
    expect(o.open(d, NOW).ok).toBe(true);
    o.forget(M1);
    expect(o.knownSenders).toBe(0);
    expect(failure(o.open(s.seal(clientKeepalive, 'broadcast', NOW), NOW)).code).toBe('unknown-signer');
  });

  it('keeps at most maxSenders, evicting the least recently heard', () => {
    const o = opener({ maxSenders: 2 });
    const s1 = sealer(pki.members[M1]!);
    const s2 = sealer(pki.members[M2]!);
    const s3 = sealer(pki.members[M3]!);
    expect(o.open(s1.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.open(s2.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.open(s1.seal(clientKeepalive, 'broadcast', NOW), NOW).ok).toBe(true); // M1 now most recent
    expect(o.open(s3.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true); // evicts M2
    expect(o.knownSenders).toBe(2);
    expect(failure(o.open(s2.seal(clientKeepalive, 'broadcast', NOW), NOW)).code).toBe('unknown-signer');
    expect(o.open(s1.seal(clientKeepalive, 'broadcast', NOW), NOW).ok).toBe(true);
  });

  it('replaceTrust() re-verifies cached certificates and forgets the ones now refused', async () => {
    const o = opener();
    const s1 = sealer(pki.members[M1]!);
    const s2 = sealer(pki.members[M2]!);
    expect(o.open(s1.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    expect(o.open(s2.seal(offer, 'broadcast', NOW), NOW).ok).toBe(true);
    const crlPem = await createRevocationList({ ca: pki.ca, revokedSerials: [pki.members[M1]!.serial], thisUpdate: new Date(NOW) });
    o.replaceTrust(pki.trustStore({ crlPem }), NOW);
    expect(failure(o.open(s1.seal(clientKeepalive, 'broadcast', NOW), NOW)).code).toBe('unknown-signer');
    expect(o.open(s2.seal(clientKeepalive, 'broadcast', NOW), NOW).ok).toBe(true);
  });

  it('counts every outcome', () => {
    const o = opener();
    const s = sealer(pki.members[M1]!);
    const d = s.seal(offer, 'broadcast', NOW);
    o.open(d, NOW);
    o.open(d, NOW);
    o.open(new Uint8Array([1, 2, 3]), NOW);
    o.open(sealer(pki.members[M2]!).seal(clientKeepalive, 'broadcast', NOW), NOW);
    expect(o.counters).toMatchObject({ ok: 1, replay: 1, decode: 1, 'unknown-signer': 1, 'bad-signature': 0 });
  });
});

describe('MessageSealer construction', () => {
  it('refuses a key that is not the certificate\'s, and a member IP the certificate is not for', () => {
    const m1 = pki.members[M1]!;
    const make = (o: Partial<ConstructorParameters<typeof MessageSealer>[0]>) => () =>
      new MessageSealer({ cluster: CLUSTER, memberIp: M1, certChainDer: m1.chainDer, privateKeyPem: m1.keyPem, incarnation: 1, ...o });
    expect(make({})).not.toThrow();
    expect(make({ privateKeyPem: pki.members[M2]!.keyPem })).toThrow(expect.objectContaining({ code: 'key-mismatch' }));
    expect(make({ memberIp: M2 })).toThrow(expect.objectContaining({ code: 'bad-member-ip' }));
    expect(make({ certChainDer: [] })).toThrow(SecurityConfigError);
    expect(make({ privateKeyPem: 'nope' })).toThrow(expect.objectContaining({ code: 'bad-private-key' }));
    expect(make({ cluster: 'x'.repeat(65) })).toThrow(expect.objectContaining({ code: 'bad-option' }));
  });
});
