// Fast liveness on loopback addresses (127.0.0.2 and 127.0.0.3 share one port, as members do): two
// instances arm each other, a closed one is reported down once, not before its limit, and up again when
// a new incarnation speaks; forged, replayed, stale and malformed datagrams are counted and change nothing.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Liveness, livenessAvailable, sealLivenessDatagram, type LivenessEvent, LIVENESS_STATE } from '../../src/index.js';

const A = '127.0.0.2';
const B = '127.0.0.3';
const INTERVAL = 10;
const MIN_PERIODS = 3;

const open: Liveness[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const l of open.splice(0)) l.close();
  for (const s of sockets.splice(0)) s.close();
});

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function port(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

function member(address: string, p: number, incarnation: number, events: LivenessEvent[]): Liveness {
  const l = new Liveness({ address, port: p, intervalMs: INTERVAL, minPeriods: MIN_PERIODS, maxPeriods: 20, lossToleranceK: 9000, incarnation, onEvent: (e) => events.push(e) });
  open.push(l);
  return l;
}

/** A member A watching B, and a raw socket that sends as B: returns A's events, A and `send`. */
async function watchedByA(ab: Uint8Array, ba: Uint8Array): Promise<{ ea: LivenessEvent[]; a: Liveness; send: (buf: Uint8Array) => Promise<void> }> {
  const p = port();
  const ea: LivenessEvent[] = [];
  const a = member(A, p, 1000, ea);
  a.setPeers([{ address: B, txKey: ab, rxKey: ba }]);
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(p, B, () => r()));
  return { ea, a, send: (buf) => new Promise<void>((r, j) => s.send(buf, p, A, (e) => (e ? j(e) : r()))) };
}

describe.skipIf(!livenessAvailable())('fast liveness', () => {
  const ab = randomBytes(32);
  const ba = randomBytes(32);

  it('arms on heartbeats, reports a silent peer down once (not before its limit) and up when a new incarnation speaks', async () => {
    const p = port();
    const ea: LivenessEvent[] = [];
    const eb: LivenessEvent[] = [];
    const a = member(A, p, 1000, ea);
    let b = member(B, p, 2000, eb);
    a.setPeers([{ address: B, txKey: ab, rxKey: ba }]);
    b.setPeers([{ address: A, txKey: ba, rxKey: ab }]);
    await until('both armed', () => a.peers()[0]?.armed && b.peers()[0]?.armed);
    expect(ea.filter((e) => e.type === 'up')).toEqual([{ type: 'up', peer: B }]); // armed: heard for the first time
    expect(a.peers()[0]).toMatchObject({ address: B, down: false, intervalMs: INTERVAL, incarnation: 2000 });
    expect(a.stats()).toMatchObject({ badMac: 0, replay: 0, malformed: 0 });

    b.close();
    const down = await until('A reports B down', () => ea.find((e) => e.type === 'down'));
    expect(down).toMatchObject({ type: 'down', peer: B });
    if (down.type === 'down') {
      expect(down.periods).toBeGreaterThanOrEqual(MIN_PERIODS);
      expect(down.silentMs).toBeGreaterThan((down.periods + 0.5) * INTERVAL);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(ea.filter((e) => e.type === 'down')).toHaveLength(1); // once, not on every check

    // B restarts: a new incarnation is accepted and reported up.
    b = member(B, p, 3000, eb);
    b.setPeers([{ address: A, txKey: ba, rxKey: ab }]);
    await until('A reports B up', () => ea.slice(ea.indexOf(down)).find((e) => e.type === 'up'));
    expect(a.peers()[0]).toMatchObject({ armed: true, down: false, incarnation: 3000 });
  });

  it('a peer that leaves says so: it is disarmed, not reported down', async () => {
    const p = port();
    const ea: LivenessEvent[] = [];
    const a = member(A, p, 1000, ea);
    const b = member(B, p, 2000, []);
    a.setPeers([{ address: B, txKey: ab, rxKey: ba }]);
    b.setPeers([{ address: A, txKey: ba, rxKey: ab }]);
    await until('A armed', () => a.peers()[0]?.armed);
    b.close({ announceLeaving: true });
    await until('leaving seen', () => a.stats().leaving > 0);
    await new Promise((r) => setTimeout(r, 150));
    expect(ea.filter((e) => e.type === 'down')).toHaveLength(0);
    expect(a.peers()[0]!.armed).toBe(false);
  });

  it('counts forged, replayed, stale, misaddressed and malformed datagrams; none arms or keeps a peer alive', async () => {
    const { ea, a, send } = await watchedByA(ab, ba);
    const good = (seq: number, incarnation = 5000) => sealLivenessDatagram({ state: LIVENESS_STATE.up, intervalMs: INTERVAL, from: B, to: A, incarnation, seq, key: ba });

    await send(sealLivenessDatagram({ state: LIVENESS_STATE.up, intervalMs: INTERVAL, from: B, to: A, incarnation: 5000, seq: 1, key: randomBytes(32) }));
    await send(Buffer.alloc(64)); // no magic
    await send(good(1).subarray(0, 63)); // truncated
    await send(sealLivenessDatagram({ state: LIVENESS_STATE.up, intervalMs: INTERVAL, from: B, to: '127.0.0.9', incarnation: 5000, seq: 1, key: ba })); // for another member
    const tampered = Buffer.from(good(2));
    tampered[27] ^= 1; // the sequence number, under the MAC
    await send(tampered);
    await until('five refused', () => a.stats().received >= 5);
    expect(a.stats()).toMatchObject({ accepted: 0, badMac: 2, malformed: 2, wrongAddress: 1 });
    expect(a.peers()[0]!.armed).toBe(false);

    await send(good(10));
    await until('accepted', () => a.stats().accepted === 1);
    await send(good(10)); // replayed
    await send(good(9)); // older
    await send(good(50, 4000)); // an older incarnation
    await until('three replays', () => a.stats().replay === 3);
    expect(a.peers()[0]).toMatchObject({ armed: true, seq: 10, incarnation: 5000 });
    // Silence after the one good datagram: reported down although replays kept arriving.
    const down = await until('down', () => ea.find((e) => e.type === 'down'));
    expect(down).toMatchObject({ peer: B });
  });

  it('heartbeats that come late, not lost, raise the limit: at least twice the longest recent gap', async () => {
    const { ea, a, send: sendRaw } = await watchedByA(ab, ba);
    const send = (seq: number) => sendRaw(sealLivenessDatagram({ state: LIVENESS_STATE.up, intervalMs: INTERVAL, from: B, to: A, incarnation: 7000, seq, key: ba }));
    const base = (MIN_PERIODS + 0.5) * INTERVAL;
    await send(1);
    await until('armed', () => a.peers()[0]?.armed);
    expect(a.peers()[0]!.limitMs).toBe(base); // no gap seen yet: the loss rule alone
    // Every heartbeat arrives, each at least 25 ms after the last (2.5 intervals: late, none lost).
    const GAP = 25;
    for (let seq = 2; seq <= 4; seq++) {
      await new Promise((r) => setTimeout(r, GAP));
      await send(seq);
    }
    await until('heard', () => a.peers()[0]?.seq === 4);
    const peer = a.peers()[0]!;
    expect(peer.loss).toBe(0);
    expect(peer.gapMaxMs).toBeGreaterThanOrEqual(GAP - 2);
    expect(peer.limitMs).toBeGreaterThanOrEqual(Math.max(base, 2 * peer.gapMaxMs) - 1);
    // Silence now: reported down, but only after twice the longest gap (more than the loss rule's limit).
    const down = await until('down', () => ea.find((e) => e.type === 'down'));
    if (down.type === 'down') expect(down.silentMs).toBeGreaterThan(2 * (GAP - 2) * 0.99);
  });

  it('refuses bad options and bad peers with clear errors', () => {
    expect(() => new Liveness({ address: 'x', port: 0, intervalMs: 10, minPeriods: 3, maxPeriods: 20, lossToleranceK: 9000, incarnation: 1, onEvent: () => {} })).toThrow(/address must be an IPv4 address/);
    expect(() => new Liveness({ address: A, port: 0, intervalMs: 0, minPeriods: 3, maxPeriods: 20, lossToleranceK: 9000, incarnation: 1, onEvent: () => {} })).toThrow(/intervalMs/);
    const a = member(A, 0, 1, []);
    expect(() => a.setPeers([{ address: B, txKey: new Uint8Array(31), rxKey: ba }])).toThrow(/txKey must be 32 bytes/);
    expect(() => a.setPeers([{ address: B, txKey: ab, rxKey: ba }, { address: B, txKey: ab, rxKey: ba }])).toThrow(/given twice/);
    a.close();
    expect(() => a.stats()).toThrow(/closed/);
  });
});
