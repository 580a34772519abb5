import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT } from '../../src/tunnels/constants.js';
import { parseMessage } from '../../src/tunnels/messages.js';
import { aeadOpen, aeadSeal, clampPrivateKey, publicKeyOf } from '../../src/tunnels/primitives.js';
import { TunnelCore } from '../../src/tunnels/tunnel-core.js';
import type { DataPathKeypair, Endpoint, TunnelEffect } from '../../src/tunnels/tunnel-core.js';

/** A deterministic random source: SHA-256 in counter mode over a seed. */
function seeded(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = Buffer.alloc(n);
    for (let off = 0; off < n; off += 32) {
      createHash('sha256').update(`${seed}/${counter++}`).digest().copy(out, off);
    }
    return out;
  };
}

const keyOf = (seed: string) => clampPrivateKey(createHash('sha256').update(seed).digest());
const server = keyOf('server');
const client = keyOf('client');
const SERVER_EP: Endpoint = { address: '192.0.2.1', port: 51820 };
const CLIENT_EP: Endpoint = { address: '198.51.100.7', port: 40000 };

function pair(opts: { psk?: Uint8Array; underLoadPerSecond?: number } = {}) {
  const responder = new TunnelCore({ privateKey: server, random: seeded('r'), underLoadPerSecond: opts.underLoadPerSecond,
    peers: [{ publicKey: publicKeyOf(client), presharedKey: opts.psk }] });
  const initiator = new TunnelCore({ privateKey: client, random: seeded('i'),
    peers: [{ publicKey: publicKeyOf(server), presharedKey: opts.psk, endpoint: SERVER_EP }] });
  return { responder, initiator };
}

const sends = (fx: TunnelEffect[]) => fx.filter((e): e is Extract<TunnelEffect, { kind: 'send' }> => e.kind === 'send');
const keypairsOf = (fx: TunnelEffect[]) => fx.filter((e): e is Extract<TunnelEffect, { kind: 'keypairs' }> => e.kind === 'keypairs').at(-1)?.keypairs ?? [];
const drops = (fx: TunnelEffect[]) => fx.filter((e) => e.kind === 'drop').map((e) => (e as { reason: string }).reason);

/** Runs one handshake; returns both sides' keypairs. */
function handshake(responder: TunnelCore, initiator: TunnelCore, now = 1000) {
  const init = sends(initiator.step({ kind: 'need-keypair', peer: 0 }, now));
  expect(init).toHaveLength(1);
  const rfx = responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: init[0]!.bytes }, now);
  const resp = sends(rfx);
  expect(resp).toHaveLength(1);
  const ifx = initiator.step({ kind: 'datagram', from: SERVER_EP, bytes: resp[0]!.bytes }, now);
  return { rKeys: keypairsOf(rfx), iKeys: keypairsOf(ifx), rfx, ifx, initiation: init[0]!.bytes };
}

/** A transport message the way the data path builds it (the reference for the addon's tests). */
function seal(kp: DataPathKeypair, counter: bigint, plaintext: Uint8Array): Buffer {
  const h = Buffer.alloc(16);
  h[0] = 4; h.writeUInt32LE(kp.remoteIndex, 4); h.writeBigUInt64LE(counter, 8);
  return Buffer.concat([h, aeadSeal(kp.sendKey, counter, plaintext, new Uint8Array(0))]);
}

describe('TunnelCore handshake', () => {
  it('initiator and responder derive matching keypairs; the responder sends only after confirmation', () => {
    const { responder, initiator } = pair();
    const { rKeys, iKeys, ifx } = handshake(responder, initiator);
    expect(iKeys).toHaveLength(1);
    expect(rKeys).toHaveLength(1);
    const [i] = iKeys; const [r] = rKeys;
    expect(Buffer.from(i!.sendKey).equals(Buffer.from(r!.receiveKey))).toBe(true);
    expect(Buffer.from(i!.receiveKey).equals(Buffer.from(r!.sendKey))).toBe(true);
    expect(i!.remoteIndex).toBe(r!.localIndex);
    expect(r!.remoteIndex).toBe(i!.localIndex);
    expect(i!.canSend).toBe(true);
    expect(r!.canSend).toBe(false);
    expect(ifx.some((e) => e.kind === 'keepalive')).toBe(true);
    // A transport message from the initiator decrypts with the responder's key and confirms the keypair.
    const msg = parseMessage(seal(i!, 0n, new Uint8Array(0)));
    expect(msg.ok && msg.message.type === 'transport' && aeadOpen(r!.receiveKey, 0n, msg.message.sealed, new Uint8Array(0))).toBeTruthy();
    const confirm = responder.step({ kind: 'transport-activity', localIndex: r!.localIndex, from: CLIENT_EP, received: 1, receivedData: 0, sent: 0, sentData: 0, sendCounter: 0n }, 1001);
    expect(keypairsOf(confirm)[0]!.canSend).toBe(true);
    expect(responder.status()[0]!.endpoint).toEqual(CLIENT_EP);
  });

  it('a preshared key must match on both sides', () => {
    const psk = new Uint8Array(32).fill(7);
    const ok = pair({ psk });
    expect(handshake(ok.responder, ok.initiator).iKeys).toHaveLength(1);
    const responder = new TunnelCore({ privateKey: server, random: seeded('r'), peers: [{ publicKey: publicKeyOf(client), presharedKey: psk }] });
    const initiator = new TunnelCore({ privateKey: client, random: seeded('i'), peers: [{ publicKey: publicKeyOf(server), endpoint: SERVER_EP }] });
    const init = sends(initiator.step({ kind: 'need-keypair', peer: 0 }, 0));
    const resp = sends(responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: init[0]!.bytes }, 0));
    expect(drops(initiator.step({ kind: 'datagram', from: SERVER_EP, bytes: resp[0]!.bytes }, 0))).toEqual(['handshake-failed']);
  });

  it('drops bad MAC1, malformed, replayed and unknown-peer initiations, each with its reason', () => {
    const { responder, initiator } = pair();
    const { initiation } = handshake(responder, initiator);
    expect(drops(responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: initiation }, 2000))).toEqual(['replayed-timestamp']);
    const forged = Buffer.from(initiation); forged[120]! ^= 1;
    expect(drops(responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: forged }, 2000))).toEqual(['bad-mac1']);
    expect(drops(responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: Buffer.from('garbage') }, 2000))).toEqual(['malformed']);
    expect(drops(responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: initiation.subarray(0, 100) }, 2000))).toEqual(['malformed']);
    const stranger = new TunnelCore({ privateKey: keyOf('stranger'), random: seeded('s'), peers: [{ publicKey: publicKeyOf(server), endpoint: SERVER_EP }] });
    const init = sends(stranger.step({ kind: 'need-keypair', peer: 0 }, 0));
    expect(drops(responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: init[0]!.bytes }, 3000))).toEqual(['unknown-peer']);
  });

  it('under load answers a cookie reply; the retry carries MAC2 and completes', () => {
    const { responder, initiator } = pair({ underLoadPerSecond: 0 });
    const init = sends(initiator.step({ kind: 'need-keypair', peer: 0 }, 0));
    const cookieFx = responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: init[0]!.bytes }, 0);
    expect(drops(cookieFx)).toEqual(['cookie-sent']);
    const reply = sends(cookieFx)[0]!.bytes;
    expect(reply).toHaveLength(64);
    expect(reply[0]).toBe(3);
    expect(initiator.step({ kind: 'datagram', from: SERVER_EP, bytes: reply }, 10)).toEqual([]);
    // The retry after REKEY_TIMEOUT carries MAC2; from another address the cookie does not verify.
    const retry = sends(initiator.step({ kind: 'tick' }, REKEY_TIMEOUT + 400, REKEY_TIMEOUT + 400));
    expect(retry).toHaveLength(1);
    expect(Buffer.from(retry[0]!.bytes.subarray(132)).equals(Buffer.alloc(16))).toBe(false);
    expect(drops(responder.step({ kind: 'datagram', from: { ...CLIENT_EP, port: 40001 }, bytes: retry[0]!.bytes }, 5500))).toEqual(['cookie-sent']);
    const ok = responder.step({ kind: 'datagram', from: CLIENT_EP, bytes: retry[0]!.bytes }, 5500);
    expect(keypairsOf(ok)).toHaveLength(1);
  });
});

describe('TunnelCore timers', () => {
  it('retries an unanswered initiation every REKEY_TIMEOUT (+ jitter) and gives up after REKEY_ATTEMPT_TIME', () => {
    const { initiator } = pair();
    initiator.step({ kind: 'need-keypair', peer: 0 }, 0);
    let sent = 0;
    for (let t = 0; t <= REKEY_ATTEMPT_TIME + 10_000; t += 100) sent += sends(initiator.step({ kind: 'tick' }, t)).length;
    expect(sent).toBeGreaterThanOrEqual(Math.floor(REKEY_ATTEMPT_TIME / (REKEY_TIMEOUT + 333)) - 1);
    expect(sent).toBeLessThanOrEqual(Math.ceil(REKEY_ATTEMPT_TIME / REKEY_TIMEOUT));
  });

  it('sends a passive keepalive KEEPALIVE_TIMEOUT after data received with nothing sent', () => {
    const { responder, initiator } = pair();
    const { rKeys } = handshake(responder, initiator, 0);
    const idx = rKeys[0]!.localIndex;
    responder.step({ kind: 'transport-activity', localIndex: idx, from: CLIENT_EP, received: 1, receivedData: 1, sent: 0, sentData: 0, sendCounter: 0n }, 100);
    expect(responder.step({ kind: 'tick' }, 100 + KEEPALIVE_TIMEOUT - 1).filter((e) => e.kind === 'keepalive')).toHaveLength(0);
    expect(responder.step({ kind: 'tick' }, 100 + KEEPALIVE_TIMEOUT).filter((e) => e.kind === 'keepalive')).toHaveLength(1);
    expect(responder.step({ kind: 'tick' }, 100 + 2 * KEEPALIVE_TIMEOUT).filter((e) => e.kind === 'keepalive')).toHaveLength(0);
  });

  it('expires keypairs after REJECT_AFTER_TIME; the initiator rekeys on receive before that', () => {
    const { responder, initiator } = pair();
    const { rKeys, iKeys } = handshake(responder, initiator, 0);
    responder.step({ kind: 'transport-activity', localIndex: rKeys[0]!.localIndex, from: CLIENT_EP, received: 1, receivedData: 0, sent: 0, sentData: 0, sendCounter: 0n }, 1);
    const late = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;
    const fx = initiator.step({ kind: 'transport-activity', localIndex: iKeys[0]!.localIndex, from: SERVER_EP, received: 1, receivedData: 1, sent: 0, sentData: 0, sendCounter: 1n }, late);
    expect(sends(fx)).toHaveLength(1);
    expect(parseMessage(sends(fx)[0]!.bytes).ok).toBe(true);
    const expired = responder.step({ kind: 'tick' }, REJECT_AFTER_TIME);
    expect(expired.some((e) => e.kind === 'keypairs' && e.keypairs.length === 0)).toBe(true);
  });
});
