#!/usr/bin/env node
// Load on one member's admin API, for test/security/api-load.security.test.ts (and by hand):
// for --seconds, keeps --openapi concurrent GET /openapi.json going, --metrics concurrent authenticated
// GET /metrics, and --slowloris connections that trickle a request head one header line a second (each
// reopened when the server closes it). Prints one JSON line: the outcome of each kind, and the largest
// event-loop lag the member reported in its /metrics answers (gwclusterd_nodejs_eventloop_lag_max_seconds,
// the max since the previous scrape: over all answers, the max over the load).
// Usage: node api-load.mjs --url http://192.0.2.11:7401 --token T [--seconds 5] [--openapi 1000] [--metrics 50] [--slowloris 3000]
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string', default: '' },
    seconds: { type: 'string', default: '5' },
    openapi: { type: 'string', default: '1000' },
    metrics: { type: 'string', default: '50' },
    slowloris: { type: 'string', default: '3000' },
  },
});
const base = new URL(values.url);
const until = Date.now() + Number(values.seconds) * 1000;
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const out = {
  openapi: { ok: 0, status: {}, errors: {} },
  metrics: { ok: 0, status: {}, errors: {}, maxLagMs: 0 },
  slowloris: { opened: 0, closedByServer: 0, heldAtEnd: 0, errors: {} },
};
const bump = (o, k) => (o[k] = (o[k] ?? 0) + 1);

function request(path, headers, kind) {
  return new Promise((resolve) => {
    const req = http.get({ host: base.hostname, port: base.port, path, headers, agent, timeout: 3000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        bump(out[kind].status, res.statusCode);
        if (res.statusCode === 200) out[kind].ok++;
        if (kind === 'metrics' && res.statusCode === 200) {
          const m = /^gwclusterd_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(Buffer.concat(chunks).toString());
          if (m) out.metrics.maxLagMs = Math.max(out.metrics.maxLagMs, Number(m[1]) * 1000);
        }
        resolve();
      });
      res.on('error', (e) => (bump(out[kind].errors, e.code ?? e.message), resolve()));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => (bump(out[kind].errors, e.code ?? e.message), resolve()));
  });
}

async function worker(path, headers, kind) {
  while (Date.now() < until) await request(path, headers, kind);
}

const sockets = new Set();
function slowloris() {
  if (Date.now() >= until) return;
  const s = net.connect({ host: base.hostname, port: Number(base.port) });
  out.slowloris.opened++;
  sockets.add(s);
  let line = 0;
  let timer;
  s.on('connect', () => {
    s.write(`GET /v1/cluster HTTP/1.1\r\nHost: ${base.host}\r\n`);
    timer = setInterval(() => s.write(`X-Slow-${line++}: ${'a'.repeat(8)}\r\n`), 1000);
  });
  s.on('error', (e) => bump(out.slowloris.errors, e.code ?? e.message));
  s.on('close', () => {
    clearInterval(timer);
    sockets.delete(s);
    if (Date.now() < until) {
      out.slowloris.closedByServer++;
      setTimeout(slowloris, 50);
    }
  });
}

const auth = values.token ? { authorization: `Bearer ${values.token}` } : {};
for (let i = 0; i < Number(values.slowloris); i++) slowloris();
const jobs = [];
for (let i = 0; i < Number(values.openapi); i++) jobs.push(worker('/openapi.json', {}, 'openapi'));
for (let i = 0; i < Number(values.metrics); i++) jobs.push(worker('/metrics', auth, 'metrics'));
await Promise.all(jobs);
out.slowloris.heldAtEnd = sockets.size;
for (const s of sockets) s.destroy();
// One more scrape after the load: the lag since the last scrape during it.
await request('/metrics', auth, 'metrics');
console.log(JSON.stringify(out));
process.exit(0);
