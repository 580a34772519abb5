// Vectors from the real thing: an initiation wireguard-go sent, with static keys and public keys from `wg`.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { macKeys, mac1Valid } from '../../src/tunnels/cookie.js';
import { parseMessage } from '../../src/tunnels/messages.js';
import { consumeInitiation, createResponse, staticKeys } from '../../src/tunnels/noise.js';
import { publicKeyOf } from '../../src/tunnels/primitives.js';

const f = JSON.parse(readFileSync(new URL('./fixtures/wireguard-go-initiation.json', import.meta.url), 'utf8')) as Record<string, string>;
const b64 = (s: string | undefined) => Buffer.from(s!, 'base64');

describe('wireguard-go vectors', () => {
  it('public keys match `wg pubkey`', () => {
    expect(publicKeyOf(b64(f.responderPrivateKey)).toString('base64')).toBe(f.responderPublicKey);
    expect(publicKeyOf(b64(f.initiatorPrivateKey)).toString('base64')).toBe(f.initiatorPublicKey);
  });

  it('a captured initiation has a valid MAC1, decrypts to the initiator\'s static key and a TAI64N timestamp', () => {
    const bytes = Buffer.from(f.initiation!, 'hex');
    const parsed = parseMessage(bytes);
    expect(parsed.ok && parsed.message.type).toBe('initiation');
    if (!parsed.ok || parsed.message.type !== 'initiation') return;
    const local = staticKeys(b64(f.responderPrivateKey));
    expect(mac1Valid(bytes, macKeys(local.publicKey))).toBe(true);
    const consumed = consumeInitiation(local, parsed.message);
    expect(consumed?.peerPublicKey.toString('base64')).toBe(f.initiatorPublicKey);
    const seconds = consumed!.timestamp.readBigUInt64BE(0) - 2n ** 62n;
    expect(seconds > 1_700_000_000n && seconds < 2_500_000_000n).toBe(true);
    // Another responder key does not decrypt it.
    expect(consumeInitiation(staticKeys(b64(f.initiatorPrivateKey)), parsed.message)).toBeNull();
    // The response is well formed.
    const resp = createResponse(consumed!, undefined, Buffer.alloc(32, 9), 1234);
    expect(resp?.message).toHaveLength(92);
    expect(resp!.message.readUInt32LE(8)).toBe(parsed.message.sender);
  });
});
