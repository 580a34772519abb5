// The session table (src/sessions/ through src/sessions/sessions.ts): TCP tracking from synthetic
// packets, the window rule, records, replication with coalescing, replicas and failover, expiry,
// bounds and malformed input.
import { describe, expect, it } from 'vitest';
import {
  decodeSessionRecord,
  SESSION_KEY_SIZE,
  SESSION_RECORD_SIZE,
  SessionTable,
  type SessionTableOptions,
} from '../../src/index.js';
import { ipv4, ipv6, tcpSeg, udp, type Seg } from '../packets.js';

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

/** A TCP connection between a client and a server, both directions, with sequence bookkeeping. */
class Conn {
  cseq: number;
  sseq: number;
  constructor(
    readonly v: 4 | 6,
    readonly client: string,
    readonly server: string,
    readonly cport = 40000,
    readonly sport = 80,
    cisn = 1000,
    sisn = 5000,
  ) {
    this.cseq = cisn;
    this.sseq = sisn;
  }
  wrap(fromClient: boolean, seg: Uint8Array): Uint8Array {
    const src = fromClient ? this.client : this.server;
    const dst = fromClient ? this.server : this.client;
    return this.v === 4 ? ipv4({ src, dst, proto: 6, payload: seg }) : ipv6({ src, dst, nextHeader: 6, payload: seg });
  }
  /** A segment from the client (c=true) or the server, advancing that side's sequence unless `seq` is given. */
  seg(c: boolean, o: Partial<Seg> & { flags: number }): Uint8Array {
    const seq = o.seq ?? (c ? this.cseq : this.sseq);
    const ack = o.ack ?? (o.flags & ACK ? (c ? this.sseq : this.cseq) : 0);
    const len = (o.payload ?? 0) + (o.flags & SYN ? 1 : 0) + (o.flags & FIN ? 1 : 0);
    if (o.seq === undefined) {
      if (c) this.cseq = (this.cseq + len) >>> 0;
      else this.sseq = (this.sseq + len) >>> 0;
    }
    return this.wrap(c, tcpSeg({ sport: c ? this.cport : this.sport, dport: c ? this.sport : this.cport, ...o, seq, ack }));
  }
  syn(o: Partial<Seg> = {}) {
    return this.seg(true, { flags: SYN, win: 64240, mss: 1460, wscale: 7, sack: true, ts: [100, 0], ...o });
  }
  synAck(o: Partial<Seg> = {}) {
    return this.seg(false, { flags: SYN | ACK, win: 65160, mss: 1400, wscale: 8, sack: true, ts: [200, 100], ...o });
  }
  ack(c: boolean, o: Partial<Seg> = {}) {
    return this.seg(c, { flags: ACK, win: 502, ...o });
  }
  data(c: boolean, bytes: number, o: Partial<Seg> = {}) {
    return this.seg(c, { flags: ACK | PSH, win: 502, payload: bytes, ...o });
  }
}

function table(opts: SessionTableOptions = {}) {
  return new SessionTable(opts);
}

/** Runs the three-way handshake on t; returns the connection. */
function handshake(t: SessionTable, conn: Conn, now = 1000) {
  expect(t.trackPacket(conn.syn(), now).verdict).toBe('ACCEPT');
  expect(t.trackPacket(conn.synAck(), now + 1).verdict).toBe('ACCEPT');
  expect(t.trackPacket(conn.ack(true), now + 2)).toMatchObject({ verdict: 'ACCEPT', state: 'ESTABLISHED' });
  return conn;
}

describe('TCP tracking', () => {
  it('follows a handshake, data both ways and a FIN close', () => {
    const t = table();
    const c = new Conn(4, '10.0.0.1', '192.0.2.1');
    expect(t.trackPacket(c.syn(), 1000)).toMatchObject({ verdict: 'ACCEPT', reason: 'none', created: true, state: 'SYN_SENT' });
    expect(t.trackPacket(c.synAck(), 1001)).toMatchObject({ verdict: 'ACCEPT', state: 'SYN_RECV', created: false });
    expect(t.trackPacket(c.ack(true), 1002)).toMatchObject({ verdict: 'ACCEPT', state: 'ESTABLISHED' });
    expect(t.trackPacket(c.data(true, 100), 1003).verdict).toBe('ACCEPT');
    expect(t.trackPacket(c.ack(false, { win: 300 }), 1004).verdict).toBe('ACCEPT');
    expect(t.trackPacket(c.data(false, 1000), 1005).verdict).toBe('ACCEPT');
    expect(t.trackPacket(c.data(false, 1000), 1006).verdict).toBe('ACCEPT');
    expect(t.trackPacket(c.ack(true), 1007).verdict).toBe('ACCEPT');
    expect(t.trackPacket(c.seg(true, { flags: FIN | ACK, win: 502 }), 1008)).toMatchObject({ verdict: 'ACCEPT', state: 'FIN_WAIT' });
    expect(t.trackPacket(c.seg(false, { flags: FIN | ACK, win: 300 }), 1009)).toMatchObject({ verdict: 'ACCEPT', state: 'CLOSING' });
    expect(t.trackPacket(c.ack(true), 1010)).toMatchObject({ verdict: 'ACCEPT', state: 'TIME_WAIT' });
    expect(t.size).toBe(1);

    const { sessions, total } = t.list();
    expect(total).toBe(1);
    const r = sessions[0]!;
    expect(r).toMatchObject({
      family: 4,
      proto: 6,
      state: 'TIME_WAIT',
      originator: { addr: '10.0.0.1', port: 40000 },
      responder: { addr: '192.0.2.1', port: 80 },
    });
    // sequence numbers: client ISN 1000, 100 bytes + SYN + FIN; server ISN 5000, 2000 bytes + SYN + FIN
    expect(r.tcp!.sndNxt).toBe(1000 + 1 + 100 + 1);
    expect(r.tcp!.rcvNxt).toBe(5000 + 1 + 2000 + 1);
    expect(r.tcp!.sndWl2).toBe(1000 + 1 + 100 + 1); // server's last ack covers the client's FIN
    expect(r.tcp!.rcvAck).toBe(5000 + 1 + 2000 + 1);
    expect(r.tcp!.sndWnd).toBe(300 << 8); // server's window, scaled by its shift 8
    expect(r.tcp!.rcvWnd).toBe(502 << 7);
  });

  it('parses MSS, window scale, SACK permitted and timestamps from SYN and SYN-ACK', () => {
    const t = table();
    const c = handshake(t, new Conn(4, '10.0.0.2', '192.0.2.1'));
    t.trackPacket(c.data(true, 10, { ts: [150, 200] }), 1003);
    t.trackPacket(c.ack(false, { ts: [250, 150] }), 1004);
    const r = t.list().sessions[0]!;
    expect(r.tcp).toMatchObject({
      flags: { noDelay: false, noOptions: false, reqScale: true, rcvdScale: true, reqTstmp: true, rcvdTstmp: true, sackPermit: true },
      mssOriginator: 1460,
      mssResponder: 1400,
      rcvScale: 7,
      sndScale: 8,
      tsRecent: 250,
      tsOriginator: 150,
      maxWinOriginator: 502 << 7, // 64256 > the SYN's unscaled 64240
      maxWinResponder: 502 << 8,
    });
    // without options: NOOPT, no scaling (windows taken as they are)
    const t2 = table();
    const c2 = new Conn(4, '10.0.0.3', '192.0.2.1');
    t2.trackPacket(c2.seg(true, { flags: SYN, win: 1000 }), 1);
    t2.trackPacket(c2.seg(false, { flags: SYN | ACK, win: 2000, wscale: 5 }), 2); // only one side: no scaling
    t2.trackPacket(c2.ack(true, { win: 1000 }), 3);
    const r2 = t2.list().sessions[0]!;
    expect(r2.tcp!.flags).toMatchObject({ noOptions: false, reqScale: false, rcvdScale: true, sackPermit: false });
    expect(r2.tcp!.rcvWnd).toBe(1000);
  });

  it('drops a mid-stream packet of no session in strict mode, picks it up in loose mode', () => {
    const mid = new Conn(4, '10.0.0.4', '192.0.2.1').data(true, 100, { seq: 77777, ack: 88888 });
    const strict = table();
    expect(strict.trackPacket(mid, 1)).toMatchObject({ verdict: 'DROP', reason: 'no-session', state: 'NONE' });
    expect(strict.size).toBe(0);
    const loose = table({ mode: 'loose' });
    expect(loose.trackPacket(mid, 1)).toMatchObject({ verdict: 'ACCEPT', created: true, state: 'ESTABLISHED' });
    const r = loose.list().sessions[0]!;
    expect(r.pickedUp).toBe(true);
    // loose never drops for the window
    const far = new Conn(4, '10.0.0.4', '192.0.2.1').data(true, 100, { seq: 77777 + 0x40000000, ack: 88888 });
    expect(loose.trackPacket(far, 2).verdict).toBe('ACCEPT');
    // strict mode after a mode switch: picked-up sessions are still never window-checked
    loose.configure({ mode: 'strict' });
    expect(loose.trackPacket(far, 3).verdict).toBe('ACCEPT');
    expect(loose.mode).toBe('strict');
  });

  it('drops out-of-window segments and accepts retransmissions', () => {
    const t = table();
    const c = handshake(t, new Conn(4, '10.0.0.5', '192.0.2.1'));
    const first = c.data(true, 1000);
    expect(t.trackPacket(first, 1003).verdict).toBe('ACCEPT');
    expect(t.trackPacket(c.ack(false), 1004).verdict).toBe('ACCEPT');
    expect(t.trackPacket(c.data(true, 1000), 1005).verdict).toBe('ACCEPT');
    // retransmission of acknowledged data: accepted
    expect(t.trackPacket(first, 1006)).toMatchObject({ verdict: 'ACCEPT', reason: 'none' });
    // far beyond the receiver's window (server window 502 << 8 = 128512)
    const ahead = c.data(true, 100, { seq: c.cseq + 10_000_000 });
    expect(t.trackPacket(ahead, 1007)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' });
    // far behind the acknowledged edge
    const behind = c.data(true, 100, { seq: c.cseq - 10_000_000 });
    expect(t.trackPacket(behind, 1008)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' });
    // acknowledging data the server never sent
    const badAck = c.ack(true, { ack: c.sseq + 5_000_000 });
    expect(t.trackPacket(badAck, 1009)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' });
    // just inside: the last byte the server's window allows
    const edge = c.data(true, 1, { seq: c.cseq + (502 << 8) - 2000 - 1 });
    expect(t.trackPacket(edge, 1010).verdict).toBe('ACCEPT');
    expect(t.stats().reasons['out-of-window']).toBe(3);
  });

  it('closes on RST; a RST answering a SYN closes too; a new SYN reopens', () => {
    const t = table();
    const c = handshake(t, new Conn(4, '10.0.0.6', '192.0.2.1'));
    t.trackPacket(c.data(true, 10), 1003);
    expect(t.trackPacket(c.seg(false, { flags: RST | ACK }), 1004)).toMatchObject({ verdict: 'ACCEPT', state: 'CLOSED' });
    expect(t.trackPacket(c.seg(false, { flags: RST | ACK, seq: c.sseq }), 1005)).toMatchObject({ verdict: 'ACCEPT', state: 'CLOSED' });
    // RST out of window: dropped
    expect(t.trackPacket(c.seg(false, { flags: RST, seq: c.sseq + 50_000_000 }), 1006).verdict).toBe('DROP');
    const again = new Conn(4, '10.0.0.6', '192.0.2.1', 40000, 80, 900_000, 7000);
    expect(t.trackPacket(again.syn(), 1007)).toMatchObject({ verdict: 'ACCEPT', state: 'SYN_SENT', created: false });
    expect(t.trackPacket(again.seg(false, { flags: RST | ACK, seq: 0 }), 1008)).toMatchObject({ verdict: 'ACCEPT', state: 'CLOSED' });
  });

  it('rejects impossible flags, unexpected SYNs and SYN-ACKs acknowledging nothing sent', () => {
    const t = table();
    const c = handshake(t, new Conn(4, '10.0.0.7', '192.0.2.1'));
    expect(t.trackPacket(c.seg(true, { flags: SYN | FIN, seq: c.cseq }), 5).reason).toBe('invalid-flags');
    expect(t.trackPacket(c.seg(true, { flags: 0, seq: c.cseq }), 5).reason).toBe('invalid-flags');
    expect(t.trackPacket(c.seg(true, { flags: SYN, seq: 123 }), 5)).toMatchObject({ verdict: 'DROP', reason: 'unexpected-syn' });
    const d = new Conn(4, '10.0.0.8', '192.0.2.1');
    t.trackPacket(d.syn(), 5);
    expect(t.trackPacket(d.synAck({ ack: 999 }), 6)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' });
    expect(t.trackPacket(d.ack(true), 7)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' }); // ACK before any SYN-ACK
  });

  it('tracks IPv6 and UDP', () => {
    const t = table();
    const c = handshake(t, new Conn(6, '2001:db8::10', '2001:db8::1'));
    expect(t.trackPacket(c.data(false, 100), 5).verdict).toBe('ACCEPT');
    const u1 = ipv4({ src: '10.0.0.9', dst: '192.0.2.53', proto: 17, payload: udp({ sport: 5353, dport: 53, payload: new Uint8Array(4) }) });
    const u2 = ipv4({ src: '192.0.2.53', dst: '10.0.0.9', proto: 17, payload: udp({ sport: 53, dport: 5353, payload: new Uint8Array(4) }) });
    expect(t.trackPacket(u1, 10)).toMatchObject({ verdict: 'ACCEPT', created: true, state: 'UNREPLIED' });
    expect(t.trackPacket(u2, 11)).toMatchObject({ verdict: 'ACCEPT', created: false, state: 'REPLIED' });
    const gre = ipv4({ src: '10.0.0.9', dst: '192.0.2.53', proto: 47, payload: new Uint8Array(8) });
    expect(t.trackPacket(gre, 12)).toMatchObject({ verdict: 'ACCEPT', created: true });
    const v6 = t.list({ proto: 'tcp', addr: '2001:db8::1' });
    expect(v6.total).toBe(1);
    expect(v6.sessions[0]).toMatchObject({ family: 6, originator: { addr: '2001:db8::10', port: 40000 }, responder: { addr: '2001:db8::1', port: 80 } });
    expect(t.list({ proto: 'udp' }).sessions[0]).toMatchObject({ state: 'REPLIED', originator: { addr: '10.0.0.9', port: 5353 } });
    expect(t.list({ port: 53 }).total).toBe(1);
    expect(t.list({ proto: 47 }).total).toBe(1);
    expect(t.list({ limit: 2 }).sessions.length).toBe(2);
    expect(t.list({ offset: 2, limit: 5 }).sessions.length).toBe(1);
    expect(t.stats()).toMatchObject({ sessions: 3, tcp: 1, udp: 1, other: 1 });
    // fragments pass untracked
    const frag = ipv4({ src: '10.0.0.9', dst: '192.0.2.53', proto: 6, moreFragments: true, payload: new Uint8Array(40) });
    expect(t.trackPacket(frag, 13)).toMatchObject({ verdict: 'ACCEPT', reason: 'untracked' });
  });
});

describe('records', () => {
  it('round-trips IPv4 and IPv6 records byte for byte and decodes them', () => {
    for (const [v, cl, sv] of [
      [4, '10.1.2.3', '192.0.2.1'],
      [6, '2001:db8:0:1::abcd', '2001:db8::1'],
    ] as const) {
      const a = table();
      const c = handshake(a, new Conn(v, cl, sv), 5000);
      a.trackPacket(c.data(true, 321, { ts: [111, 200] }), 5003, 77);
      const { records } = a.collectChanges(10, 5003, { lazy: true });
      expect(records.length).toBe(1);
      const rec = records[0]!;
      expect(rec.length).toBe(SESSION_RECORD_SIZE);
      expect(SESSION_RECORD_SIZE).toBe(112);
      const b = table();
      expect(b.install(records, 5003)).toMatchObject({ installed: 1, stale: 0, invalid: 0 });
      const back = b.sessionsForUnits([77]);
      expect(back.length).toBe(1);
      expect(Buffer.from(back[0]!).equals(Buffer.from(rec))).toBe(true);
      const d = decodeSessionRecord(rec);
      expect(d).toMatchObject({ family: v, proto: 6, state: 'ESTABLISHED', unit: 77, originator: { addr: cl, port: 40000 }, responder: { addr: sv, port: 80 } });
      expect(d.tcp!.sndNxt).toBe(1000 + 1 + 321);
      expect(d.version).toBeGreaterThan(3);
      expect(b.install(records, 5004)).toMatchObject({ installed: 0, stale: 1 });
    }
  });

  it('rejects undecodable records and keys without crashing', () => {
    const b = table();
    const junk = new Uint8Array(SESSION_RECORD_SIZE * 3).fill(0xee);
    expect(b.install(junk, 1)).toMatchObject({ invalid: 3, installed: 0 });
    expect(b.remove(new Uint8Array(SESSION_KEY_SIZE * 2).fill(0xee))).toBe(0);
    expect(() => b.install(new Uint8Array(5), 1)).toThrow(RangeError);
    expect(() => decodeSessionRecord(new Uint8Array(10))).toThrow(RangeError);
  });
});

describe('replication and failover', () => {
  it('a table holding the replicated records carries the connection on in strict mode; one without drops it', () => {
    const a = table();
    const c = handshake(a, new Conn(4, '10.2.0.1', '192.0.2.1'));
    for (let i = 0; i < 5; i++) {
      a.trackPacket(c.data(true, 1000), 1010 + i);
      a.trackPacket(c.ack(false), 1010 + i);
    }
    const batch = a.collectChanges(100, 1100, { lazy: true });
    expect(batch.records.length).toBe(1);
    // more traffic after the last batch (lagging less than the coalescing threshold): B's state is stale
    a.trackPacket(c.data(true, 1000), 1150);
    a.trackPacket(c.data(false, 3000), 1151);

    const b = table();
    const cc = table();
    b.install(batch.records, 1200);
    expect(b.stats().replicas).toBe(1);
    // a replica does not produce dirty entries by itself
    expect(b.collectChanges(100, 1200, { lazy: true }).records.length).toBe(0);

    const next = [c.data(true, 1000), c.ack(false), c.data(false, 500), c.ack(true), c.data(true, 1000)];
    for (const p of next) {
      expect(b.trackPacket(p, 1300)).toMatchObject({ verdict: 'ACCEPT', state: 'ESTABLISHED' });
      expect(cc.trackPacket(p, 1300)).toMatchObject({ verdict: 'DROP', reason: 'no-session' });
    }
    // B now owns the session: it replicates it, at a higher version than A's
    const fromB = b.collectChanges(100, 1400, { lazy: true }).records;
    expect(fromB.length).toBe(1);
    expect(decodeSessionRecord(fromB[0]!).version).toBeGreaterThan(decodeSessionRecord(batch.records[0]!).version);
    expect(b.stats().replicas).toBe(0);
    // and B still drops garbage on that connection
    expect(b.trackPacket(c.data(true, 10, { seq: c.cseq + 50_000_000 }), 1401).verdict).toBe('DROP');
    // A's close is replicated as a removal once it expires (a bare RST: A never saw the server's last bytes)
    expect(a.trackPacket(c.seg(true, { flags: RST }), 2000).state).toBe('CLOSED');
    a.collectChanges(100, 2000, { lazy: true });
    expect(a.expire(2000 + 10_001)).toBe(1);
    const removal = a.collectChanges(100, 12_002, { lazy: false });
    expect(removal.removed.length).toBe(1);
    expect(removal.removed[0]!.length).toBe(SESSION_KEY_SIZE);
    expect(b.remove(removal.removed)).toBe(1);
    expect(b.size).toBe(0);
  });

  it('an ack of data that passed another member (within the window the acking side advertised) is accepted and moves the edge', () => {
    const t = table();
    const c = handshake(t, new Conn(4, '10.2.0.6', '192.0.2.1'));
    t.trackPacket(c.data(false, 1000), 1010);
    // 4 kB of server data reached the client through another member (the table was converging).
    c.sseq = (c.sseq + 4096) >>> 0;
    expect(t.trackPacket(c.ack(true), 1011)).toMatchObject({ verdict: 'ACCEPT', reason: 'none' });
    // The edge moved: the next server segment and the client's ack of it pass.
    expect(t.trackPacket(c.data(false, 1000), 1012).verdict).toBe('ACCEPT');
    expect(t.trackPacket(c.ack(true), 1013).verdict).toBe('ACCEPT');
    // Beyond anything the client's own window let the server send: refused.
    expect(t.trackPacket(c.ack(true, { ack: (c.sseq + 2_000_000) >>> 0 }), 1014)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' });
  });

  it('a replica lagging the endpoints by many windows (replication starved) carries the connection on, then is strict again', () => {
    const a = table();
    const c = handshake(a, new Conn(4, '10.2.0.7', '192.0.2.1'));
    a.trackPacket(c.data(true, 1000), 1010);
    a.trackPacket(c.ack(false), 1011);
    const b = table();
    b.install(a.collectChanges(100, 1020, { lazy: true }).records, 1020);
    // 3 MB each way went through A after its last record reached B (far more than one window of 128 kB).
    c.cseq = (c.cseq + 3_000_000) >>> 0;
    c.sseq = (c.sseq + 3_000_000) >>> 0;
    for (const p of [c.data(true, 1000), c.ack(false), c.data(false, 1000), c.ack(true)]) {
      expect(b.trackPacket(p, 9000)).toMatchObject({ verdict: 'ACCEPT', state: 'ESTABLISHED' });
    }
    // Both sides sent fresh segments: the window rule is strict again.
    expect(b.trackPacket(c.data(true, 10, { seq: c.cseq + 3_000_000 }), 9001)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' });
    expect(b.trackPacket(c.data(true, 1000), 9002).verdict).toBe('ACCEPT');
  });

  it('a replica still in SYN_SENT (its owner died before replicating the SYN-ACK) learns the server side mid-stream', () => {
    const a = table();
    const c = new Conn(4, '10.2.0.8', '192.0.2.1');
    expect(a.trackPacket(c.syn(), 1000).verdict).toBe('ACCEPT');
    const b = table();
    b.install(a.collectChanges(100, 1001, { lazy: false }).records, 1001);
    // The SYN-ACK, the ACK and some data went through A, which died before replicating them.
    a.trackPacket(c.synAck(), 1002);
    a.trackPacket(c.ack(true), 1003);
    a.trackPacket(c.data(true, 500), 1004);
    a.trackPacket(c.data(false, 700), 1005);
    for (const p of [c.data(true, 1000), c.ack(false), c.data(false, 1000), c.ack(true)]) {
      expect(b.trackPacket(p, 2000)).toMatchObject({ verdict: 'ACCEPT' });
    }
    expect(b.trackPacket(c.ack(true), 2001).state).toBe('ESTABLISHED');
    // A table that never saw the connection still drops it (strict: no session).
    expect(table().trackPacket(c.data(true, 10), 2002)).toMatchObject({ verdict: 'DROP', reason: 'no-session' });
  });

  it('a session first seen after its unit was regained is re-anchored; without the gain time it is dropped', () => {
    // A tracked the connection, then the unit moved to another member that carried it on (the server sent
    // 100 kB A never saw, more than the client's window A knows of, and the other member's last changes
    // never reached A), then the unit came back.
    const history = (t: SessionTable, c: Conn) => {
      handshake(t, c);
      t.trackPacket(c.data(true, 1000), 1010);
      t.trackPacket(c.ack(false), 1011);
    };
    const withGain = table();
    const withoutGain = table(); // the same history, tracked without the gain time
    const c1 = new Conn(4, '10.2.0.9', '192.0.2.1');
    const c2 = new Conn(4, '10.2.0.9', '192.0.2.1');
    history(withGain, c1);
    history(withoutGain, c2);
    for (const c of [c1, c2]) c.sseq = (c.sseq + 100_000) >>> 0;
    // The client acknowledges the server data A never saw.
    expect(withGain.trackPacket(c1.ack(true), 5000, undefined, 4000)).toMatchObject({ verdict: 'ACCEPT' });
    expect(withGain.stats().regained).toBe(1);
    // The same table without the gain time: the strict window rule refuses the acknowledgement.
    expect(withoutGain.trackPacket(c2.ack(true), 5000)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' });
    expect(withoutGain.stats().regained).toBe(0);
    // Re-anchored, the connection goes on; a gain time older than the session's last packet changes nothing.
    expect(withGain.trackPacket(c1.data(false, 500), 5001, undefined, 4000).verdict).toBe('ACCEPT');
    expect(withGain.trackPacket(c1.ack(true), 5002, undefined, 4000).verdict).toBe('ACCEPT');
    expect(withGain.stats().regained).toBe(1);
    // Garbage far outside any window is still refused after the grace.
    expect(withGain.trackPacket(c1.data(true, 10, { seq: c1.cseq + 50_000_000 }), 9000, undefined, 4000)).toMatchObject({ verdict: 'DROP', reason: 'out-of-window' });
  });

  it('hands over the sessions of chosen units', () => {
    const a = table();
    for (let i = 0; i < 20; i++) {
      const c = new Conn(4, `10.3.0.${i + 1}`, '192.0.2.1');
      a.trackPacket(c.syn(), 1, i % 4);
    }
    expect(a.sessionsForUnits([1, 3]).length).toBe(10);
    const bm = new Uint8Array(128);
    bm[0] = 0b0001;
    expect(a.sessionsForUnits(bm).length).toBe(5);
    expect(a.list({ unit: 2 }).total).toBe(5);
  });
});

describe('coalescing', () => {
  it('1000 in-window data packets produce few records under the lazy rule; state changes are urgent', () => {
    const a = table();
    const c = handshake(a, new Conn(4, '10.4.0.1', '192.0.2.1'));
    let urgent = a.collectChanges(100, 1003, { lazy: false }).records.length;
    expect(urgent).toBe(1); // the creation/establishment
    let lazy = 0;
    let now = 1003;
    for (let i = 0; i < 1000; i++) {
      now += 1;
      expect(a.trackPacket(c.data(true, 1000), now).verdict).toBe('ACCEPT');
      if (i % 2 === 1) a.trackPacket(c.ack(false, { win: 8000 }), now); // 8000 << 8 = 2 MB window
      urgent += a.collectChanges(100, now, { lazy: false }).records.length; // the urgent flush, every packet
      if (now % 200 === 0) lazy += a.collectChanges(100, now, { lazy: true }).records.length; // the periodic batch
    }
    expect(urgent + lazy).toBeLessThan(20); // vs 1500 packets
    expect(lazy).toBeGreaterThan(0);
    // a FIN is urgent
    a.trackPacket(c.seg(true, { flags: FIN | ACK, win: 502 }), now + 1);
    const fin = a.collectChanges(100, now + 1, { lazy: false }).records;
    expect(fin.length).toBe(1);
    expect(decodeSessionRecord(fin[0]!).state).toBe('FIN_WAIT');

    // sequence movement alone is lazy however far it goes (a replica's sequence values get the stale slack)
    const b = table();
    const d = handshake(b, new Conn(4, '10.4.0.2', '192.0.2.1'));
    b.collectChanges(100, 1003, { lazy: true });
    for (let i = 0; i < 100; i++) b.trackPacket(d.data(true, 1000), 1005); // 100000 bytes, most of the window
    expect(b.collectChanges(100, 1005, { lazy: false }).records.length).toBe(0);
    expect(b.collectChanges(100, 1005, { lazy: true }).records.length).toBe(1);
  });

  it('maxRecords bounds a batch; the rest stays queued', () => {
    const a = table();
    for (let i = 0; i < 10; i++) a.trackPacket(new Conn(4, `10.5.0.${i + 1}`, '192.0.2.1').syn(), 1);
    const first = a.collectChanges(4, 1, { lazy: false });
    expect(first.records.length).toBe(4);
    expect(first.pendingUrgent).toBe(6);
    expect(a.collectChanges(100, 1, { lazy: false }).records.length).toBe(6);
    expect(a.collectChanges(100, 1, { lazy: true }).records.length).toBe(0);
  });
});

describe('expiry and bounds', () => {
  it('expires per state timeouts and reports replicated local sessions as removals', () => {
    const t = table();
    t.trackPacket(new Conn(4, '10.6.0.1', '192.0.2.1').syn(), 0); // SYN_SENT: 30 s
    handshake(t, new Conn(4, '10.6.0.2', '192.0.2.1'), 0); // ESTABLISHED: 2 h
    const u = ipv4({ src: '10.6.0.3', dst: '192.0.2.53', proto: 17, payload: udp({ sport: 1, dport: 53 }) });
    t.trackPacket(u, 0); // UDP unreplied: 30 s
    t.collectChanges(100, 0, { lazy: true });
    expect(t.expire(29_000)).toBe(0);
    expect(t.expire(31_000)).toBe(2);
    expect(t.size).toBe(1);
    expect(t.collectChanges(100, 31_000, { lazy: true }).removed.length).toBe(2);
    expect(t.expire(7_200_003)).toBe(1);
    expect(t.stats().expired).toBe(3);
    // never replicated: no removal to report
    const t2 = table({ timeouts: { synSent: 5 } });
    t2.trackPacket(new Conn(4, '10.6.0.9', '192.0.2.1').syn(), 0);
    expect(t2.expire(10)).toBe(1);
    expect(t2.collectChanges(100, 10, { lazy: true }).removed.length).toBe(0);
  });

  it('refuses sessions beyond maxSessions (strict TCP: DROP; UDP: ACCEPT untracked)', () => {
    const t = table({ maxSessions: 2 });
    expect(t.trackPacket(new Conn(4, '10.7.0.1', '192.0.2.1').syn(), 1).verdict).toBe('ACCEPT');
    expect(t.trackPacket(new Conn(4, '10.7.0.2', '192.0.2.1').syn(), 1).verdict).toBe('ACCEPT');
    expect(t.trackPacket(new Conn(4, '10.7.0.3', '192.0.2.1').syn(), 1)).toMatchObject({ verdict: 'DROP', reason: 'table-full' });
    const u = ipv4({ src: '10.7.0.4', dst: '192.0.2.53', proto: 17, payload: udp({ sport: 1, dport: 53 }) });
    expect(t.trackPacket(u, 1)).toMatchObject({ verdict: 'ACCEPT', reason: 'untracked' });
    const other = table();
    other.trackPacket(new Conn(4, '10.7.0.5', '192.0.2.1').syn(), 1);
    expect(t.install(other.collectChanges(10, 1, { lazy: true }).records, 1)).toMatchObject({ refused: 1 });
    expect(t.stats()).toMatchObject({ sessions: 2, refused: 2, installRefused: 1 });
    expect(t.stats().bytesPerSession).toBeGreaterThan(100);
    expect(t.stats().bytesPerSession).toBeLessThan(400);
  });
});

describe('malformed input', () => {
  it('never crashes on random bytes, truncations and mutations', () => {
    const t = table({ mode: 'loose' });
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 8;
    };
    const c = new Conn(4, '10.8.0.1', '192.0.2.1');
    const c6 = new Conn(6, '2001:db8::8', '2001:db8::1');
    const samples = [c.syn(), c.synAck(), c.data(true, 50), c6.syn(), c6.data(false, 30)];
    for (let i = 0; i < 20_000; i++) {
      const base = samples[i % samples.length]!;
      let p: Uint8Array;
      if (i % 3 === 0) p = base.subarray(0, rnd() % (base.length + 1));
      else if (i % 3 === 1) {
        p = base.slice();
        for (let k = 0; k < 4; k++) p[rnd() % p.length] = rnd() & 0xff;
      } else p = Uint8Array.from({ length: rnd() % 120 }, () => rnd() & 0xff);
      const r = t.trackPacket(p, i);
      expect(['ACCEPT', 'DROP']).toContain(r.verdict);
    }
    expect(t.trackPacket(new Uint8Array(0), 1)).toMatchObject({ verdict: 'DROP', reason: 'malformed' });
    const s = t.stats();
    expect(s.accepted + s.dropped).toBe(20_001);
    t.expire(1e12);
    expect(t.size).toBe(0);
  });

  it('validates arguments with TypeErrors naming the call', () => {
    const t = table();
    expect(() => t.trackPacket('x' as unknown as Uint8Array, 1)).toThrow(/SessionTable.trackPacket: ipPacket must be a Buffer or Uint8Array/);
    expect(() => t.trackPacket(new Uint8Array(20), -1)).toThrow(TypeError);
    expect(() => t.trackPacket(new Uint8Array(20), 1, 1024)).toThrow(/unit must be an integer 0..1023/);
    expect(() => t.collectChanges(10, 1, {} as { lazy: boolean })).toThrow(/opts.lazy must be true or false/);
    expect(() => t.sessionsForUnits(new Uint8Array(3))).toThrow(RangeError);
    expect(() => t.list({ addr: 'nope' })).toThrow(/addr must be an IPv4 or IPv6 address/);
    expect(() => new SessionTable({ mode: 'lax' as 'strict' })).toThrow(/opts.mode must be 'strict' or 'loose'/);
    expect(() => new SessionTable({ timeouts: { bogus: 1 } as never })).toThrow(/unknown timeout/);
    expect(() => t.install([new Uint8Array(3)], 1)).toThrow(/records\[0\] must have 112 bytes/);
  });
});
