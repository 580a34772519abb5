// Which StateSyncs carry this member's certificate (sync/replication.ts): until the peer acknowledged one
// of ours, and again after the peer's certificate probe (an empty StateAck: it holds no certificate of ours).
import { describe, expect, it } from 'vitest';
import type { StateAck, StateSync } from '@gwcluster/wire';
import { SessionReplication } from '../../src/sync/replication.js';

const [A, B] = ['192.0.2.1', '192.0.2.2'];

describe('SessionReplication certificate carrying', () => {
  it('carries the certificate until acknowledged, and again after a probe', () => {
    const sent: { m: StateSync | StateAck; cert: boolean }[] = [];
    const rep = new SessionReplication(
      { self: A, sync: true, maxBytesPerSecond: 1_000_000 },
      { recordsOf: () => [], install: () => {} },
      { send: (_to, m, o) => sent.push({ m, cert: o.includeCertificate }), ready: () => {}, handoverDone: () => {}, ownedUnits: () => [], failed: (_e, err) => { throw err; } },
    );
    rep.setPeers(0, [B]);
    let now = 0;
    const change = (v: number) => {
      rep.localChanges(now, [{ key: new Uint8Array([1, 2, 3]), version: v, state: new Uint8Array(112).fill(v), removed: false }]);
      rep.tick((now += 10));
      return sent.filter((s) => s.m.type === 'state-sync').at(-1)!;
    };
    const first = change(1);
    expect(first.cert).toBe(true);
    rep.message(now, B, { type: 'state-ack', seqs: [(first.m as StateSync).seq] });
    expect(change(2).cert).toBe(false);
    rep.message(now, B, { type: 'state-ack', seqs: [] }); // B's probe: it does not hold our certificate
    expect(change(3).cert).toBe(true);
    rep.message(now, B, { type: 'state-ack', seqs: [0] }); // a probe's answer: B just received ours
    expect(change(4).cert).toBe(false);
  });
});
