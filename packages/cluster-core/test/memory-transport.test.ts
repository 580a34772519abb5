import { describe, expect, it } from 'vitest';
import { MemoryNetwork } from '../src/index.js';
import { transportConformance, type TransportFixture } from '../src/testing.js';

const IPS = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];

function fixture(options: ConstructorParameters<typeof MemoryNetwork>[0] = {}): TransportFixture {
  const network = new MemoryNetwork(options);
  const transports = IPS.map((ip) => network.attach(ip));
  return {
    transports,
    addresses: IPS,
    settle: async (done) => {
      // Delivers what is due, then moves the clock on while datagrams are still in flight.
      for (let i = 0; i < 100 && !done(); i++) network.advance(network.pending > 0 ? Math.max(0, network.nextDueAt - network.now) : 1);
      network.flush();
    },
    dispose: async () => {},
  };
}

transportConformance('MemoryTransport', () => fixture(), { describe, it });
transportConformance('MemoryTransport with delay and jitter', () => fixture({ delayMs: 3, jitterMs: 2, seed: 9 }), { describe, it });

describe('MemoryNetwork', () => {
  it('delivers nothing before its time; advance() delivers in time order', () => {
    const net = new MemoryNetwork({ delayMs: 10 });
    const [a, b] = [net.attach('a'), net.attach('b')];
    const got: number[] = [];
    b.onReceive((bytes) => got.push(bytes[0]!));
    a.send('b', Uint8Array.of(1));
    net.advance(5);
    a.send('b', Uint8Array.of(2));
    net.flush();
    expect(got).toEqual([]);
    net.advance(5);
    expect(got).toEqual([1]);
    expect(net.now).toBe(10);
    net.advance(100);
    expect(got).toEqual([1, 2]);
    expect(net.now).toBe(110);
  });

  it('partitions cut delivery until heal(); the drop predicate and inject() bypass', () => {
    const net = new MemoryNetwork();
    const [a, b, c] = [net.attach('a'), net.attach('b'), net.attach('c')];
    const got: string[] = [];
    for (const t of [a, b, c]) t.onReceive((_bytes, from) => got.push(`${from}>${t.ip}`));
    net.partition(['a'], ['b', 'c']);
    a.broadcast(Uint8Array.of(1));
    b.broadcast(Uint8Array.of(1));
    net.flush();
    expect(got).toEqual(['b>c']);
    net.heal();
    net.drop = (d) => d.to === 'c';
    a.broadcast(Uint8Array.of(1));
    net.inject('c', 'a', Uint8Array.of(9));
    net.flush();
    expect(got).toEqual(['b>c', 'a>b', 'c>a']);
    expect(net.wire.map((d) => `${d.from}>${d.to}`)).toEqual(['a>b', 'a>c', 'b>a', 'b>c', 'a>b', 'a>c']);
    expect(net.counters).toEqual({ delivered: 3, lost: 0, dropped: 4 }); // 3 across the partition, 1 by the predicate
  });

  it('seeded loss: the same seed loses the same datagrams, about the given share', () => {
    const run = (seed: number) => {
      const net = new MemoryNetwork({ seed, loss: 0.3 });
      const [a, b] = [net.attach('a'), net.attach('b')];
      const got: number[] = [];
      b.onReceive((bytes) => got.push(bytes[0]! + 256 * bytes[1]!));
      for (let i = 0; i < 2000; i++) a.send('b', Uint8Array.of(i & 255, i >> 8));
      net.flush();
      return got;
    };
    expect(run(4)).toEqual(run(4));
    expect(run(4)).not.toEqual(run(5));
    expect(run(4).length).toBeGreaterThan(1300);
    expect(run(4).length).toBeLessThan(1500);
  });
});
