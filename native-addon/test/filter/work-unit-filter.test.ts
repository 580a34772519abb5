// The ownership table, verdicts (Figure 9), per-unit counters and the master's hold queue.
import { describe, expect, it } from 'vitest';
import { classifyPacket, packBatch, Verdict, WorkUnitFilter, type PacketClassification } from '../../src/index.js';
import { ipv4, tcp } from '../packets.js';

const CLUSTER = ['192.0.2.1'];

/** A TCP packet to the cluster IP from 198.51.100.<host>:<sport>, with its unit. */
function packet(host: number, sport: number, payloadBytes = 0): { bytes: Uint8Array; unit: number } {
  const bytes = ipv4({ src: `198.51.100.${host}`, dst: '192.0.2.1', proto: 6, payload: tcp({ sport, dport: 80, payload: new Uint8Array(payloadBytes) }) });
  return { bytes, unit: (classifyPacket(bytes, { clusterIps: CLUSTER }) as PacketClassification).unit };
}

/** `n` packets of one flow (same unit), each with a distinct first payload byte. */
function flow(n: number): { list: Uint8Array[]; unit: number } {
  const { unit } = packet(20, 5555);
  const list = Array.from({ length: n }, (_, i) => {
    const p = packet(20, 5555, 4).bytes;
    p[40] = i & 0xff;
    p[41] = i >> 8;
    return p;
  });
  return { list, unit };
}

describe('ownership table', () => {
  it('sets one unit, many units, the whole table, and reads it back', () => {
    const f = new WorkUnitFilter({ clusterIps: CLUSTER, localSlot: 1 });
    expect(f.owners()).toEqual(new Uint16Array(1024));
    f.setOwner(5, 2);
    f.setOwners([6, 7, 1023], 3);
    f.setOwners(Uint16Array.of(8), 4);
    const t = f.owners();
    expect([t[5], t[6], t[7], t[1023], t[8], t[0]]).toEqual([2, 3, 3, 3, 4, 0]);
    const table = new Uint16Array(1024).map((_, u) => (u % 3) + 1);
    f.setTable(table);
    expect(f.owners()).toEqual(table);
    t[0] = 99; // owners() is a copy
    expect(f.owners()[0]).toBe(1);
  });

  it('rejects bad arguments with the argument name and the accepted form', () => {
    const f = new WorkUnitFilter({ clusterIps: CLUSTER });
    expect(() => f.setOwner(1024, 1)).toThrow(/WorkUnitFilter\.setOwner: unit must be an integer 0\.\.1023, got number 1024/);
    expect(() => f.setOwner(1, -1)).toThrow(/slot must be an integer 0\.\.65535/);
    expect(() => f.setOwner(1.5, 1)).toThrow(TypeError);
    expect(() => f.setOwners([1, 2000], 1)).toThrow(/units\[1\] must be an integer 0\.\.1023/);
    expect(() => f.setTable(new Uint16Array(10))).toThrow(/table must have 1024 entries/);
    expect(() => f.hold(-1)).toThrow(/WorkUnitFilter\.hold: unit/);
    expect(() => f.classifyBatch([1, 2] as unknown as Uint8Array, new Uint32Array(1))).toThrow(/packets must be a Buffer or Uint8Array, got Array/);
    expect(() => f.classifyBatch(new Uint8Array(4), [0, 4] as unknown as Uint32Array)).toThrow(/offsets must be a Uint32Array/);
    expect(() => f.classifyBatch(new Uint8Array(4), Uint32Array.of(0, 5))).toThrow(/offsets\[1\]=5 is past the end of packets \(4 bytes\)/);
    expect(() => f.classifyBatch(new Uint8Array(4), Uint32Array.of(3, 1))).toThrow(RangeError);
    expect(() => new WorkUnitFilter({ clusterIps: CLUSTER, method: 4 as 1 })).toThrow(/opts\.method must be 1, 2 or 3/);
    expect(() => new WorkUnitFilter({ clusterIps: 'x' as unknown as string[] })).toThrow(/opts\.clusterIps: expected/);
  });
});

describe('verdicts (Figure 9)', () => {
  const a = packet(10, 1000);
  const b = packet(11, 2000);
  const { packets, offsets } = packBatch([a.bytes, b.bytes, new Uint8Array(3)]);

  it('a member keeps its own units and drops the others; invalid packets are INVALID', () => {
    const f = new WorkUnitFilter({ clusterIps: CLUSTER, localSlot: 2 });
    f.setOwner(a.unit, 2);
    if (b.unit !== a.unit) f.setOwner(b.unit, 3);
    const r = f.verdictBatch(packets, offsets);
    expect(Array.from(r.verdicts)).toEqual([Verdict.LOCAL, Verdict.DROP, Verdict.INVALID]);
    expect(Array.from(r.units)).toEqual([a.unit, b.unit, 0xffff]);
  });

  it('the master forwards acknowledged units (method 1), drops them (methods 2/3), holds unassigned and held units', () => {
    const f = new WorkUnitFilter({ clusterIps: CLUSTER, localSlot: 1, master: true, method: 1 });
    f.setOwner(a.unit, 3);
    expect(Array.from(f.verdictBatch(packets, offsets).verdicts)).toEqual([Verdict.FORWARD_TO_OWNER, Verdict.HOLD, Verdict.INVALID]);
    expect(f.isHeld(b.unit)).toBe(true); // an unassigned unit's first packet puts it on hold
    f.setRole({ method: 2 });
    f.hold(a.unit); // assigned, not yet acknowledged
    expect(Array.from(f.verdictBatch(packets, offsets).verdicts)).toEqual([Verdict.HOLD, Verdict.HOLD, Verdict.INVALID]);
    expect(f.release(a.unit)).toHaveLength(1);
    expect(Array.from(f.verdictBatch(packets, offsets).verdicts)).toEqual([Verdict.DROP, Verdict.HOLD, Verdict.INVALID]);
    f.setOwner(b.unit, 1); // the master took the unit itself
    expect(f.verdictBatch(packets, offsets).verdicts[1]).toBe(Verdict.LOCAL);
  });
});

describe('per-unit counters', () => {
  it('count packets and IP bytes of owned units only, and reset on request', () => {
    const a = packet(10, 1000, 10); // 20 + 20 + 10 = 50 bytes
    const b = packet(11, 2000);
    const f = new WorkUnitFilter({ clusterIps: CLUSTER, localSlot: 1 });
    f.setOwner(a.unit, 1);
    if (b.unit !== a.unit) f.setOwner(b.unit, 2);
    const { packets, offsets } = packBatch([a.bytes, a.bytes, b.bytes]);
    f.classifyBatch(packets, offsets);
    let c = f.counters();
    expect(c.packets[a.unit]).toBe(2n);
    expect(c.bytes[a.unit]).toBe(100n);
    expect(c.packets[b.unit]).toBe(b.unit === a.unit ? 3n : 0n);
    c = f.counters({ reset: true });
    expect(c.packets[a.unit]).toBe(2n);
    expect(f.counters().packets[a.unit]).toBe(0n);
    expect(f.stats().cluster).toBe(3);
  });
});

describe('hold queue', () => {
  it('releases held packets in arrival order and ends the hold', () => {
    const f = new WorkUnitFilter({ clusterIps: CLUSTER, localSlot: 1, master: true });
    const { list, unit } = flow(10);
    const { packets, offsets } = packBatch(list);
    expect(Array.from(f.verdictBatch(packets, offsets).verdicts)).toEqual(new Array(10).fill(Verdict.HOLD));
    expect(f.stats()).toMatchObject({ heldPackets: 10, heldBytes: 10 * 44 });
    f.setOwner(unit, 2); // WORK ASSIGN sent; still held until the ACK
    expect(f.verdictBatch(packets, offsets.subarray(0, 2)).verdicts[0]).toBe(Verdict.HOLD);
    const released = f.release(unit); // the ACK arrived
    expect(released.map((p) => p[40])).toEqual([...Array(10).keys(), 0]);
    expect(Buffer.compare(released[3]!, Buffer.from(list[3]!))).toBe(0);
    expect(f.isHeld(unit)).toBe(false);
    expect(f.release(unit)).toEqual([]);
    expect(f.verdictBatch(packets, offsets.subarray(0, 2)).verdicts[0]).toBe(Verdict.FORWARD_TO_OWNER);
    expect(f.stats()).toMatchObject({ heldPackets: 0, heldBytes: 0, holdReleased: 11, holdDrops: 0 });
  });

  it('is bounded per unit, in packets and in bytes; refusals are counted', () => {
    const f = new WorkUnitFilter({ clusterIps: CLUSTER, master: true, hold: { perUnitPackets: 4, totalPackets: 6, totalBytes: 1 << 20 } });
    const { list, unit } = flow(10);
    const { packets, offsets } = packBatch(list);
    f.verdictBatch(packets, offsets);
    expect(f.stats()).toMatchObject({ heldPackets: 4, holdDrops: 6 });
    expect(f.release(unit).map((p) => p[40])).toEqual([0, 1, 2, 3]); // tail drop: the first packets stay

    // global packet cap across units
    const others = Array.from({ length: 8 }, (_, i) => packet(100 + i, 3000 + i).bytes);
    const units = new Set(others.map((p) => (classifyPacket(p, { clusterIps: CLUSTER }) as PacketClassification).unit));
    const ob = packBatch(others);
    f.verdictBatch(ob.packets, ob.offsets);
    expect(f.stats().heldPackets).toBe(Math.min(6, others.length));
    expect(f.stats().holdDrops).toBe(6 + others.length - 6);
    for (const u of units) f.dropHeld(u);
    expect(f.stats()).toMatchObject({ heldPackets: 0, heldBytes: 0, holdDiscarded: 6 });

    // global byte cap
    const g = new WorkUnitFilter({ clusterIps: CLUSTER, master: true, hold: { totalBytes: 100 } });
    g.verdictBatch(packets, offsets); // 44-byte packets: two fit in 100 bytes
    expect(g.stats()).toMatchObject({ heldPackets: 2, heldBytes: 88, holdDrops: 8 });
    expect(g.dropHeld(unit)).toBe(2);
    expect(g.isHeld(unit)).toBe(false);
  });

  it('hold() marks a unit held before any packet; a non-master never holds', () => {
    const f = new WorkUnitFilter({ clusterIps: CLUSTER, master: true });
    const { list, unit } = flow(1);
    f.setOwner(unit, 5);
    f.hold(unit);
    expect(f.isHeld(unit)).toBe(true);
    const { packets, offsets } = packBatch(list);
    expect(f.verdictBatch(packets, offsets).verdicts[0]).toBe(Verdict.HOLD);
    const m = new WorkUnitFilter({ clusterIps: CLUSTER, localSlot: 2 });
    expect(m.verdictBatch(packets, offsets).verdicts[0]).toBe(Verdict.DROP);
    expect(m.stats().heldPackets).toBe(0);
  });
});
