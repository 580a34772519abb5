// sdNotify against a real AF_UNIX datagram socket (test/e2e/tools/notify-listener.py, as a service
// manager's notification socket): a path and an abstract '@name'; the errors of a socket nobody listens
// on, an address of another family, one too long; nothing sent without an address.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { NativeCallError, sdNotify } from '../../src/index.js';

const LISTENER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'e2e', 'tools', 'notify-listener.py');
const hasPython = spawnSync('python3', ['-c', 'import socket; socket.AF_UNIX']).status === 0;

const listeners: ChildProcessWithoutNullStreams[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const l of listeners.splice(0)) l.kill();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Starts the listener on `address`; resolves once it is bound, with a function awaiting the next datagram. */
async function listen(address: string): Promise<() => Promise<string>> {
  const p = spawn('python3', [LISTENER, address], { stdio: ['pipe', 'pipe', 'pipe'] });
  listeners.push(p);
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  createInterface({ input: p.stdout }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const l = lines.shift();
      if (l !== undefined) return resolve(l);
      const timer = setTimeout(() => reject(new Error(`no line from the listener in 10 s (stderr: ${stderr})`)), 10_000);
      waiting.push((x) => {
        clearTimeout(timer);
        resolve(x);
      });
    });
  expect(await next()).toBe('listening');
  return async () => (JSON.parse(await next()) as { data: string }).data;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gwc-notify-'));
  dirs.push(d);
  return d;
}

describe.skipIf(!hasPython)('sdNotify', () => {
  it('sends one datagram to a socket path', async () => {
    const path = join(tempDir(), 'notify');
    const next = await listen(path);
    expect(sdNotify('READY=1\nSTATUS=in the cluster', path)).toBe(true);
    expect(await next()).toBe('READY=1\nSTATUS=in the cluster');
    expect(sdNotify('STOPPING=1', path)).toBe(true);
    expect(await next()).toBe('STOPPING=1');
  });

  it("sends to an abstract socket named '@name'", async () => {
    const name = `@gwc-notify-test-${process.pid}-${Date.now()}`;
    const next = await listen(name);
    expect(sdNotify('WATCHDOG=1', name)).toBe(true);
    expect(await next()).toBe('WATCHDOG=1');
  });

  it('reads $NOTIFY_SOCKET by default, and sends nothing without it', async () => {
    const path = join(tempDir(), 'notify');
    const next = await listen(path);
    const saved = process.env.NOTIFY_SOCKET;
    try {
      process.env.NOTIFY_SOCKET = path;
      expect(sdNotify('STATUS=from the environment')).toBe(true);
      expect(await next()).toBe('STATUS=from the environment');
      delete process.env.NOTIFY_SOCKET;
      expect(sdNotify('READY=1')).toBe(false);
      expect(sdNotify('READY=1', '')).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved;
    }
  });

  it('throws a NativeCallError with the system call and code when it cannot send; a bad state is a TypeError', () => {
    const dir = tempDir();
    const fail = (address: string) => {
      try {
        sdNotify('READY=1', address);
      } catch (e) {
        expect(e).toBeInstanceOf(NativeCallError);
        return { syscall: (e as NativeCallError).syscall, code: (e as NativeCallError).code };
      }
      throw new Error(`sdNotify to ${address} did not throw`);
    };
    expect(fail(join(dir, 'nobody-here'))).toEqual({ syscall: 'sendto', code: 'ENOENT' });
    expect(fail(`@gwc-notify-nobody-${process.pid}-${Date.now()}`)).toEqual({ syscall: 'sendto', code: 'ECONNREFUSED' });
    expect(fail('vsock:2:1234')).toEqual({ syscall: 'sd_notify', code: 'EAFNOSUPPORT' });
    expect(fail(`/${'x'.repeat(200)}`)).toEqual({ syscall: 'sd_notify', code: 'ENAMETOOLONG' });
    expect(() => sdNotify('', join(dir, 'x'))).toThrow(TypeError);
    expect(() => sdNotify('ready', join(dir, 'x'))).toThrow(TypeError);
  });
});
