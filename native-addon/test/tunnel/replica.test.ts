// The data path's part of tunnel replication (docs/tunnels.md, "Replication and takeover"): the send
// limit (the counter lease), a replica's seed (send counter and receive window), forwarding to the owner.
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadBinding } from '../../src/common/binding.js';
import { TunnelTransport, tunnelAvailable } from '../../src/tunnel/tunnel.js';

const available = (() => { try { return tunnelAvailable(loadBinding()); } catch { return false; } })();
const K1 = Buffer.alloc(32, 1);
const K2 = Buffer.alloc(32, 2);
const CLIENT = { address: '198.51.100.7', port: 40000 };

function seal(key: Buffer, receiver: number, counter: bigint, packet: Uint8Array): Buffer {
  const padded = Buffer.alloc((packet.length + 15) & ~15);
  padded.set(packet);
  const n = Buffer.alloc(12); n.writeBigUInt64LE(counter, 4);
  const c = createCipheriv('chacha20-poly1305', key, n, { authTagLength: 16 });
  const body = Buffer.concat([c.update(padded), c.final(), c.getAuthTag()]);
  const h = Buffer.alloc(16);
  h[0] = 4; h.writeUInt32LE(receiver, 4); h.writeBigUInt64LE(counter, 8);
  return Buffer.concat([h, body]);
}

function ipv4(src: string, dst: string): Buffer {
  const p = Buffer.alloc(40);
  p[0] = 0x45; p.writeUInt16BE(p.length, 2); p[8] = 64; p[9] = 17;
  p.set(src.split('.').map(Number), 12); p.set(dst.split('.').map(Number), 16);
  return p;
}
const one = (b: Uint8Array) => ({ bytes: b, offsets: Uint32Array.of(0, b.length) });
const TO_PEER = ipv4('192.0.2.100', '10.77.1.5');

function transport(extra: Record<string, unknown> = {}) {
  const t = new TunnelTransport();
  t.setAllowedIps(0, ['10.77.1.0/24']);
  t.setEndpoint(0, CLIENT);
  t.setKeypairs(0, [{ localIndex: 7, remoteIndex: 9, sendKey: K2, receiveKey: K1, canSend: true, ...extra }]);
  return t;
}

function sendOne(t: TunnelTransport) {
  const p = one(TO_PEER);
  const r = t.encryptBatch(-1, p.bytes, p.offsets);
  return { status: r.status[0], counter: r.status[0] === 'sent' ? r.datagrams.readBigUInt64LE(8) : null };
}

describe.skipIf(!available)('TunnelTransport: leases, replicas, forwarding', () => {
  it('never sends a counter at or beyond the send limit; raising the limit lets it go on', () => {
    const t = transport({ sendLimit: 2 });
    expect(sendOne(t)).toEqual({ status: 'sent', counter: 0n });
    expect(sendOne(t)).toEqual({ status: 'sent', counter: 1n });
    expect(sendOne(t).status).toBe('send-limit');
    t.setKeypairs(0, [{ localIndex: 7, remoteIndex: 9, sendKey: K2, receiveKey: K1, canSend: true, sendLimit: 3n }]);
    expect(sendOne(t)).toEqual({ status: 'sent', counter: 2n });
    expect(t.stats().encrypt['send-limit']).toBe(1);
  });

  it('a replica seeded at the reservation sends from it, and refuses every receive counter below its seed', () => {
    const t = transport({ seedSendCounter: 1000n, seedReceiveNext: 500n });
    expect(sendOne(t)).toEqual({ status: 'sent', counter: 1000n });
    const inner = ipv4('10.77.1.5', '192.0.2.100');
    for (const c of [0n, 100n, 499n]) {
      const d = one(seal(K1, 7, c, inner));
      expect(t.decryptBatch(d.bytes, d.offsets, CLIENT).status).toEqual(['replayed']);
    }
    for (const c of [500n, 501n, 9000n]) {
      const d = one(seal(K1, 7, c, inner));
      expect(t.decryptBatch(d.bytes, d.offsets, CLIENT).status).toEqual(['data']);
    }
    // A seed never moves a counter back: reinstalling with an older seed changes nothing.
    t.setKeypairs(0, [{ localIndex: 7, remoteIndex: 9, sendKey: K2, receiveKey: K1, canSend: true, seedSendCounter: 10n, seedReceiveNext: 10n }]);
    expect(sendOne(t)).toEqual({ status: 'sent', counter: 1001n });
    const again = one(seal(K1, 7, 501n, inner));
    expect(t.decryptBatch(again.bytes, again.offsets, CLIENT).status).toEqual(['replayed']);
    const act = t.activity().find((a) => a.localIndex === 7)!;
    expect(act.receiveNext).toBe(9001n);
    expect(act.sendCounter).toBe(1002n);
  });

  it('a seed at a block edge refuses the edge and accepts the next counter', () => {
    const t = transport({ seedReceiveNext: 64n });
    const inner = ipv4('10.77.1.5', '192.0.2.100');
    const d63 = one(seal(K1, 7, 63n, inner));
    expect(t.decryptBatch(d63.bytes, d63.offsets, CLIENT).status).toEqual(['replayed']);
    const d64 = one(seal(K1, 7, 64n, inner));
    expect(t.decryptBatch(d64.bytes, d64.offsets, CLIENT).status).toEqual(['data']);
  });

  it('a peer whose tunnel another member owns: its packets are forwarded, in the clear, to that member', () => {
    const t = transport();
    t.setForward(0, { address: '192.0.2.12', port: 51821 });
    const r = (() => { const p = one(TO_PEER); return t.encryptBatch(-1, p.bytes, p.offsets); })();
    expect(r.status).toEqual(['forwarded']);
    expect(Buffer.from(r.datagrams).equals(TO_PEER)).toBe(true);
    t.setForward(0, null);
    expect(sendOne(t)).toEqual({ status: 'sent', counter: 0n });
    expect(() => t.setForwarders(['not an address'])).toThrow(/IPv4/);
    t.setForwarders(['192.0.2.11', '192.0.2.12']);
  });
});
