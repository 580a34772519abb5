import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { LIMITS, PROTOCOL_VERSION, PROTO_PATH, decodeEnvelope, encodeEnvelope, type Envelope } from '../src/index.js';

const signed = new Uint8Array(40).fill(3);
const EnvelopeT = protobuf.loadSync(PROTO_PATH).lookupType('gwcluster.v1.Envelope');
/** Any field combination, as a peer (or an attacker) could put on the wire. */
const raw = (fields: Record<string, unknown>) => EnvelopeT.encode(EnvelopeT.fromObject({ version: PROTOCOL_VERSION, signed, ...fields })).finish();

function failure(bytes: Uint8Array): { code: string; message: string } {
  const r = decodeEnvelope(bytes);
  if (r.ok) throw new Error('expected a decode failure');
  return { code: r.error.code, message: r.error.message };
}

describe('Envelope: signature or MAC', () => {
  it('round-trips a signed envelope (mac decodes empty)', () => {
    const e: Envelope = { version: PROTOCOL_VERSION, signed, signature: new Uint8Array(64).fill(1) };
    const d = decodeEnvelope(encodeEnvelope(e));
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect([...d.value.signature]).toEqual([...e.signature]);
    expect(d.value.mac?.length).toBe(0);
  });

  it('round-trips a MAC envelope (signature decodes empty)', () => {
    const e: Envelope = { version: PROTOCOL_VERSION, signed, signature: new Uint8Array(0), mac: new Uint8Array(LIMITS.macBytes).fill(2) };
    const bytes = encodeEnvelope(e);
    const d = decodeEnvelope(bytes);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.value.signature.length).toBe(0);
    expect([...d.value.mac!]).toEqual([...e.mac!]);
    // The signature field is left out, not written empty.
    expect((EnvelopeT.toObject(EnvelopeT.decode(bytes)) as { signature?: unknown }).signature).toBeUndefined();
  });

  it('refuses both, neither, and a MAC of another length, with codes and without throwing', () => {
    const both = failure(raw({ signature: new Uint8Array(64).fill(1), mac: new Uint8Array(32).fill(2) }));
    expect(both.code).toBe('invalid');
    expect(both.message).toMatch(/both a signature .* and a MAC/);
    const neither = failure(raw({}));
    expect(neither.code).toBe('invalid');
    expect(neither.message).toMatch(/neither a signature nor a MAC/);
    for (const n of [1, 31, 33, 64]) {
      const short = failure(raw({ mac: new Uint8Array(n).fill(2) }));
      expect(short.code).toBe('limit');
      expect(short.message).toContain(`MAC is ${n} bytes`);
    }
    expect(failure(raw({ signature: new Uint8Array(LIMITS.maxSignatureBytes + 1) })).code).toBe('limit');
    expect(failure(raw({ signed: new Uint8Array(0), mac: new Uint8Array(32) })).code).toBe('invalid');
  });
});
