// Appliance operations on real namespaces: a member started before its address exists retries the bind
// and joins once the address comes up (instead of exiting 2, which systemd would not restart); /readyz and
// /healthz of a member refused by the master, then in a cluster, then after `gwctl leave`, and what that
// member tells a service manager (Type=notify: READY=1 as /readyz, RELOADING=1, STOPPING=1, WATCHDOG=1) on
// a real AF_UNIX datagram socket ($NOTIFY_SOCKET, tools/notify-listener.py).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/netns.mjs';
import { ClusterFixture } from './cluster-fixture.mjs';

const [M1, M2, M3] = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const NOTIFY_LISTENER = fileURLToPath(new URL('./tools/notify-listener.py', import.meta.url));

describe('bind retry, health endpoints and service manager notifications', () => {
  let f: ClusterFixture;
  let listener: ChildProcessWithoutNullStreams | undefined;
  /** What M2 sent to its $NOTIFY_SOCKET, oldest first. */
  const notes: { t: number; data: string }[] = [];
  const noteIndex = (re: RegExp, from = 0) => notes.findIndex((n, i) => i >= from && re.test(n.data));
  /** Waits for a notification matching `re` at or after index `from`; resolves with its index. */
  const waitNote = async (re: RegExp, from: number, what: string) =>
    (await waitFor(() => (noteIndex(re, from) >= 0 ? { i: noteIndex(re, from) } : undefined), { timeoutMs: 10_000, what: `${M2} tells ${what}` })).i;

  /** GET url from the operator's namespace: HTTP status and parsed body. */
  async function get(url: string): Promise<{ status: number; body: any }> {
    const r = await f.ops.exec(['curl', '-s', '-m', '3', '-w', '\n%{http_code}', url], { timeoutMs: 5000 });
    const lines = r.stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    let body: unknown = null;
    try {
      body = JSON.parse(lines.join('\n'));
    } catch {
      body = lines.join('\n');
    }
    return { status, body };
  }

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3 });
    // The first master refuses M2 (an application's veto), so M2 stays out of the cluster for a while.
    const c1 = JSON.parse(readFileSync(f.member(M1).config, 'utf8'));
    c1.applications = [{ name: 'deny-list', deny: [M2], reason: 'e2e: refused on purpose' }];
    writeFileSync(f.member(M1).config, JSON.stringify(c1));
    // M3 boots before its address exists (a late DHCP lease, a VLAN brought up after the daemon).
    await f.member(M3).host.ip('addr', 'del', `${M3}/24`, 'dev', 'eth0');
    f.startMonitor(100);
    f.start(M1);
    await f.waitForView((v) => v[M1]?.role === 'master', { what: `${M1} master`, timeoutMs: 20_000 });
    f.start(M3);
    // M2 as systemd starts a Type=notify unit with WatchdogSec=1: $NOTIFY_SOCKET and $WATCHDOG_USEC.
    const socket = join(f.net.tmpDir(), 'notify.sock');
    listener = spawn('python3', [NOTIFY_LISTENER, socket], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: listener.stdout });
    const [first] = (await once(lines, 'line')) as [string];
    expect(first).toBe('listening');
    lines.on('line', (l) => notes.push(JSON.parse(l)));
    f.start(M2, { env: { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '1000000' } });
  }, 90_000);

  afterAll(async () => {
    await f?.destroy();
    listener?.kill();
  });

  it('a member whose address is not there yet keeps retrying the bind (logged), and joins once the address is added', async () => {
    await waitFor(() => f.logLine(M3, /EADDRNOTAVAIL \(the address is not on this host yet\); attempt \d+, trying again in \d+ ms/) !== undefined, {
      timeoutMs: 20_000,
      what: `${M3} logs a bind retry`,
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(f.logs.get(M3)!.some((l) => l.exited), JSON.stringify(f.logs.get(M3)!.filter((l) => l.exited))).toBe(false);
    const retries = f.logs.get(M3)!.filter((l) => /trying again in/.test(l.msg ?? ''));
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries[0]).toMatchObject({ level: 40, code: 'EADDRNOTAVAIL', attempt: 1 });
    await f.member(M3).host.ip('addr', 'add', `${M3}/24`, 'dev', 'eth0');
    const joined = await f.waitForView((v) => v[M1]?.members.includes(M3) === true && v[M3]?.role === 'member', { what: `${M3} joins ${M1}`, timeoutMs: 30_000 });
    expect(joined.views[M3]!.master).toBe(M1);
    expect(f.logs.get(M3)!.some((l) => l.exited)).toBe(false);
  }, 90_000);

  it('/readyz is false while refused, true once in a cluster, false after gwctl leave; /healthz is 503 when rejected or left', async () => {
    const base = `http://${M2}:7401`;
    // Refused by the master's application: not ready; healthz not ok while rejected.
    await waitFor(async () => (await get(`${base}/readyz`)).status === 503, { timeoutMs: 20_000, what: `${M2} /readyz answers` });
    const refused = await get(`${base}/readyz`);
    expect(refused.body).toMatchObject({ ready: false, checks: { cluster: false } });
    // No role for anonymous callers.
    expect(refused.body).not.toHaveProperty('role');
    await waitFor(async () => (await get(`${base}/healthz`)).status === 503, { timeoutMs: 20_000, intervalMs: 50, what: `${M2} /healthz 503 while rejected` });
    expect((await get(`${base}/livez`)).status).toBe(200);
    // Refused: the service manager hears it is not ready (and why), and the watchdog, but no READY=1.
    await waitNote(/^STATUS=not ready \(rejected\), waiting for: a place in the cluster$/, 0, 'STATUS=not ready (rejected)');
    await waitFor(() => notes.filter((n) => n.data === 'WATCHDOG=1').length >= 2, { timeoutMs: 10_000, what: `${M2} sends WATCHDOG=1 every WATCHDOG_USEC / 2` });
    expect(noteIndex(/READY=1/)).toBe(-1);
    // The refusing master stops: M2 ends up in a cluster with M3 and becomes ready.
    f.procs.get(M1)!.kill('SIGTERM');
    await waitFor(async () => (await get(`${base}/readyz`)).status === 200, { timeoutMs: 30_000, intervalMs: 200, what: `${M2} ready` });
    const ready = await get(`${base}/readyz`);
    expect(ready.body).toEqual({ ready: true, checks: { cluster: true, state: true, dataplane: true } });
    expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: { ok: true } });
    const readyAt = await waitNote(/^READY=1\n/, 0, 'READY=1');
    expect(notes[readyAt]!.data).toMatch(/^READY=1\nSTATUS=ready: (member \(master 192\.0\.2\.13\)|master), \d+ units, configuration version 1$/);
    // A reload (SIGHUP, systemctl reload): RELOADING=1, then READY=1 again with the outcome.
    f.signal(M2, 'SIGHUP');
    const reloading = await waitNote(/^RELOADING=1\nMONOTONIC_USEC=\d+\n/, readyAt + 1, 'RELOADING=1');
    await waitNote(/^READY=1\nSTATUS=reload applied/, reloading + 1, 'READY=1 after the reload');
    // The operator takes it out: not ready, not healthy.
    const leave = await f.gwctl(['leave', M2], { endpoint: base });
    expect(leave.code, leave.stderr).toBe(0);
    const after = await get(`${base}/readyz`);
    expect(after.status).toBe(503);
    expect(after.body).toMatchObject({ ready: false, checks: { cluster: false } });
    expect(await get(`${base}/healthz`)).toEqual({ status: 503, body: { ok: false } });
    await waitNote(/^STATUS=not ready \(left\)/, readyAt, 'STATUS=not ready (left)');
    // Stopped (systemctl stop: SIGTERM): STOPPING=1, then a clean exit; one READY=1 for the start and one for the reload.
    const exited = once(f.procs.get(M2)!, 'exit');
    f.signal(M2, 'SIGTERM');
    expect((await exited)[0]).toBe(0);
    await waitNote(/^STOPPING=1\nSTATUS=stopping on SIGTERM: leaving the cluster$/, 0, 'STOPPING=1');
    expect(notes.filter((n) => n.data.startsWith('READY=1'))).toHaveLength(2);
  }, 90_000);
});
