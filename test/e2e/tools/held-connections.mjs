#!/usr/bin/env node
// Long-lived TCP connections to an echo service, driven by commands on stdin (one JSON line each); one
// JSON line answers each command on stdout. Every exchange sends random bytes and checks the echo is
// byte-exact; a reset or any other error is recorded for the connection.
//   {"open": {"target": "192.0.2.101", "port": 7000, "count": 2, "tag": "old"}}  -> {"opened": [{id, tag, target, sport}]}
//   {"exchange": {"tag": "old", "bytes": 4000, "timeoutMs": 20000}}             -> {"exchanged": [{id, ok, error}]}
//   {"close": {"tag": "old", "timeoutMs": 20000}}                             -> {"closed": [{id, ok, error}]}
//   {"report": {}}                                                            -> {"connections": [{id, tag, target, sport, sent, echoed, resets, errors}]}
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

const conns = [];
let nextId = 1;

function open({ target, port, count, tag }) {
  return Promise.all(
    Array.from({ length: count }, () =>
      new Promise((resolve) => {
        const c = { id: nextId++, tag, target, sport: 0, sent: 0, echoed: 0, resets: 0, errors: [], sock: null, pending: null, closed: false };
        const sock = net.connect({ host: target, port });
        c.sock = sock;
        conns.push(c);
        sock.on('connect', () => {
          c.sport = sock.localPort;
          resolve({ id: c.id, tag, target, sport: c.sport });
        });
        sock.on('data', (d) => c.pending?.data(d));
        sock.on('error', (e) => {
          if (e.code === 'ECONNRESET') c.resets++;
          c.errors.push(e.code ?? e.message);
          c.pending?.fail(e.code ?? e.message);
          resolve({ id: c.id, tag, target, sport: c.sport, error: e.code ?? e.message });
        });
        sock.on('end', () => c.pending?.end?.());
        sock.on('close', () => {
          c.closed = true;
          c.pending?.closed?.();
        });
      }),
    ),
  );
}

function exchange(c, bytes, timeoutMs) {
  return new Promise((resolve) => {
    if (c.closed) return resolve({ id: c.id, ok: false, error: 'closed' });
    const payload = randomBytes(bytes);
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => finish(false, `timeout after ${got.length} of ${bytes} bytes`), timeoutMs);
    const finish = (ok, error) => {
      clearTimeout(timer);
      c.pending = null;
      resolve({ id: c.id, ok, ...(error ? { error } : {}) });
    };
    c.pending = {
      data: (d) => {
        got = Buffer.concat([got, d]);
        c.echoed += d.length;
        if (got.length >= bytes) finish(got.length === bytes && got.equals(payload), got.equals(payload.subarray(0, got.length)) ? (got.length === bytes ? undefined : 'too many bytes') : 'bytes differ');
      },
      fail: (e) => finish(false, e),
    };
    c.sent += bytes;
    c.sock.write(payload);
  });
}

function close(c, timeoutMs) {
  return new Promise((resolve) => {
    if (c.closed) return resolve({ id: c.id, ok: c.errors.length === 0, ...(c.errors.length ? { error: c.errors.join(',') } : {}) });
    const timer = setTimeout(() => {
      c.pending = null;
      resolve({ id: c.id, ok: false, error: 'close timed out' });
    }, timeoutMs);
    c.pending = {
      data: () => {},
      fail: (e) => {
        clearTimeout(timer);
        c.pending = null;
        resolve({ id: c.id, ok: false, error: e });
      },
      closed: () => {
        clearTimeout(timer);
        c.pending = null;
        resolve({ id: c.id, ok: c.errors.length === 0, ...(c.errors.length ? { error: c.errors.join(',') } : {}) });
      },
    };
    c.sock.end();
  });
}

const pick = (tag) => conns.filter((c) => tag === undefined || c.tag === tag);

createInterface({ input: process.stdin }).on('line', async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    return;
  }
  let out;
  if (cmd.open) out = { opened: await open(cmd.open) };
  else if (cmd.exchange) out = { exchanged: await Promise.all(pick(cmd.exchange.tag).map((c) => exchange(c, cmd.exchange.bytes ?? 4000, cmd.exchange.timeoutMs ?? 20000))) };
  else if (cmd.close) out = { closed: await Promise.all(pick(cmd.close.tag).map((c) => close(c, cmd.close.timeoutMs ?? 20000))) };
  else out = { connections: conns.map(({ id, tag, target, sport, sent, echoed, resets, errors }) => ({ id, tag, target, sport, sent, echoed, resets, errors })) };
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
process.stdin.on('end', () => process.exit(0));
setTimeout(() => process.exit(3), 600_000).unref();
