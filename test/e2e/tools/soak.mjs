#!/usr/bin/env node
// Long-lived TCP connections that stream data both ways through an echo server and check it.
//   node soak.mjs --target 192.0.2.100 --port 7000 --connections 200 --seconds 15 [--local-addresses a,b,c]
//                 [--chunk 1024] [--interval-ms 50] [--idle-fail-ms 15000]
// Each connection writes a chunk every interval for `seconds`, reads the echo, and at the end compares
// length and SHA-256 of what came back with what it sent. Prints one JSON line:
//   { connections, completed, failed, resets, errors: {...}, maxStallMs: [per connection], ... }
// A connection fails on a reset, an error, corrupt data, or no progress for --idle-fail-ms. Bounded.
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    // Several targets: connection i goes to targets[i % n].
    targets: { type: 'string', default: '' },
    port: { type: 'string', default: '7000' },
    connections: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '15' },
    chunk: { type: 'string', default: '1024' },
    'interval-ms': { type: 'string', default: '50' },
    'idle-fail-ms': { type: 'string', default: '15000' },
    'local-addresses': { type: 'string', default: '' },
  },
});
const N = Number(values.connections);
const durationMs = Number(values.seconds) * 1000;
const chunk = Number(values.chunk);
const every = Number(values['interval-ms']);
const idleFail = Number(values['idle-fail-ms']);
const locals = values['local-addresses'] ? values['local-addresses'].split(',') : [];
const targets = values.targets ? values.targets.split(',') : [values.target];
setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ error: 'hard time limit reached' })}\n`);
  process.exit(2);
}, durationMs + idleFail + 60_000).unref();

function connection(i) {
  return new Promise((resolve) => {
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let sentBytes = 0;
    let gotBytes = 0;
    let lastData = 0;
    let maxStall = 0;
    let finished = false;
    let writer;
    let watchdog;
    const target = targets[i % targets.length];
    const local = locals.length ? locals[Math.floor(i / targets.length) % locals.length] : undefined;
    const opts = { host: target, port: Number(values.port), ...(local ? { localAddress: local } : {}) };
    const sock = net.connect(opts);
    sock.setNoDelay(true);
    const done = (result) => {
      if (finished) return;
      finished = true;
      clearInterval(writer);
      clearInterval(watchdog);
      sock.destroy();
      resolve({ i, local: `${local ?? sock.localAddress}>${target}`, sentBytes, gotBytes, maxStallMs: maxStall, ...result });
    };
    sock.on('connect', () => {
      const start = Date.now();
      lastData = start;
      writer = setInterval(() => {
        if (Date.now() - start >= durationMs) {
          clearInterval(writer);
          sock.end();
          return;
        }
        const b = randomBytes(chunk);
        sent.update(b);
        sentBytes += b.length;
        sock.write(b);
      }, every);
      watchdog = setInterval(() => {
        if (Date.now() - lastData > idleFail) done({ ok: false, error: 'stalled' });
      }, 500);
    });
    sock.on('data', (d) => {
      const now = Date.now();
      if (gotBytes > 0) maxStall = Math.max(maxStall, now - lastData);
      lastData = now;
      gotBytes += d.length;
      got.update(d);
    });
    sock.on('end', () => {
      const ok = gotBytes === sentBytes && got.digest('hex') === sent.digest('hex');
      done(ok ? { ok: true } : { ok: false, error: 'corrupt' });
    });
    sock.on('error', (e) => done({ ok: false, error: e.code ?? e.message }));
  });
}

const results = await Promise.all(Array.from({ length: N }, (_, i) => connection(i)));
const failed = results.filter((r) => !r.ok);
process.stdout.write(
  `${JSON.stringify({
    connections: N,
    completed: results.length - failed.length,
    failed: failed.length,
    resets: failed.filter((r) => r.error === 'ECONNRESET').length,
    errors: failed.reduce((a, r) => ({ ...a, [r.error]: (a[r.error] ?? 0) + 1 }), {}),
    failedLocals: failed.map((r) => r.local),
    stalls: results.map((r) => ({ local: r.local, maxStallMs: r.maxStallMs })),
  })}\n`,
);
process.exit(0);
