// The TypeScript record layout (src/sessions/record-layout.ts) against the C++ encoder and decoder
// (session.cc encodeRecord/decodeRecord/encodeKey): records the native table wrote decode and
// re-encode to the same bytes, records encoded in TypeScript install natively and come back unchanged,
// and the key computed from a record removes the session.
import { describe, expect, it } from 'vitest';
import {
  decodeSessionRecord,
  encodeSessionRecord,
  sessionRecordKey,
  sessionRecordVersion,
  SESSION_KEY_FIELDS,
  SESSION_KEY_SIZE,
  SESSION_RECORD_FIELDS,
  SESSION_RECORD_SIZE,
  SessionTable,
} from '../../src/index.js';
import { ipv4, ipv6, tcpSeg, udp } from '../packets.js';

const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;
const NOW = 1_700_000_000_123;

/** A table holding a TCP session with every option (IPv4 and IPv6) and a replied UDP flow. */
function tableWithSessions(): SessionTable {
  const t = new SessionTable({ maxSessions: 100 });
  const flows: [4 | 6, string, string][] = [
    [4, '198.51.100.20', '192.0.2.1'],
    [6, '2001:db8:0:1::20', '2001:db8::1'],
  ];
  for (const [v, client, server] of flows) {
    const wrap = (fromClient: boolean, seg: Uint8Array) => {
      const [src, dst] = fromClient ? [client, server] : [server, client];
      return v === 4 ? ipv4({ src, dst, proto: 6, payload: seg }) : ipv6({ src, dst, nextHeader: 6, payload: seg });
    };
    const track = (p: Uint8Array) => expect(t.trackPacket(p, NOW).verdict).toBe('ACCEPT');
    track(wrap(true, tcpSeg({ sport: 40000, dport: 80, seq: 1000, flags: SYN, mss: 1460, sack: true, ts: [111, 0], wscale: 7, win: 64240 })));
    track(wrap(false, tcpSeg({ sport: 80, dport: 40000, seq: 5000, ack: 1001, flags: SYN | ACK, mss: 1400, sack: true, ts: [222, 111], wscale: 9, win: 65160 })));
    track(wrap(true, tcpSeg({ sport: 40000, dport: 80, seq: 1001, ack: 5001, flags: ACK, win: 502, ts: [112, 222] })));
    track(wrap(true, tcpSeg({ sport: 40000, dport: 80, seq: 1001, ack: 5001, flags: ACK | PSH, win: 502, ts: [113, 222], payload: 300 })));
    track(wrap(false, tcpSeg({ sport: 80, dport: 40000, seq: 5001, ack: 1301, flags: ACK | PSH, win: 509, ts: [223, 113], payload: 700 })));
  }
  const u = (src: string, dst: string, sport: number, dport: number) => ipv4({ src, dst, proto: 17, payload: udp({ sport, dport, payload: new Uint8Array(20) }) });
  t.trackPacket(u('198.51.100.30', '192.0.2.1', 5353, 53), NOW);
  t.trackPacket(u('192.0.2.1', '198.51.100.30', 53, 5353), NOW);
  return t;
}

const ALL_UNITS = Array.from({ length: 1024 }, (_, i) => i);

describe('session record layout', () => {
  it('fits the record and key sizes, field by field without overlap', () => {
    for (const [fields, size] of [
      [SESSION_RECORD_FIELDS, SESSION_RECORD_SIZE],
      [SESSION_KEY_FIELDS, SESSION_KEY_SIZE],
    ] as const) {
      const used = new Uint8Array(size);
      for (const [name, f] of Object.entries(fields)) {
        for (let i = f.offset; i < f.offset + f.size; i++) {
          expect(i, name).toBeLessThan(size);
          expect(used[i], `${name} overlaps at byte ${i}`).toBe(0);
          used[i] = 1;
        }
      }
    }
    expect(Object.values(SESSION_RECORD_FIELDS).reduce((n, f) => n + f.size, 0)).toBe(SESSION_RECORD_SIZE);
  });

  it('decodes and re-encodes the native records to the same bytes', () => {
    const records = tableWithSessions().sessionsForUnits(ALL_UNITS);
    expect(records.length).toBe(3);
    const tcp = records.map(decodeSessionRecord).filter((r) => r.proto === 6);
    expect(tcp.map((r) => r.family).sort()).toEqual([4, 6]);
    for (const r of tcp) {
      expect(r.tcp?.flags).toMatchObject({ reqScale: true, rcvdScale: true, reqTstmp: true, rcvdTstmp: true, sackPermit: true, noOptions: false });
      expect(r.tcp?.mssOriginator).toBe(1460);
      expect(r.tcp?.sndNxt).toBe(1301);
      expect(r.tcp?.rcvNxt).toBe(5701);
    }
    for (const bytes of records) expect(Buffer.from(encodeSessionRecord(decodeSessionRecord(bytes)))).toEqual(Buffer.from(bytes));
  });

  it('encodes records the native table installs and gives back unchanged', () => {
    const source = tableWithSessions().sessionsForUnits(ALL_UNITS).map(decodeSessionRecord);
    const target = new SessionTable({ maxSessions: 100 });
    for (const rec of source) {
      // Moved fields (every TCP number and the version) must land where the C++ decoder reads them.
      const changed = { ...rec, version: rec.version + 7 };
      if (changed.tcp) changed.tcp = { ...changed.tcp, sndNxt: changed.tcp.sndNxt + 10, maxWinResponder: 123_456, tsRecent: 999 };
      const bytes = encodeSessionRecord(changed);
      expect(sessionRecordVersion(bytes)).toBe(rec.version + 7);
      expect(target.install([bytes], rec.lastSeenMs)).toMatchObject({ installed: 1, invalid: 0 });
      const [back] = target.sessionsForUnits([rec.unit]).filter((b) => Buffer.compare(sessionRecordKey(b), sessionRecordKey(bytes)) === 0);
      expect(back && decodeSessionRecord(back)).toEqual(changed);
    }
  });

  it('computes the key the native table removes by', () => {
    const t = tableWithSessions();
    const records = t.sessionsForUnits(ALL_UNITS);
    for (const r of records) expect(t.remove([sessionRecordKey(r)])).toBe(1);
    expect(t.size).toBe(0);
  });

  it('matches the key of a locally removed session in collectChanges', () => {
    const t = new SessionTable({ maxSessions: 10, timeouts: { udpUnreplied: 1 } });
    t.trackPacket(ipv4({ src: '198.51.100.30', dst: '192.0.2.1', proto: 17, payload: udp({ sport: 5353, dport: 53 }) }), NOW);
    const [record] = t.collectChanges(10, NOW, { lazy: true }).records;
    expect(record).toBeDefined();
    t.expire(NOW + 10);
    const { removed } = t.collectChanges(10, NOW + 10, { lazy: true });
    expect(removed.map((k) => Buffer.from(k))).toEqual([Buffer.from(sessionRecordKey(record!))]);
  });

  it('names the field that does not fit', () => {
    const [bytes] = tableWithSessions().sessionsForUnits(ALL_UNITS);
    const rec = decodeSessionRecord(bytes!);
    expect(() => encodeSessionRecord({ ...rec, unit: 70000 })).toThrow(/encodeSessionRecord: record\.unit must be an integer 0\.\.65535/);
    expect(() => encodeSessionRecord({ ...rec, originator: { addr: 'nope', port: 1 } })).toThrow(/encodeSessionRecord: record\.originator\.addr/);
  });
});
