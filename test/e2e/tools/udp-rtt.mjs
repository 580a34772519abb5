// UDP round trips, one at a time: sends `--count` datagrams from one socket (one flow) to an echo
// service and prints {"sent","received","p50Us","p99Us","maxUs"} as one JSON line. A datagram not back
// within `--timeout-ms` counts as lost. Used by scripts/bench.mjs (added latency through the cluster).
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    port: { type: 'string', default: '7001' },
    count: { type: 'string', default: '2000' },
    'timeout-ms': { type: 'string', default: '200' },
  },
});
if (!values.target) throw new Error('--target is required');
const count = Math.max(1, Math.min(100_000, Number(values.count)));
const timeoutMs = Math.max(1, Math.min(10_000, Number(values['timeout-ms'])));
const port = Number(values.port);
const sock = createSocket('udp4');
await new Promise((r) => sock.bind(0, r));
const rtts = [];
let waiting = null;
sock.on('message', (msg) => {
  if (waiting && msg.length >= 4 && msg.readUInt32BE(0) === waiting.seq) waiting.done(process.hrtime.bigint());
});
for (let seq = 1; seq <= count; seq++) {
  const buf = Buffer.alloc(64);
  buf.writeUInt32BE(seq, 0);
  const t0 = process.hrtime.bigint();
  const back = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    waiting = { seq, done: (t) => (clearTimeout(timer), resolve(t)) };
    sock.send(buf, port, values.target);
  });
  waiting = null;
  if (back !== null) rtts.push(Number(back - t0) / 1000);
}
sock.close();
rtts.sort((a, b) => a - b);
const q = (p) => (rtts.length ? Math.round(rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))]) : null);
process.stdout.write(`${JSON.stringify({ sent: count, received: rtts.length, p50Us: q(0.5), p99Us: q(0.99), maxUs: rtts.length ? Math.round(rtts.at(-1)) : null })}\n`);
