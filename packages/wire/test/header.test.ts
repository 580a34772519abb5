import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { PROTO_PATH, decodeSignedMessage, encodeSignedMessage, peekSignedHeader, type SignedMessage } from '../src/index.js';

const base: SignedMessage = {
  cluster: 'alpha',
  sender: '192.0.2.1',
  certChain: [new Uint8Array(300).fill(7)],
  incarnation: 1_780_000_000_000,
  seq: 2 ** 40 + 3,
  sentAtMs: 1_780_000_000_123,
  message: { type: 'master-offer', epoch: 5, memberCount: 1 },
  recipient: '192.0.2.2',
  version: 2,
};

describe('peekSignedHeader', () => {
  it('reads the header the full decode reads, broadcast and unicast', () => {
    for (const recipient of ['192.0.2.2', 'broadcast'] as const) {
      const bytes = encodeSignedMessage({ ...base, recipient });
      const full = decodeSignedMessage(bytes);
      const peek = peekSignedHeader(bytes);
      if (!full.ok || !peek.ok) throw new Error('decode failed');
      const { certChain: _c, message: _m, ...header } = full.value;
      expect(peek.value).toEqual(header);
    }
  });

  it('takes the last value of a repeated field, as the full decode does', () => {
    const SignedMessageT = protobuf.loadSync(PROTO_PATH).lookupType('gwcluster.v1.SignedMessage');
    const first = encodeSignedMessage(base);
    const extra = SignedMessageT.encode(SignedMessageT.fromObject({ recipient: '192.0.2.9', seq: 99 })).finish();
    const bytes = new Uint8Array([...first, ...extra]);
    const full = decodeSignedMessage(bytes);
    const peek = peekSignedHeader(bytes);
    expect(full.ok && full.value.recipient).toBe('192.0.2.9');
    expect(peek.ok && peek.value).toMatchObject({ recipient: '192.0.2.9', seq: 99 });
  });

  it('refuses garbage and bad addresses with codes', () => {
    expect(peekSignedHeader(new Uint8Array([0x0a, 0xff])).ok).toBe(false);
    const r = peekSignedHeader(encodeSignedMessage({ ...base, cluster: 'x'.repeat(65) }));
    expect(r.ok ? null : r.error.code).toBe('limit');
  });
});
