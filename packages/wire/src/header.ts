/**
 * The header of a SignedMessage (every field but the certificate chain and the message body), read
 * without decoding the body: what a receiver needs to drop a misaddressed or replayed datagram for the
 * cost of a few varints. Field numbers are proto/cluster.proto's. A repeated scalar field takes its last
 * value, as protobufjs (and the full decode, decodeSignedMessage) do, so both read the same header from
 * the same bytes.
 */
import protobuf from 'protobufjs';
import { LIMITS } from './limits.js';
import type { MemberId } from './types.js';
import type { Decoded } from './codec.js';
import { WireError } from './codec.js';
import { isIpv4 } from './ip.js';

export interface SignedHeader {
  readonly cluster: string;
  readonly sender: MemberId;
  readonly incarnation: number;
  readonly seq: number;
  readonly sentAtMs: number;
  readonly recipient: MemberId | 'broadcast';
  readonly version: number;
  /** The recipient's incarnation as the sender knows it; 0: not known, or a broadcast. */
  readonly recipientIncarnation: number;
}

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

/** Reads the header of an encoded SignedMessage; the body and certificate chain are skipped, not checked. */
export function peekSignedHeader(bytes: Uint8Array): Decoded<SignedHeader> {
  try {
    if (bytes.length > LIMITS.maxSignedBytes) throw new WireError('limit', `signed message is ${bytes.length} bytes, more than ${LIMITS.maxSignedBytes}`);
    const r = protobuf.Reader.create(bytes);
    let cluster = '';
    let sender = '';
    let recipient = '';
    let incarnation = 0;
    let seq = 0;
    let sentAtMs = 0;
    let version = 0;
    let recipientIncarnation = 0;
    const uint64 = (field: string): number => {
      const v = r.uint64();
      // A Long when the long package is present (low and high 32 bits), else a number.
      const n = typeof v === 'number' ? v : ((v as unknown as { high: number }).high >>> 0) * 0x1_0000_0000 + ((v as unknown as { low: number }).low >>> 0);
      if (!Number.isSafeInteger(n) || n < 0 || n > LIMITS.maxUint64) throw new WireError('limit', `${field} is ${String(n)}, outside 0..${LIMITS.maxUint64}`);
      return n;
    };
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wireType = tag & 7;
      const expect = (t: number) => {
        if (wireType !== t) throw new WireError('decode', `signed message field ${field} has wire type ${wireType}, expected ${t}`);
      };
      switch (field) {
        case 1:
          expect(WIRE_LENGTH_DELIMITED);
          cluster = r.string();
          break;
        case 2:
          expect(WIRE_LENGTH_DELIMITED);
          sender = r.string();
          break;
        case 4:
          expect(WIRE_VARINT);
          incarnation = uint64('incarnation');
          break;
        case 5:
          expect(WIRE_VARINT);
          seq = uint64('seq');
          break;
        case 6:
          expect(WIRE_VARINT);
          sentAtMs = uint64('sentAtMs');
          break;
        case 8:
          expect(WIRE_LENGTH_DELIMITED);
          recipient = r.string();
          break;
        case 9:
          expect(WIRE_VARINT);
          version = r.uint32();
          break;
        case 10:
          expect(WIRE_VARINT);
          recipientIncarnation = uint64('recipientIncarnation');
          break;
        default:
          r.skipType(wireType);
      }
    }
    if (cluster.length > LIMITS.maxClusterNameChars) throw new WireError('limit', `cluster is ${cluster.length} characters, more than ${LIMITS.maxClusterNameChars}`);
    if (!isIpv4(sender)) throw new WireError('invalid', `sender "${sender}" is not a dotted-quad IPv4 member address`);
    if (recipient !== '' && !isIpv4(recipient)) throw new WireError('invalid', `recipient "${recipient}" is not a dotted-quad IPv4 member address`);
    return { ok: true, value: { cluster, sender, incarnation, seq, sentAtMs, recipient: recipient === '' ? 'broadcast' : recipient, version, recipientIncarnation } };
  } catch (e) {
    if (e instanceof WireError) return { ok: false, error: e };
    return { ok: false, error: new WireError('decode', `signed message does not decode: ${(e as Error).message}`) };
  }
}
