// Two writers of one connection (a partition or a flapping link: two members tracked it at once, each
// counting its own versions): installing one copy over the other never moves the connection back in its
// window, whatever the versions say; the table keeps the furthest of both, field by field. With one
// writer the highest version still wins, and a new connection on the same addresses and ports replaces
// the old one by version.
import { describe, expect, it } from 'vitest';
import { decodeSessionRecord, encodeSessionRecord, SessionTable } from '../../src/index.js';
import { ipv4, tcpSeg } from '../packets.js';

const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;
const NOW = 1_700_000_000_000;
const C = '198.51.100.30';
const S = '192.0.2.100';

const seg = (fromClient: boolean, seq: number, ack: number, flags: number, payload = 0) =>
  ipv4({ src: fromClient ? C : S, dst: fromClient ? S : C, proto: 6, payload: tcpSeg({ sport: fromClient ? 40000 : 7000, dport: fromClient ? 7000 : 40000, seq, ack, flags, win: 65535, payload }) });

/** A strict table that saw the handshake and `rounds` exchanges of 100 bytes each way. */
function tracked(rounds: number): SessionTable {
  const t = new SessionTable({ maxSessions: 10 });
  const ok = (p: Uint8Array) => expect(t.trackPacket(p, NOW).verdict).toBe('ACCEPT');
  ok(seg(true, 1000, 0, SYN));
  ok(seg(false, 5000, 1001, SYN | ACK));
  ok(seg(true, 1001, 5001, ACK));
  for (let i = 0; i < rounds; i++) {
    ok(seg(true, 1001 + i * 100, 5001 + i * 100, ACK | PSH, 100));
    ok(seg(false, 5001 + i * 100, 1101 + i * 100, ACK | PSH, 100));
  }
  return t;
}

const recordOf = (t: SessionTable) => {
  const all = t.sessionsForUnits(Array.from({ length: 1024 }, (_, i) => i));
  expect(all).toHaveLength(1);
  return new Uint8Array(all[0]!);
};

describe('installing a copy of a connection another member tracked at the same time', () => {
  it('a copy that saw less but counted a higher version does not move the connection back', () => {
    const ahead = tracked(20);
    const behind = decodeSessionRecord(recordOf(tracked(2)));
    const before = decodeSessionRecord(recordOf(ahead));
    const inflated = encodeSessionRecord({ ...behind, version: before.version + 1000 });
    ahead.install([inflated], NOW);
    const after = decodeSessionRecord(recordOf(ahead));
    expect(after.tcp!.sndNxt).toBe(before.tcp!.sndNxt);
    expect(after.tcp!.rcvNxt).toBe(before.tcp!.rcvNxt);
    expect(after.version).toBe(before.version + 1000);
    // The next segments of the connection, from where it really is, are accepted.
    expect(ahead.trackPacket(seg(true, 1001 + 20 * 100, 5001 + 20 * 100, ACK | PSH, 100), NOW).verdict).toBe('ACCEPT');
    expect(ahead.trackPacket(seg(false, 5001 + 20 * 100, 1101 + 20 * 100, ACK | PSH, 100), NOW).verdict).toBe('ACCEPT');
  });

  it('a copy that saw more but counted a lower version moves the connection forward', () => {
    const behind = tracked(2);
    const aheadRec = decodeSessionRecord(recordOf(tracked(20)));
    const held = decodeSessionRecord(recordOf(behind));
    const out = behind.install([encodeSessionRecord({ ...aheadRec, version: 1 })], NOW);
    expect(out.updated).toBe(1);
    const after = decodeSessionRecord(recordOf(behind));
    expect(after.tcp!.sndNxt).toBe(aheadRec.tcp!.sndNxt);
    expect(after.version).toBe(held.version);
    expect(behind.trackPacket(seg(true, 1001 + 20 * 100, 5001 + 20 * 100, ACK | PSH, 100), NOW).verdict).toBe('ACCEPT');
  });

  it('one writer: an older copy is stale, a newer one replaces', () => {
    const t = tracked(5);
    const older = recordOf(tracked(3));
    const held = decodeSessionRecord(recordOf(t));
    expect(t.install([encodeSessionRecord({ ...decodeSessionRecord(older), version: 1 })], NOW).stale).toBe(1);
    expect(decodeSessionRecord(recordOf(t)).tcp!.sndNxt).toBe(held.tcp!.sndNxt);
    const newer = decodeSessionRecord(recordOf(tracked(8)));
    expect(t.install([encodeSessionRecord({ ...newer, version: held.version + 1 })], NOW).updated).toBe(1);
    expect(decodeSessionRecord(recordOf(t)).tcp!.sndNxt).toBe(newer.tcp!.sndNxt);
  });

  it('a new connection on the same addresses and ports (handshake state) replaces by version, no merge', () => {
    const t = tracked(5);
    const fresh = new SessionTable({ maxSessions: 10 });
    fresh.trackPacket(seg(true, 900_000_000, 0, SYN), NOW);
    const syn = decodeSessionRecord(recordOf(fresh));
    const held = decodeSessionRecord(recordOf(t));
    expect(t.install([encodeSessionRecord({ ...syn, version: held.version + 1 })], NOW).updated).toBe(1);
    const after = decodeSessionRecord(recordOf(t));
    expect(after.state).toBe(syn.state);
    expect(after.tcp!.sndNxt).toBe(syn.tcp!.sndNxt);
  });
});
