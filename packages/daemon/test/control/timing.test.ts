import { describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { IoFirstTicker, LogThrottle, tickPeriodMs } from '../../src/control/timing.js';

describe('driver timing', () => {
  it('ticks every tenth of the keepalive period, never more often than every 5 ms', () => {
    expect(tickPeriodMs(100)).toBe(10);
    expect(tickPeriodMs(1005)).toBe(100);
    expect(tickPeriodMs(20)).toBe(2);
    expect(tickPeriodMs(10)).toBe(2);
  });

  it('lets one line per key through per period', () => {
    const t = new LogThrottle(5000);
    expect(t.allow('bad-signature', 0)).toBe(true);
    expect(t.allow('bad-signature', 4999)).toBe(false);
    expect(t.allow('replayed', 4999)).toBe(true);
    expect(t.allow('bad-signature', 5000)).toBe(true);
  });
});

describe('IoFirstTicker: the tick after the datagrams already waiting', () => {
  it('runs the tick after datagrams that arrived while the event loop was busy (a real socket)', async () => {
    const rx = createSocket('udp4');
    const tx = createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
    const port = rx.address().port;
    let received = 0;
    rx.on('message', () => received++);
    const seenAtTick: number[] = [];
    const ticker = new IoFirstTicker(() => seenAtTick.push(received), () => received);
    try {
      // Sent, then the loop is busy for 300 ms while the tick timer comes due: the datagrams are in the
      // socket buffer when the timer fires, unread.
      const sent = 40;
      await Promise.all(Array.from({ length: sent }, (_, i) => new Promise<void>((r) => tx.send(Buffer.from([i]), port, '127.0.0.1', () => r()))));
      const direct: number[] = [];
      await new Promise<void>((resolve) => {
        setTimeout(() => {
          direct.push(received); // what a plain timer tick would see
          ticker.request();
          // Until the tick ran (bounded): on a loaded machine it may take more than a few ms.
          const deadline = performance.now() + 5000;
          const poll = () => (seenAtTick.length > 0 || performance.now() > deadline ? resolve() : setTimeout(poll, 5));
          setTimeout(poll, 5);
        }, 1);
        const until = performance.now() + 300;
        while (performance.now() < until) {
          /* a busy event loop */
        }
      });
      expect(direct).toEqual([0]);
      expect(seenAtTick).toEqual([sent]);
    } finally {
      rx.close();
      tx.close();
    }
  });

  it('defers again while reads go on, at most maxRounds times; requests before the tick make one tick', () => {
    const queue: (() => void)[] = [];
    let io = 0;
    let ticks = 0;
    const ticker = new IoFirstTicker(() => ticks++, () => io, (run) => queue.push(run), 3);
    ticker.request();
    ticker.request();
    // A flood: every I/O round reads something.
    for (let i = 0; i < 10 && queue.length > 0; i++) {
      io++;
      queue.shift()!();
    }
    expect(ticks).toBe(1);
    expect(queue).toHaveLength(0);
    // A quiet round: the tick runs at the first deferral.
    ticker.request();
    queue.shift()!();
    expect(ticks).toBe(2);
  });
});
