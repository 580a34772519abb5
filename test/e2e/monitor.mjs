#!/usr/bin/env node
// Watches members' admin APIs from inside the test network and prints one JSON line per poll round:
//   {"t": <wall ms>, "views": {"<ip>": <GET /v1/cluster> | {"error": "..."}}}
// Usage: node monitor.mjs --interval-ms 25 --max-seconds 900 --token T http://192.0.2.11:7401 ...
// Bounded: it stops after --max-seconds, or when its stdin closes (its parent went away).
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { 'interval-ms': { type: 'string', default: '25' }, 'max-seconds': { type: 'string', default: '900' }, token: { type: 'string' } },
  allowPositionals: true,
});
const interval = Number(values['interval-ms']);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
const headers = values.token ? { authorization: `Bearer ${values.token}` } : {};
let stop = false;
process.stdin.on('end', () => (stop = true));
process.stdin.on('close', () => (stop = true));
process.stdin.resume();

async function view(endpoint) {
  try {
    const res = await fetch(new URL('/v1/cluster', endpoint), { headers, signal: AbortSignal.timeout(250) });
    if (!res.ok) return { error: `HTTP ${res.status}` };
    const v = await res.json();
    return { role: v.role, master: v.master, epoch: v.epoch, members: v.members.map((m) => m.id), assigned: v.units.assigned, moving: v.units.moving, owned: v.units.ownedHere, configVersion: v.configVersion };
  } catch (e) {
    return { error: e.cause?.code ?? e.name };
  }
}

while (!stop && Date.now() < deadline) {
  const started = Date.now();
  const results = await Promise.all(positionals.map(view));
  const views = Object.fromEntries(positionals.map((p, i) => [new URL(p).hostname, results[i]]));
  process.stdout.write(`${JSON.stringify({ t: started, views })}\n`);
  const wait = interval - (Date.now() - started);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
process.exit(0);
