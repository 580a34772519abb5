import { describe, expect, it } from 'vitest';
import { decodeClusterMessage, encodeClusterMessage, type SessionRecord, type StateAck, type StateSync } from '@gwcluster/wire';
import { DEFAULT_REPLICATOR_CONFIG, Replicator, type LocalRecord, type ReplicatorEffect } from '../src/index.js';

const A = '192.0.2.11';
const B = '192.0.2.12';
const C = '192.0.2.13';

function rec(id: number, version: number, removed = false): LocalRecord {
  const key = new Uint8Array(16);
  new DataView(key.buffer).setUint32(0, id);
  const state = removed ? new Uint8Array(0) : new Uint8Array(96).fill(version & 255);
  return { key, version, state, removed };
}

function keyOf(r: { key: Uint8Array }): number {
  return new DataView(r.key.buffer, r.key.byteOffset).getUint32(0);
}

/** Replicators on a lossy in-memory network; every message goes through the codec. */
class Net {
  now = 0;
  readonly nodes = new Map<string, Replicator>();
  /** What each node installed: key -> highest version (a removal deletes). */
  readonly tables = new Map<string, Map<number, number>>();
  readonly owned = new Map<string, LocalRecord[]>();
  readonly effects: { at: number; node: string; effect: ReplicatorEffect }[] = [];
  private queue: { at: number; to: string; from: string; bytes: Uint8Array }[] = [];
  private seed = 7;
  loss = 0;

  rand(): number {
    this.seed = (this.seed * 1103515245 + 12345) >>> 0;
    return this.seed / 2 ** 32;
  }

  add(id: string, overrides: Partial<typeof DEFAULT_REPLICATOR_CONFIG> = {}): Replicator {
    const r = new Replicator({ ...DEFAULT_REPLICATOR_CONFIG, ...overrides, self: id });
    this.nodes.set(id, r);
    this.tables.set(id, new Map());
    this.owned.set(id, []);
    return r;
  }

  step(id: string, event: Parameters<Replicator['step']>[0]): void {
    for (const e of this.nodes.get(id)!.step(event)) {
      this.effects.push({ at: this.now, node: id, effect: e });
      if (e.type === 'send') {
        if (this.rand() < this.loss) continue;
        this.queue.push({ at: this.now + 1 + this.rand(), to: e.to, from: id, bytes: encodeClusterMessage(e.message) });
      } else if (e.type === 'install') {
        const t = this.tables.get(id)!;
        for (const r of e.records) {
          const k = keyOf(r);
          if ((t.get(k) ?? -1) >= r.version) continue;
          if (r.removed) t.delete(k);
          else t.set(k, r.version);
        }
      } else if (e.type === 'need-snapshot') {
        this.step(id, { type: 'snapshot-records', now: this.now, peer: e.peer, records: this.owned.get(id)! });
      }
    }
  }

  run(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += 10;
      this.queue.sort((a, b) => a.at - b.at);
      while (this.queue.length > 0 && this.queue[0]!.at <= this.now) {
        const d = this.queue.shift()!;
        const m = decodeClusterMessage(d.bytes);
        if (!m.ok) throw new Error(m.error.message);
        if (this.nodes.has(d.to)) this.step(d.to, { type: 'message', now: this.now, from: d.from, message: m.value as StateSync | StateAck });
      }
      for (const id of this.nodes.keys()) this.step(id, { type: 'tick', now: this.now });
    }
  }

  change(id: string, records: LocalRecord[]): void {
    const mine = this.owned.get(id)!;
    for (const r of records) {
      const i = mine.findIndex((x) => keyOf(x) === keyOf(r));
      if (r.removed) {
        if (i >= 0) mine.splice(i, 1);
      } else if (i >= 0) mine[i] = r;
      else mine.push(r);
    }
    this.step(id, { type: 'local-changes', now: this.now, records });
  }
}

describe('state replication', () => {
  it('every member ends with every other member\'s sessions at their latest version, through 20 % loss', () => {
    const net = new Net();
    net.loss = 0.2;
    for (const id of [A, B, C]) net.add(id);
    for (const id of [A, B, C]) net.step(id, { type: 'peers', now: 0, peers: [A, B, C] });
    net.change(A, Array.from({ length: 500 }, (_, i) => rec(i, 1)));
    net.change(B, Array.from({ length: 300 }, (_, i) => rec(10_000 + i, 1)));
    net.run(200);
    // More changes while earlier ones are in flight, and removals.
    net.change(A, Array.from({ length: 500 }, (_, i) => rec(i, 2)));
    net.change(A, Array.from({ length: 50 }, (_, i) => rec(i, 3, true)));
    net.run(5000);
    for (const id of [B, C]) {
      const t = net.tables.get(id)!;
      for (let i = 0; i < 50; i++) expect(t.has(i)).toBe(false);
      for (let i = 50; i < 500; i++) expect(t.get(i)).toBe(2);
    }
    for (const id of [A, C]) for (let i = 0; i < 300; i++) expect(net.tables.get(id)!.get(10_000 + i)).toBe(1);
    expect(net.nodes.get(A)!.backlog()).toBe(0);
  });

  it('coalesces: many changes of one session while a message is in flight cost few records', () => {
    const net = new Net();
    for (const id of [A, B]) net.add(id);
    for (const id of [A, B]) net.step(id, { type: 'peers', now: 0, peers: [A, B] });
    for (let v = 1; v <= 1000; v++) net.change(A, [rec(1, v)]);
    net.run(1000);
    expect(net.tables.get(B)!.get(1)).toBe(1000);
    expect(net.nodes.get(A)!.counters.recordsSent).toBeLessThanOrEqual(2);
  });

  it('a joiner is ready only after every existing member sent its snapshot', () => {
    const net = new Net();
    net.loss = 0.1;
    for (const id of [A, B]) net.add(id);
    for (const id of [A, B]) net.step(id, { type: 'peers', now: 0, peers: [A, B] });
    net.change(A, Array.from({ length: 200 }, (_, i) => rec(i, 1)));
    net.change(B, Array.from({ length: 200 }, (_, i) => rec(1000 + i, 1)));
    net.run(3000);
    net.add(C);
    net.step(C, { type: 'peers', now: net.now, peers: [A, B, C] });
    expect(net.nodes.get(C)!.ready).toBe(false);
    for (const id of [A, B]) net.step(id, { type: 'peers', now: net.now, peers: [A, B, C] });
    const t0 = net.now;
    let readyAt = -1;
    for (let i = 0; i < 500 && readyAt < 0; i++) {
      net.run(10);
      if (net.nodes.get(C)!.ready) readyAt = net.now;
    }
    expect(readyAt).toBeGreaterThan(t0);
    // Ready means: every session is there.
    expect(net.tables.get(C)!.size).toBe(400);
  });

  it('a lone first member is ready at once', () => {
    const net = new Net();
    net.add(A);
    net.step(A, { type: 'peers', now: 0, peers: [A] });
    expect(net.effects.some((e) => e.node === A && e.effect.type === 'ready')).toBe(true);
  });

  it('hand-over reports done only when the new owner acknowledged the sessions; a dead receiver ends it incomplete', () => {
    const net = new Net();
    net.loss = 0.3;
    for (const id of [A, B, C]) net.add(id);
    for (const id of [A, B, C]) net.step(id, { type: 'peers', now: 0, peers: [A, B, C] });
    net.run(500);
    const records = Array.from({ length: 100 }, (_, i) => rec(i, 5));
    net.step(A, { type: 'handover', now: net.now, id: 1, to: B, records });
    net.run(3000);
    const done = net.effects.find((e) => e.node === A && e.effect.type === 'handover-done');
    expect(done?.effect).toEqual({ type: 'handover-done', id: 1, complete: true });
    for (let i = 0; i < 100; i++) expect(net.tables.get(B)!.get(i)).toBe(5);
    net.nodes.delete(C); // C dies: its messages go nowhere
    net.step(A, { type: 'handover', now: net.now, id: 2, to: C, records });
    net.step(A, { type: 'peers', now: net.now, peers: [A, B] });
    expect(net.effects.filter((e) => e.node === A && e.effect.type === 'handover-done').at(-1)?.effect).toEqual({ type: 'handover-done', id: 2, complete: false });
  });

  it('keeps each message under the size limit and respects the rate limit', () => {
    const net = new Net();
    for (const id of [A, B]) net.add(id, { maxBytesPerSecond: 100_000 });
    for (const id of [A, B]) net.step(id, { type: 'peers', now: 0, peers: [A, B] });
    net.change(A, Array.from({ length: 2000 }, (_, i) => rec(i, 1)));
    net.run(1000);
    const sent = net.effects.filter((e) => e.node === A && e.effect.type === 'send' && e.effect.message.type === 'state-sync');
    for (const s of sent) {
      const m = (s.effect as { message: StateSync }).message;
      expect(m.records.reduce((a, r: SessionRecord) => a + r.key.length + r.state.length + 16, 0)).toBeLessThanOrEqual(1200);
    }
    // 1 s at 100 kB/s (plus the initial burst of 10 kB) moves about 110 kB of 256 kB.
    const bytes = net.nodes.get(A)!.counters.bytesSent;
    expect(bytes).toBeLessThan(125_000);
    expect(bytes).toBeGreaterThan(90_000);
    net.run(3000);
    expect(net.tables.get(B)!.size).toBe(2000);
  });
});

describe('snapshot ordering', () => {
  it('a snapshot that arrives before the joiner knows its peers still counts', () => {
    const net = new Net();
    for (const id of [A, B]) net.add(id);
    net.step(A, { type: 'peers', now: 0, peers: [A] });
    net.change(A, Array.from({ length: 10 }, (_, i) => rec(i, 1)));
    // A learns of B first and sends B its snapshot; B hears of its peers only afterwards.
    net.step(A, { type: 'peers', now: 0, peers: [A, B] });
    net.run(300);
    expect(net.tables.get(B)!.size).toBe(10);
    expect(net.nodes.get(B)!.ready).toBe(false);
    net.step(B, { type: 'peers', now: net.now, peers: [A, B] });
    expect(net.nodes.get(B)!.ready).toBe(true);
  });
});
