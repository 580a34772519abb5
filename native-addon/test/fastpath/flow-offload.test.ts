// The flow offload of the kernel fast path, run through BPF_PROG_TEST_RUN (the kernel's own program run
// on a packet, no interface involved). A unit under PASS_TRACKED passes a routed flow's packets in the
// kernel only once the flow was offloaded in the unit's current generation, and never a SYN, FIN or RST;
// syncFlows() folds what the kernel passed into the session table and drops entries the table no longer
// wants. Needs root (BPF).
import { describe, expect, it } from 'vitest';
import { FastPath, fastPathAvailable, SessionTable, UnitAction, classifyFlow } from '../../src/index.js';
import { ipv4, tcpSeg, udp, type Seg } from '../packets.js';

const USER_MARK = 0x100;
const PASS_MARK = 0x200;
const CLIENT = '198.51.100.7';
const SERVER = '192.0.2.100';
const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const PSH = 0x08;

const skip = process.getuid?.() !== 0 ? 'needs root (BPF)' : !fastPathAvailable() ? 'addon built without the fast path' : null;

const unit = classifyFlow({ proto: 'tcp', src: CLIENT, dst: SERVER, forwarding: true }).unit;
const c2s = (o: Omit<Seg, 'sport' | 'dport'>) => ipv4({ src: CLIENT, dst: SERVER, proto: 6, payload: tcpSeg({ sport: 40000, dport: 7000, ...o }) });
const s2c = (o: Omit<Seg, 'sport' | 'dport'>) => ipv4({ src: SERVER, dst: CLIENT, proto: 6, payload: tcpSeg({ sport: 7000, dport: 40000, ...o }) });

function open(): FastPath {
  const fp = new FastPath({ clusterIps: ['192.0.2.200'], frames: false, userMark: USER_MARK, passMark: PASS_MARK });
  fp.setUnitActions([unit], UnitAction.PASS_TRACKED, 1);
  return fp;
}

const where = (r: { verdict: number; mark: number }) => (r.verdict !== 0 ? 'dropped' : r.mark & PASS_MARK ? 'kernel' : r.mark & USER_MARK ? 'user' : 'unmarked');

describe.skipIf(skip !== null)('flow offload (PASS_TRACKED)', () => {
  it('passes an established flow in the kernel once offloaded, never its SYN/FIN/RST, and only in the current generation', () => {
    const fp = open();
    try {
      const data = c2s({ seq: 1001, ack: 5001, flags: ACK | PSH, payload: 100 });
      expect(where(fp.runOnce(data, { frames: false })), 'not offloaded yet').toBe('user');
      fp.offloadPacket(data, unit);
      expect(where(fp.runOnce(data, { frames: false }))).toBe('kernel');
      expect(where(fp.runOnce(s2c({ seq: 5001, ack: 1101, flags: ACK }), { frames: false })), 'the reverse direction too').toBe('kernel');
      expect(where(fp.runOnce(c2s({ seq: 1101, ack: 5001, flags: ACK | FIN }), { frames: false })), 'a FIN goes up').toBe('user');
      expect(where(fp.runOnce(c2s({ seq: 1000, flags: SYN }), { frames: false })), 'a SYN goes up').toBe('user');
      expect(where(fp.runOnce(c2s({ seq: 1101, ack: 5001, flags: 0x04 | ACK }), { frames: false })), 'a RST goes up').toBe('user');
      const other = ipv4({ src: CLIENT, dst: SERVER, proto: 6, payload: tcpSeg({ sport: 40001, dport: 7000, seq: 1, ack: 1, flags: ACK }) });
      expect(where(fp.runOnce(other, { frames: false })), 'another flow of the unit').toBe('user');
      // The unit leaves and comes back: a new generation, the old entries pass nothing.
      fp.setUnitActions([unit], UnitAction.DROP, 2);
      expect(where(fp.runOnce(data, { frames: false }))).toBe('dropped');
      fp.setUnitActions([unit], UnitAction.PASS_TRACKED, 1);
      expect(where(fp.runOnce(data, { frames: false })), 'offloaded in an earlier generation').toBe('user');
      fp.offloadPacket(data, unit);
      expect(where(fp.runOnce(data, { frames: false }))).toBe('kernel');
      const st = fp.stats();
      expect(st.flowHit).toBe(3n);
      expect(st.flowMiss).toBe(6n);
      expect(fp.flowStats()).toEqual({ offloaded: 2, offloadErrors: 0 });
    } finally {
      fp.close();
    }
  });

  it('refuses to offload what the engine must keep seeing, and routed UDP passes once offloaded', () => {
    const fp = open();
    try {
      const syn = c2s({ seq: 1000, flags: SYN });
      fp.offloadPacket(syn, unit);
      expect(where(fp.runOnce(c2s({ seq: 1001, ack: 1, flags: ACK }), { frames: false }))).toBe('user');
      expect(fp.flowStats().offloaded).toBe(0);
      const dgram = ipv4({ src: CLIENT, dst: SERVER, proto: 17, payload: udp({ sport: 40000, dport: 7001, payload: new Uint8Array(20) }) });
      const udpUnit = classifyFlow({ proto: 'udp', src: CLIENT, dst: SERVER, forwarding: true }).unit;
      expect(udpUnit).toBe(unit); // routed traffic: key src ^ dst, whatever the protocol
      fp.offloadPacket(dgram, unit);
      expect(where(fp.runOnce(dgram, { frames: false }))).toBe('kernel');
      // Traffic to a cluster IP itself is the member's own stack's: passed like PASS, never tracked.
      const toCluster = ipv4({ src: CLIENT, dst: '192.0.2.200', proto: 6, payload: tcpSeg({ sport: 40000, dport: 80, seq: 1, flags: SYN }) });
      const clusterUnit = classifyFlow({ proto: 'tcp', src: CLIENT, sport: 40000, dst: '192.0.2.200', dport: 80 }).unit;
      fp.setUnitActions([clusterUnit], UnitAction.PASS_TRACKED, 1);
      expect(where(fp.runOnce(toCluster, { frames: false }))).toBe('kernel');
    } finally {
      fp.close();
    }
  });

  it('syncFlows folds what the kernel passed into the session, and lets go of flows whose session ended', () => {
    const fp = open();
    const table = new SessionTable({ mode: 'strict' });
    try {
      const t0 = Date.now() - 60_000;
      // The handshake, tracked by the table as the engine would.
      for (const p of [c2s({ seq: 1000, flags: SYN, win: 64240 }), s2c({ seq: 5000, ack: 1001, flags: SYN | ACK, win: 65160 }), c2s({ seq: 1001, ack: 5001, flags: ACK, win: 64240 })]) {
        expect(table.trackPacket(p, t0, unit).verdict).toBe('ACCEPT');
      }
      const established = c2s({ seq: 1001, ack: 5001, flags: ACK, win: 64240 });
      fp.offloadPacket(established, unit);
      // The kernel passes 3000 bytes of data from the client and the server's ack of them.
      expect(where(fp.runOnce(c2s({ seq: 1001, ack: 5001, flags: ACK | PSH, payload: 1000, win: 64240 }), { frames: false }))).toBe('kernel');
      expect(where(fp.runOnce(c2s({ seq: 2001, ack: 5001, flags: ACK | PSH, payload: 2000, win: 64240 }), { frames: false }))).toBe('kernel');
      expect(where(fp.runOnce(s2c({ seq: 5001, ack: 4001, flags: ACK, win: 65160 }), { frames: false }))).toBe('kernel');
      const before = table.list({}).sessions[0]!;
      expect(before.tcp!.sndNxt).toBe(1001);
      const r = fp.syncFlows(table);
      expect(r).toMatchObject({ entries: 2, refreshed: 2, removed: 0, errors: 0 });
      const after = table.list({}).sessions[0]!;
      expect(after.state).toBe('ESTABLISHED');
      expect(after.tcp!.sndNxt, "the originator's sequence end moved with the kernel-passed data").toBe(4001);
      expect(after.lastSeenMs, 'last seen moved to the kernel-passed packets').toBeGreaterThan(t0 + 50_000);
      expect(table.stats().offloadRefreshed).toBe(2);
      // The client closes: the FIN goes up, the table leaves ESTABLISHED, and the next sync drops the flow.
      const fin = c2s({ seq: 4001, ack: 5001, flags: ACK | FIN, win: 64240 });
      expect(where(fp.runOnce(fin, { frames: false }))).toBe('user');
      expect(table.trackPacket(fin, Date.now(), unit).verdict).toBe('ACCEPT');
      expect(fp.syncFlows(table)).toMatchObject({ entries: 2, removed: 2 });
      expect(where(fp.runOnce(s2c({ seq: 5001, ack: 4002, flags: ACK }), { frames: false })), 'closing: up to the engine again').toBe('user');
      // A flow offloaded without a session (expired, removed) is let go as well.
      fp.offloadPacket(ipv4({ src: CLIENT, dst: SERVER, proto: 6, payload: tcpSeg({ sport: 40002, dport: 7000, seq: 1, ack: 1, flags: ACK }) }), unit);
      expect(fp.syncFlows(table)).toMatchObject({ entries: 2, removed: 2 });
    } finally {
      fp.close();
    }
  });

  it('REDIRECT sends a frame of another member\'s unit to the owner in the kernel, once it knows where', () => {
    const fp = new FastPath({ clusterIps: ['192.0.2.200'], frames: true, userMark: USER_MARK, passMark: PASS_MARK });
    try {
      const ip = c2s({ seq: 1001, ack: 5001, flags: ACK });
      const f = new Uint8Array(14 + ip.length);
      f.set([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 9, 0x08, 0x00]); // to the master, from a client; IPv4
      f.set(ip, 14);
      fp.setUnitActions([unit], UnitAction.REDIRECT, 2);
      expect(where(fp.runOnce(f, { frames: true })), 'no forward interface: up to the engine').toBe('user');
      fp.setForwardInterface('lo');
      expect(where(fp.runOnce(f, { frames: true })), "the owner's MAC unknown: up to the engine").toBe('user');
      fp.setSlotMac(2, '02:00:00:00:00:02');
      expect(fp.runOnce(f, { frames: true }).verdict, 'TC_ACT_REDIRECT').toBe(7);
      expect(fp.stats().redirected).toBe(1n);
      fp.setSlotMac(2, null);
      expect(where(fp.runOnce(f, { frames: true }))).toBe('user');
    } finally {
      fp.close();
    }
  });

  it('rejects bad arguments with clear errors', () => {
    const fp = open();
    try {
      expect(() => fp.offloadPacket(new Uint8Array(3), 5000)).toThrow(/unit/);
      expect(() => fp.syncFlows({} as SessionTable)).toThrow(/SessionTable/);
      expect(() => fp.setUnitActions([1], 5 as UnitAction)).toThrow(/action/);
      expect(() => fp.setSlotMac(2, 'not a mac')).toThrow(/mac/);
      expect(() => fp.setForwardInterface('no-such-if0')).toThrow(/no-such-if0/);
      // Garbage is not offloaded and does not throw.
      fp.offloadPacket(new Uint8Array(3), 1);
      fp.offloadPacket(new Uint8Array(64).fill(0x45), 1);
      expect(fp.flowStats()).toEqual({ offloaded: 0, offloadErrors: 0 });
    } finally {
      fp.close();
    }
  });
});
