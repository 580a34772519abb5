// Fuzzing the decoders of bytes that come from the network (fast-check): random and mutated inputs never
// throw; a failure is always a WireError with one of the documented codes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  WireError,
  decodeClusterMessage,
  decodeEnvelope,
  decodeSignedMessage,
  decodeSyncRecords,
  encodeClusterMessage,
  encodeEnvelope,
  encodeSignedMessage,
  encodeSyncRecords,
  peekSignedHeader,
  type ClusterMessage,
  type Decoded,
} from '../src/index.js';

const CODES = new Set(['decode', 'unsupported-version', 'limit', 'invalid']);

const records = [
  { key: new Uint8Array(40).fill(7), version: 9, state: new Uint8Array(112).fill(3), removed: false },
  { key: new Uint8Array([1, 2, 3]), version: 2, state: new Uint8Array(0), removed: true },
];
const messages: ClusterMessage[] = [
  { type: 'state-sync', seq: 4, records, snapshotComplete: true },
  { type: 'state-sync', seq: 5, records: [], snapshotComplete: false, sealed: new Uint8Array(200).fill(9) },
  { type: 'state-ack', seqs: [4, 5] },
  { type: 'pool-affinity', address: '192.0.2.101', serial: 9, flows: [{ client: '203.0.113.9', clientPort: 40001, port: 7 }] },
  { type: 'client-keepalive', epoch: 5, seq: 10, load: 0.75, ownedUnits: [7, 8], busiestUnits: [{ unit: 7, weight: 2 }], syncReady: true },
  { type: 'work-deassign', epoch: 5, requestId: 2, units: [3], to: '192.0.2.2' },
  { type: 'join-request', configVersion: 3, claimedUnits: [1, 2, 1023], nonce: 77 },
];
const signed = messages.map((message, i) =>
  encodeSignedMessage({ cluster: 'alpha', sender: '192.0.2.1', certChain: [new Uint8Array(300).fill(i)], incarnation: 1, seq: i + 1, sentAtMs: 1000, message, recipient: '192.0.2.2', version: PROTOCOL_VERSION }),
);
const envelopes = [
  ...signed.map((s) => encodeEnvelope({ version: PROTOCOL_VERSION, signed: s, signature: new Uint8Array(64).fill(5) })),
  ...signed.map((s) => encodeEnvelope({ version: PROTOCOL_VERSION, signed: s, signature: new Uint8Array(0), mac: new Uint8Array(32).fill(6) })),
];
const bodies = messages.map(encodeClusterMessage);
const syncRecords = [encodeSyncRecords(records)];

/** A valid encoding with bytes flipped, set, cut, duplicated or spliced. */
function mutated(valid: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(
      fc.constantFrom(...valid),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('flip', 'set', 'cut', 'dup', 'insert')), { minLength: 1, maxLength: 6 }),
    )
    .map(([base, edits]) => {
      let b = Buffer.from(base);
      for (const [at, v, op] of edits) {
        const i = b.length === 0 ? 0 : at % b.length;
        if (op === 'flip' && b.length > 0) b[i] = b[i]! ^ (1 << (v % 8));
        else if (op === 'set' && b.length > 0) b[i] = v;
        else if (op === 'cut') b = b.subarray(0, i);
        else if (op === 'dup') b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + (v % 32)), b.subarray(i)]);
        else b = Buffer.concat([b.subarray(0, i), Buffer.from([v, v ^ 0x80, 0xff]), b.subarray(i)]);
      }
      return new Uint8Array(b);
    });
}

function documented<T>(r: Decoded<T>): boolean {
  return r.ok || (r.error instanceof WireError && CODES.has(r.error.code) && r.error.message.length > 0);
}

const decoders: [string, (b: Uint8Array) => Decoded<unknown>, readonly Uint8Array[]][] = [
  ['decodeEnvelope', decodeEnvelope, envelopes],
  ['decodeSignedMessage', decodeSignedMessage, signed],
  ['peekSignedHeader', peekSignedHeader, signed],
  ['decodeClusterMessage', decodeClusterMessage, bodies],
  ['decodeSyncRecords', decodeSyncRecords, syncRecords],
];

describe('network decoders under fuzzing', () => {
  it('the valid samples decode (the mutations start from real encodings)', () => {
    for (const [, decode, valid] of decoders) for (const v of valid) expect(decode(v).ok).toBe(true);
  });

  it.each(decoders)('%s: random bytes never throw, failures carry a documented code', (_name, decode) => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => documented(decode(b))), { numRuns: 2000 });
  });

  it.each(decoders)('%s: mutated valid encodings never throw, failures carry a documented code', (_name, decode, valid) => {
    fc.assert(fc.property(mutated(valid), (b) => documented(decode(b))), { numRuns: 2000 });
  });

  it('a signed message that decodes has the header peekSignedHeader reads', () => {
    fc.assert(
      fc.property(mutated(signed), (b) => {
        const full = decodeSignedMessage(b);
        const head = peekSignedHeader(b);
        if (!full.ok || !head.ok) return true;
        const s = full.value;
        return head.value.sender === s.sender && head.value.seq === s.seq && head.value.incarnation === s.incarnation && head.value.recipient === s.recipient && head.value.cluster === s.cluster;
      }),
      { numRuns: 2000 },
    );
  });
});
