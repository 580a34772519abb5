#!/usr/bin/env node
// Drives TCP and UDP flows against an echo service and checks every byte comes back intact.
//   node traffic.mjs --target 198.51.100.10 --tcp-port 7000 --udp-port 7001 --flows 50 --bytes 20000
//                    [--concurrency 20] [--timeout-ms 10000] [--pause-ms 0]
// Prints one JSON line: { tcp: { ok, failed, resets, errors: {...} }, udp: { ok, failed }, flows: [{ sport, ok }] }.
// Bounded: each flow has a timeout; the whole run stops after --max-seconds.
import net from 'node:net';
import dgram from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    'tcp-port': { type: 'string' },
    'udp-port': { type: 'string' },
    flows: { type: 'string', default: '20' },
    bytes: { type: 'string', default: '10000' },
    // TCP: send the first half, wait this long, then the rest (a flow that outlives a slow offload).
    'pause-ms': { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '20' },
    'timeout-ms': { type: 'string', default: '10000' },
    'max-seconds': { type: 'string', default: '120' },
    // Stream mode: N numbered UDP datagrams at RATE per second from one socket; reports which came back.
    stream: { type: 'string' },
    rate: { type: 'string', default: '500' },
  },
});
const target = values.target;
const flows = Number(values.flows);
const bytes = Number(values.bytes);
const pauseMs = Number(values['pause-ms']);
const timeoutMs = Number(values['timeout-ms']);
setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ error: 'max-seconds reached' })}\n`);
  process.exit(2);
}, Number(values['max-seconds']) * 1000).unref();

function tcpFlow() {
  return new Promise((resolve) => {
    const payload = randomBytes(bytes);
    const want = createHash('sha256').update(payload).digest('hex');
    const got = createHash('sha256');
    let received = 0;
    let sport = 0;
    const sock = net.connect({ host: target, port: Number(values['tcp-port']) });
    const done = (result) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ sport, ...result });
    };
    const timer = setTimeout(() => done({ ok: false, error: 'timeout', received }), timeoutMs);
    sock.on('connect', () => {
      sport = sock.localPort;
      if (pauseMs <= 0) {
        sock.end(payload);
        return;
      }
      const half = Math.floor(payload.length / 2);
      sock.write(payload.subarray(0, half));
      setTimeout(() => sock.end(payload.subarray(half)), pauseMs);
    });
    sock.on('data', (d) => {
      received += d.length;
      got.update(d);
    });
    sock.on('end', () => done(received === bytes && got.digest('hex') === want ? { ok: true } : { ok: false, error: 'corrupt', received }));
    sock.on('error', (e) => done({ ok: false, error: e.code ?? e.message, received }));
  });
}

function udpFlow() {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const payload = randomBytes(Math.min(bytes, 1200));
    let tries = 0;
    let sport = 0;
    const done = (ok, error) => {
      clearInterval(timer);
      s.close();
      resolve({ sport, ok, ...(error ? { error } : {}) });
    };
    s.on('message', (m) => done(Buffer.compare(m, payload) === 0, Buffer.compare(m, payload) === 0 ? undefined : 'corrupt'));
    s.bind(0, () => {
      sport = s.address().port;
      const send = () => {
        if (tries++ >= Math.max(3, timeoutMs / 500)) return done(false, 'timeout');
        s.send(payload, Number(values['udp-port']), target);
      };
      send();
      timer = setInterval(send, 500);
    });
    let timer;
  });
}

async function pool(n, fn) {
  const results = [];
  let next = 0;
  const workers = Array.from({ length: Math.min(Number(values.concurrency), n) }, async () => {
    while (next < n) {
      next++;
      results.push(await fn());
    }
  });
  await Promise.all(workers);
  return results;
}

if (values.stream) {
  const n = Number(values.stream);
  const s = dgram.createSocket('udp4');
  const seen = new Set();
  s.on('message', (m) => {
    if (m.length >= 4) seen.add(m.readUInt32BE(0));
  });
  await new Promise((r) => s.bind(0, r));
  const interval = 1000 / Number(values.rate);
  const start = Date.now();
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(i, 0);
    s.send(b, Number(values['udp-port']), target);
    const wait = start + (i + 1) * interval - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const missing = [];
  for (let i = 0; i < n; i++) if (!seen.has(i)) missing.push(i);
  process.stdout.write(`${JSON.stringify({ stream: { sport: s.address().port, sent: n, received: seen.size, missing: missing.slice(0, 100) }, flows: [] })}\n`);
  process.exit(0);
}

const summary = (rs) => ({
  ok: rs.filter((r) => r.ok).length,
  failed: rs.filter((r) => !r.ok).length,
  resets: rs.filter((r) => r.error === 'ECONNRESET' || r.error === 'ECONNREFUSED').length,
  errors: rs.filter((r) => !r.ok).reduce((a, r) => ({ ...a, [r.error]: (a[r.error] ?? 0) + 1 }), {}),
});
const out = {};
const all = [];
if (values['tcp-port']) {
  const rs = await pool(flows, tcpFlow);
  out.tcp = summary(rs);
  all.push(...rs.map((r) => ({ proto: 'tcp', sport: r.sport, ok: r.ok })));
}
if (values['udp-port']) {
  const rs = await pool(flows, udpFlow);
  out.udp = summary(rs);
  all.push(...rs.map((r) => ({ proto: 'udp', sport: r.sport, ok: r.ok })));
}
out.flows = all;
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
