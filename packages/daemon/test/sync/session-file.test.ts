// The session table on disk (src/sync/session-file.ts): a member's daemon saves its table at stop and
// restores it at start, so a strict member accepts the next mid-stream segment of a connection it tracked
// before the restart; a bad file of any kind restores nothing, says why and never throws.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SESSION_RECORD_SIZE } from '@gwcluster/native-addon';
import { SessionSync } from '../../src/sync/session-sync.js';
import { SESSION_FILE_HEADER, SESSION_FILE_MAX_AGE_MS, decodeSessionFile, encodeSessionFile, readSessionFile } from '../../src/sync/session-file.js';

const NOW = 1_700_000_000_000;
const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;

function ip4(a: string): number[] {
  return a.split('.').map(Number);
}

/** An IPv4 TCP segment (no options): enough for the session table, which does not check checksums. */
function tcp(src: string, dst: string, sport: number, dport: number, seq: number, ack: number, flags: number, payload = 0): Uint8Array {
  const p = new Uint8Array(40 + payload);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 6;
  p.set(ip4(src), 12);
  p.set(ip4(dst), 16);
  dv.setUint16(20, sport);
  dv.setUint16(22, dport);
  dv.setUint32(24, seq >>> 0);
  dv.setUint32(28, ack >>> 0);
  p[32] = 5 << 4;
  p[33] = flags;
  dv.setUint16(34, 65535);
  return p;
}

const C = '198.51.100.30';
const S = '192.0.2.100';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function member(stateFile: string, clock: () => number): SessionSync {
  return new SessionSync({
    self: '192.0.2.11',
    config: { mode: 'strict', sync: false, maxSessions: 1000, maxBytesPerSecond: 1_000_000, stateFile, saveEveryMs: 0 },
    logger: pino({ level: 'silent' }),
    send: () => {},
    onReady: () => {},
    onHandoverDone: () => {},
    ownedUnits: () => [],
    ownerOf: () => '',
    clock,
  });
}

describe('session table saved and restored across a daemon restart', () => {
  it('a restarted strict member accepts the next mid-stream segment of a connection tracked before', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gwc-sessions-'));
    dirs.push(dir);
    const file = join(dir, 'sessions.state');
    let now = NOW;
    const before = member(file, () => now);
    before.start();
    const t = before.table;
    expect(t.trackPacket(tcp(C, S, 40000, 7000, 1000, 0, SYN), now).verdict).toBe('ACCEPT');
    expect(t.trackPacket(tcp(S, C, 7000, 40000, 5000, 1001, SYN | ACK), now).verdict).toBe('ACCEPT');
    expect(t.trackPacket(tcp(C, S, 40000, 7000, 1001, 5001, ACK | PSH, 100), now).verdict).toBe('ACCEPT');
    expect(t.trackPacket(tcp(S, C, 7000, 40000, 5001, 1101, ACK | PSH, 100), now).verdict).toBe('ACCEPT');
    before.stop();
    expect(before.counters.saves).toBe(1);
    expect(readFileSync(file).length).toBe(SESSION_FILE_HEADER + SESSION_RECORD_SIZE);

    now += 3000;
    const midStream = tcp(C, S, 40000, 7000, 1101, 5101, ACK | PSH, 100);
    // Without the file, a strict table drops the segment: it knows no such session.
    const fresh = member(join(dir, 'other.state'), () => now);
    fresh.start();
    expect(fresh.table.trackPacket(midStream, now)).toMatchObject({ verdict: 'DROP', reason: 'no-session' });
    fresh.stop();

    const after = member(file, () => now);
    after.start();
    expect(after.counters.restored).toBe(1);
    expect(after.table.trackPacket(midStream, now).verdict).toBe('ACCEPT');
    expect(after.table.trackPacket(tcp(S, C, 7000, 40000, 5101, 1201, ACK | PSH, 100), now).verdict).toBe('ACCEPT');
    after.stop();
  });

  it('encodes and decodes records unchanged', () => {
    const records = [new Uint8Array(SESSION_RECORD_SIZE).fill(7), new Uint8Array(SESSION_RECORD_SIZE).fill(9)];
    const d = decodeSessionFile(encodeSessionFile(records, NOW), NOW + 1000);
    expect(d.ok).toBe(true);
    if (d.ok) {
      expect(d.count).toBe(2);
      expect(Buffer.from(d.records)).toEqual(Buffer.concat(records));
    }
  });

  it('restores nothing from a bad file and says why, without throwing', () => {
    const good = encodeSessionFile([new Uint8Array(SESSION_RECORD_SIZE).fill(1)], NOW);
    const mutate = (f: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      f(b);
      return b;
    };
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', new Uint8Array(0), /shorter/],
      ['foreign', Buffer.from('{"member":{}}'.padEnd(200, ' ')), /magic/],
      ['newer format', mutate((b) => b.writeUInt8(2, 4)), /format 2/],
      ['other record size', mutate((b) => b.writeUInt16LE(SESSION_RECORD_SIZE + 8, 6)), /records of/],
      ['truncated', good.subarray(0, good.length - 1), /truncated/],
      ['corrupt', mutate((b) => (b[SESSION_FILE_HEADER + 5] ^= 0xff)), /checksum/],
      ['too old', encodeSessionFile([], NOW - SESSION_FILE_MAX_AGE_MS - 1), /older than/],
    ];
    for (const [what, bytes, reason] of cases) {
      const d = decodeSessionFile(bytes, NOW);
      expect(d.ok, what).toBe(false);
      if (!d.ok) expect(d.reason, what).toMatch(reason);
    }
    // Random bytes: never a throw, never a restore.
    let seed = 12345;
    for (let i = 0; i < 500; i++) {
      const b = new Uint8Array((seed = (seed * 1103515245 + 12345) >>> 0) % 400);
      for (let j = 0; j < b.length; j++) b[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      if (i % 2 === 0 && b.length >= 4) b.set(Buffer.from('GWSS'));
      expect(decodeSessionFile(b, NOW).ok).toBe(false);
    }
  });

  it('a member with a corrupt or unreadable file starts with an empty table', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gwc-sessions-'));
    dirs.push(dir);
    const file = join(dir, 'sessions.state');
    expect(readSessionFile(file, NOW)).toEqual({ ok: false, reason: 'none' });
    writeFileSync(file, 'not a snapshot');
    const m = member(file, () => NOW);
    m.start();
    expect(m.table.size).toBe(0);
    expect(m.counters.restored).toBe(0);
    m.stop();
    // The next stop writes a good snapshot over it.
    expect(readSessionFile(file, NOW).ok).toBe(true);
  });
});
