// The native transport data path against node:crypto's ChaCha20-Poly1305 as the reference: byte-exact
// transport messages, the replay window, cryptokey routing and every drop reason.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadBinding } from '../../src/common/binding.js';
import { prefixRecord, REPLAY_WINDOW_COUNTERS, TunnelTransport, tunnelAvailable } from '../../src/tunnel/tunnel.js';

const available = (() => { try { return tunnelAvailable(loadBinding()); } catch { return false; } })();

const K1 = Buffer.alloc(32, 1);
const K2 = Buffer.alloc(32, 2);
const CLIENT = { address: '198.51.100.7', port: 40000 };

function nonce(counter: bigint) { const n = Buffer.alloc(12); n.writeBigUInt64LE(counter, 4); return n; }

/** The reference: a transport message as the whitepaper defines it, sealed by node:crypto. */
function referenceSeal(key: Buffer, receiver: number, counter: bigint, packet: Uint8Array): Buffer {
  const padded = Buffer.alloc((packet.length + 15) & ~15);
  padded.set(packet);
  const c = createCipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: 16 });
  const body = Buffer.concat([c.update(padded), c.final(), c.getAuthTag()]);
  const h = Buffer.alloc(16);
  h[0] = 4; h.writeUInt32LE(receiver, 4); h.writeBigUInt64LE(counter, 8);
  return Buffer.concat([h, body]);
}

function referenceOpen(key: Buffer, datagram: Buffer): Buffer {
  const counter = datagram.readBigUInt64LE(8);
  const d = createDecipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: 16 });
  d.setAuthTag(datagram.subarray(datagram.length - 16));
  return Buffer.concat([d.update(datagram.subarray(16, datagram.length - 16)), d.final()]);
}

/** An IPv4/UDP packet src -> dst with `payload`. */
function ipv4(src: string, dst: string, payload: Buffer): Buffer {
  const p = Buffer.alloc(28 + payload.length);
  p[0] = 0x45; p.writeUInt16BE(p.length, 2); p[8] = 64; p[9] = 17;
  p.set(src.split('.').map(Number), 12); p.set(dst.split('.').map(Number), 16);
  p.writeUInt16BE(1000, 20); p.writeUInt16BE(2000, 22); p.writeUInt16BE(8 + payload.length, 24);
  payload.copy(p, 28);
  return p;
}

const one = (b: Uint8Array) => ({ bytes: b, offsets: Uint32Array.of(0, b.length) });
function pack(list: Uint8Array[]) {
  const offsets = new Uint32Array(list.length + 1);
  list.forEach((b, i) => { offsets[i + 1] = offsets[i]! + b.length; });
  return { bytes: Buffer.concat(list), offsets };
}

/** The responder side: peer 0 = the client, allowed 10.77.1.0/24; keypair local 7 / remote 9. */
function responder(canSend = true) {
  const t = new TunnelTransport();
  t.setAllowedIps(0, ['10.77.1.0/24']);
  t.setKeypairs(0, [{ localIndex: 7, remoteIndex: 9, sendKey: K2, receiveKey: K1, canSend }]);
  return t;
}

describe.skipIf(!available)('TunnelTransport (libsodium)', () => {
  it('decrypts what the reference seals and seals what the reference opens, byte for byte', () => {
    const t = responder();
    const inner = ipv4('10.77.1.2', '203.0.113.5', randomBytes(333));
    const datagram = referenceSeal(K1, 7, 0n, inner);
    const { bytes, offsets } = one(datagram);
    const r = t.decryptBatch(bytes, offsets, CLIENT);
    expect(r.status).toEqual(['data']);
    expect(r.plaintext.equals(inner)).toBe(true); // padding stripped by the IP total length
    const reply = ipv4('203.0.113.5', '10.77.1.2', randomBytes(100));
    const e = t.encryptBatch(-1, ...Object.values(one(reply)) as [Buffer, Uint32Array]);
    expect(e.status).toEqual(['sent']);
    expect(e.endpoints[0]).toEqual(CLIENT);
    expect(e.datagrams.length).toBe(16 + 128 + 16);
    expect(e.datagrams.equals(referenceSeal(K2, 9, 0n, reply))).toBe(true);
    expect(referenceOpen(K2, e.datagrams).subarray(0, reply.length).equals(reply)).toBe(true);
    const s = t.peerStats(0);
    expect(s).toMatchObject({ rxPackets: 1, txPackets: 1, endpoint: CLIENT });
  });

  it('replay window: a duplicate is dropped, reordering within the window passes, older than the window is dropped', () => {
    const t = responder();
    const inner = ipv4('10.77.1.2', '203.0.113.5', Buffer.from('x'));
    const at = (c: bigint) => referenceSeal(K1, 7, c, inner);
    const big = BigInt(REPLAY_WINDOW_COUNTERS) + 100n;
    const { bytes, offsets } = pack([at(5n), at(5n), at(3n), at(big), at(200n), at(99n), at(big), at(big + 1n)]);
    const r = t.decryptBatch(bytes, offsets, CLIENT);
    // 5 ok, 5 again replayed, 3 ok (within window), big ok, 200 ok (big - 200 < window), 99 too old, big replayed
    expect(r.status).toEqual(['data', 'replayed', 'data', 'data', 'data', 'replayed', 'replayed', 'data']);
  });

  it('counts forged, unknown, malformed, keepalive, not-allowed-source and counter-limit datagrams', () => {
    const t = responder();
    const good = referenceSeal(K1, 7, 1n, ipv4('10.77.1.2', '203.0.113.5', Buffer.from('hi')));
    const forged = Buffer.from(good); forged[40]! ^= 0x80;
    const unknown = referenceSeal(K1, 8, 1n, Buffer.alloc(0));
    const keepalive = referenceSeal(K1, 7, 2n, Buffer.alloc(0));
    const spoofed = referenceSeal(K1, 7, 3n, ipv4('10.99.0.1', '203.0.113.5', Buffer.from('x')));
    const notIp = referenceSeal(K1, 7, 4n, Buffer.from('not an ip packet at all'));
    const limit = referenceSeal(K1, 7, 2n ** 64n - 2n ** 13n - 1n, Buffer.alloc(0));
    const { bytes, offsets } = pack([forged, unknown, Buffer.from('garbage'), keepalive, spoofed, notIp, limit, good.subarray(0, 20)]);
    const r = t.decryptBatch(bytes, offsets, CLIENT);
    expect(r.status).toEqual(['auth-failed', 'unknown-index', 'malformed', 'keepalive', 'source-not-allowed', 'bad-inner-packet', 'counter-limit', 'malformed']);
    // The forged datagram did not move the window: the genuine one with the same counter passes.
    expect(t.decryptBatch(...Object.values(one(good)) as [Buffer, Uint32Array]).status).toEqual(['data']);
    expect(t.stats().decrypt).toMatchObject({ 'auth-failed': 1, 'unknown-index': 1, malformed: 2, keepalive: 1, 'source-not-allowed': 1, 'bad-inner-packet': 1, 'counter-limit': 1, data: 1 });
  });

  it('a responder keypair sends only after the initiator used it; activity reports it', () => {
    const t = responder(false);
    const reply = ipv4('203.0.113.5', '10.77.1.2', Buffer.from('r'));
    expect(t.encryptBatch(0, ...Object.values(one(reply)) as [Buffer, Uint32Array]).status).toEqual(['no-keypair']);
    t.decryptBatch(...Object.values(one(referenceSeal(K1, 7, 0n, Buffer.alloc(0)))) as [Buffer, Uint32Array], CLIENT);
    expect(t.encryptBatch(0, ...Object.values(one(reply)) as [Buffer, Uint32Array]).status).toEqual(['sent']);
    // Re-setting the same keypair as not sendable (a stale core view) keeps the confirmation.
    t.setKeypairs(0, [{ localIndex: 7, remoteIndex: 9, sendKey: K2, receiveKey: K1, canSend: false }]);
    expect(t.encryptBatch(0, ...Object.values(one(reply)) as [Buffer, Uint32Array]).status).toEqual(['sent']);
    const act = t.activity();
    expect(act).toHaveLength(1);
    expect(act[0]).toMatchObject({ localIndex: 7, peer: 0, received: 1, receivedData: 0, sent: 2, sentData: 2, sendCounter: 2n, from: CLIENT });
    expect(t.activity()).toEqual([]);
  });

  it('routes by the longest allowed-IPs prefix and refuses unrouted destinations', () => {
    const t = new TunnelTransport();
    t.setAllowedIps(0, ['10.77.0.0/16']);
    t.setAllowedIps(1, ['10.77.2.0/24', '2001:db8::/32']);
    t.setKeypairs(0, [{ localIndex: 1, remoteIndex: 2, sendKey: K1, receiveKey: K2, canSend: true }]);
    t.setKeypairs(1, [{ localIndex: 3, remoteIndex: 4, sendKey: K1, receiveKey: K2, canSend: true }]);
    t.setEndpoint(0, CLIENT);
    t.setEndpoint(1, { address: '2001:db8::9', port: 51820 });
    const { bytes, offsets } = pack([ipv4('192.0.2.1', '10.77.1.1', Buffer.alloc(1)), ipv4('192.0.2.1', '10.77.2.1', Buffer.alloc(1)), ipv4('192.0.2.1', '10.78.0.1', Buffer.alloc(1)), Buffer.from('zz')]);
    const r = t.encryptBatch(-1, bytes, offsets);
    expect(r.status).toEqual(['sent', 'sent', 'no-peer', 'bad-packet']);
    expect([...r.peers.slice(0, 2)]).toEqual([0, 1]);
    expect(r.endpoints[1]).toEqual({ address: '2001:db8::9', port: 51820 });
  });

  it('rejects bad arguments with errors that name them', () => {
    const t = new TunnelTransport();
    expect(() => t.setAllowedIps(0, ['10.0.0.0/33'])).toThrow(/prefix length must be 0..32/);
    expect(() => t.setAllowedIps(0, ['nope'])).toThrow(/not an IPv4 or IPv6 prefix/);
    expect(() => t.setKeypairs(0, [{ localIndex: 1, remoteIndex: 2, sendKey: Buffer.alloc(31), receiveKey: K1, canSend: true }])).toThrow(/32 bytes/);
    expect(() => t.decryptBatch(Buffer.alloc(4), Uint32Array.of(0, 9))).toThrow();
    expect(prefixRecord('2001:db8::/32')[0]).toBe(6);
  });
});
