/**
 * transportConformance(): what every Transport guarantees, as one suite that the in-memory transport
 * and the daemon's UDP transport both pass. It takes the test runner's describe/it (so the package does
 * not depend on a test framework) and checks with its own assertions.
 *
 *   transportConformance('MemoryTransport', () => memoryFixture(), { describe, it });
 */
import type { Transport } from './transport.js';

/** Transports attached to one medium, for one test. */
export interface TransportFixture {
  /** At least three transports on one medium; they can reach each other and broadcast to each other. */
  readonly transports: readonly Transport[];
  /** Their addresses, in the same order: what send() takes and the source receivers see. */
  readonly addresses: readonly string[];
  /**
   * Lets datagrams in flight arrive. Resolves once `done()` holds or the medium's patience runs out
   * (a real network: a few hundred ms; a simulated one: when nothing more is due).
   */
  settle(done: () => boolean): Promise<void>;
  /** Releases the medium; closes the transports the test did not close. */
  dispose(): Promise<void>;
}

/** The test runner's registration functions (vitest, node:test, mocha, ...). */
export interface SuiteRunner {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>): void;
}

interface Received {
  readonly bytes: Uint8Array;
  readonly from: string;
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`transport conformance: ${what}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function payload(tag: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (tag * 31 + i * 7) & 255);
}

/** Records what each transport receives; checks the handler is never entered twice at once. */
function listen(f: TransportFixture): Received[][] {
  return f.transports.map((t) => {
    const got: Received[] = [];
    let inside = false;
    t.onReceive((bytes, from) => {
      check(!inside, 'the receive handler was entered while it was running');
      inside = true;
      got.push({ bytes: Uint8Array.from(bytes), from });
      inside = false;
    });
    return got;
  });
}

export function transportConformance(name: string, makeTransports: () => TransportFixture | Promise<TransportFixture>, runner: SuiteRunner): void {
  const withFixture = (body: (f: TransportFixture) => Promise<void>) => async () => {
    const f = await makeTransports();
    check(f.transports.length >= 3 && f.addresses.length === f.transports.length, 'the fixture must give at least three transports and their addresses');
    try {
      await body(f);
    } finally {
      await f.dispose();
    }
  };

  runner.describe(`Transport conformance: ${name}`, () => {
    runner.it(
      'send() delivers to the addressed member only, unaltered, with the sender as source',
      withFixture(async (f) => {
        const got = listen(f);
        const [a, b] = f.addresses as [string, string];
        const small = payload(1, 1);
        const large = payload(2, 1200);
        f.transports[0]!.send(b, small);
        f.transports[0]!.send(b, large);
        await f.settle(() => got[1]!.length >= 2);
        check(got[1]!.length === 2, `the receiver got ${got[1]!.length} datagrams, expected 2`);
        check(got[1]!.every((d) => d.from === a), `source ${got[1]!.map((d) => d.from).join(', ')}, expected ${a}`);
        check(got[1]!.some((d) => sameBytes(d.bytes, small)) && got[1]!.some((d) => sameBytes(d.bytes, large)), 'the bytes arrived altered');
        for (let i = 0; i < got.length; i++) if (i !== 1) check(got[i]!.length === 0, `${f.addresses[i]} received a datagram addressed to ${b}`);
      }),
    );

    runner.it(
      'broadcast() reaches every other member once; the sender sees it at most once, from itself',
      withFixture(async (f) => {
        const got = listen(f);
        const sender = f.addresses[0]!;
        const bytes = payload(3, 64);
        f.transports[0]!.broadcast(bytes);
        await f.settle(() => got.slice(1).every((g) => g.length >= 1));
        for (let i = 1; i < got.length; i++) {
          check(got[i]!.length === 1, `${f.addresses[i]} received the broadcast ${got[i]!.length} times, expected once`);
          check(got[i]![0]!.from === sender && sameBytes(got[i]![0]!.bytes, bytes), `${f.addresses[i]} received it altered or from ${got[i]![0]!.from}`);
        }
        check(got[0]!.length <= 1 && got[0]!.every((d) => d.from === sender), 'the sender received its broadcast more than once or from another source');
      }),
    );

    runner.it(
      'the handler is called once per datagram, never concurrently, and may send from inside',
      withFixture(async (f) => {
        const got = listen(f);
        const [a, b] = f.addresses as [string, string];
        const replies: Received[] = [];
        const inner = f.transports[1]!;
        const record = got[1]!;
        // B answers every datagram from inside its handler.
        let inside = false;
        inner.onReceive((bytes, from) => {
          check(!inside, 'the receive handler was entered while it was running');
          inside = true;
          record.push({ bytes: Uint8Array.from(bytes), from });
          inner.send(from, Uint8Array.of(255, bytes[0]!));
          inside = false;
        });
        f.transports[0]!.onReceive((bytes, from) => replies.push({ bytes: Uint8Array.from(bytes), from }));
        const count = 20;
        for (let i = 0; i < count; i++) f.transports[0]!.send(b, Uint8Array.of(i, 1, 2, 3));
        await f.settle(() => record.length >= count && replies.length >= count);
        check(record.length === count, `${b} handled ${record.length} datagrams, expected ${count}`);
        check(new Set(record.map((d) => d.bytes[0])).size === count, 'a datagram was handled twice or not at all');
        check(replies.length === count && replies.every((d) => d.from === b), `${a} got ${replies.length} answers, expected ${count} from ${b}`);
      }),
    );

    runner.it(
      'after close(), send and broadcast do not throw and nothing more is handed to the handler',
      withFixture(async (f) => {
        const got = listen(f);
        const closed = f.transports[1]!;
        await closed.close();
        f.transports[0]!.send(f.addresses[1]!, payload(4, 8));
        f.transports[0]!.broadcast(payload(5, 8));
        closed.send(f.addresses[0]!, payload(6, 8));
        closed.broadcast(payload(7, 8));
        await f.settle(() => got[2]!.length >= 1);
        check(got[1]!.length === 0, 'a closed transport handed a datagram to its handler');
        check(got[2]!.length === 1, `${f.addresses[2]} received ${got[2]!.length} datagrams, expected the open member's broadcast only`);
      }),
    );

    runner.it(
      'counters: sent counts send() and broadcast() calls, received counts datagrams handed over',
      withFixture(async (f) => {
        const got = listen(f);
        const [a, b] = [f.transports[0]!, f.transports[1]!];
        const sent0 = a.counters['sent'] ?? NaN;
        const received0 = b.counters['received'] ?? NaN;
        a.send(f.addresses[1]!, payload(8, 16));
        a.send(f.addresses[1]!, payload(9, 16));
        a.broadcast(payload(10, 16));
        await f.settle(() => got[1]!.length >= 3 && got[2]!.length >= 1);
        check(a.counters['sent'] === sent0 + 3, `sent went from ${sent0} to ${a.counters['sent']}, expected +3`);
        check(b.counters['received'] === received0 + got[1]!.length, `received went from ${received0} to ${b.counters['received']}, expected +${got[1]!.length}`);
      }),
    );
  });
}
