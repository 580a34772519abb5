// The heartbeat thread's real-time priority for an unprivileged process, as the packaged unit runs the
// member: a user without CAP_SYS_NICE gets SCHED_FIFO N only when RLIMIT_RTPRIO >= N (the unit's
// LimitRTPRIO=); otherwise the thread runs on with normal scheduling, stats().realtime is false and an
// 'error' event names pthread_setschedparam. Real processes (prlimit + setpriv), read back from /proc.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { livenessAvailable } from '../../src/index.js';

const ADDON = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'index.js')).href;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canRun = livenessAvailable() && process.getuid?.() === 0 && has('prlimit') && has('setpriv');
// Raising the hard RLIMIT_RTPRIO needs CAP_SYS_RESOURCE (systemd has it when it applies LimitRTPRIO=); a
// container may run its root without it, and then only the refusal and the capability can be shown here.
const canRaiseRtprio = canRun && spawnSync('prlimit', ['--rtprio=10:10', 'true']).status === 0;

// Runs in the child as uid 65534 with no capabilities: opens a Liveness asking for `priority`, waits for the
// thread to have decided, prints what it saw (stats, the error event, the threads' policies from /proc).
const CHILD = `
import { readdirSync, readFileSync } from 'node:fs';
const { Liveness } = await import(process.env.ADDON);
const events = [];
const l = new Liveness({ address: '127.0.0.1', port: Number(process.env.PORT), intervalMs: 10, minPeriods: 4, maxPeriods: 20, lossToleranceK: 9000, incarnation: 1, realtimePriority: Number(process.env.PRIORITY), onEvent: (e) => events.push(e) });
const end = Date.now() + 10000;
while (!l.stats().realtime && !events.some((e) => e.type === 'error') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
const threads = readdirSync('/proc/self/task').map((t) => {
  const s = readFileSync('/proc/self/task/' + t + '/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { policy: Number(f[38]), rtPriority: Number(f[37]) };
});
const capEff = /^CapEff:\\s+(\\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1];
console.log(JSON.stringify({ uid: process.getuid(), capEff, realtime: l.stats().realtime, errors: events.filter((e) => e.type === 'error').map((e) => ({ syscall: e.error.syscall, code: e.error.code, message: e.error.message })), threads }));
l.close();
`;

function runUnprivileged(rlimitRtprio: number, priority: number, caps = '-all') {
  const r = spawnSync(
    'prlimit',
    [`--rtprio=${rlimitRtprio}:${rlimitRtprio}`, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', `--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=${caps}`, '--no-new-privs', '--', process.execPath, '--input-type=module', '-e', CHILD],
    { encoding: 'utf8', env: { ...process.env, ADDON, PORT: String(20000 + Math.floor(Math.random() * 30000)), PRIORITY: String(priority) }, timeout: 30_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { uid: number; capEff: string; realtime: boolean; errors: { syscall: string; code: string; message: string }[]; threads: { policy: number; rtPriority: number }[] };
  expect(out.uid).toBe(65534);
  expect(BigInt(`0x${out.capEff}`)).toBe(caps === '-all' ? 0n : CAP_SYS_NICE);
  return out;
}

const SCHED_FIFO = 1;
const CAP_SYS_NICE = 1n << 23n;

describe.skipIf(!canRun)('the heartbeat thread of an unprivileged member', () => {
  it.skipIf(!canRaiseRtprio)('runs SCHED_FIFO 10 with RLIMIT_RTPRIO 10 and no capability; asking above the limit is refused', () => {
    const out = runUnprivileged(10, 10);
    expect(out.errors).toEqual([]);
    expect(out.realtime).toBe(true);
    expect(out.threads.filter((t) => t.policy === SCHED_FIFO)).toEqual([{ policy: SCHED_FIFO, rtPriority: 10 }]);
    const above = runUnprivileged(10, 11);
    expect(above.realtime).toBe(false);
    expect(above.errors).toMatchObject([{ syscall: 'pthread_setschedparam', code: 'EPERM' }]);
  });

  it('without the limit (RLIMIT_RTPRIO 0) and without CAP_SYS_NICE runs with normal scheduling and says so', () => {
    const out = runUnprivileged(0, 10);
    expect(out.realtime).toBe(false);
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]).toMatchObject({ syscall: 'pthread_setschedparam', code: 'EPERM' });
    expect(out.threads.filter((t) => t.policy === SCHED_FIFO)).toEqual([]);
  });

  it('with CAP_SYS_NICE alone (RLIMIT_RTPRIO 0) runs SCHED_FIFO 10', () => {
    const out = runUnprivileged(0, 10, '-all,+sys_nice');
    expect(out.errors).toEqual([]);
    expect(out.realtime).toBe(true);
    expect(out.threads.filter((t) => t.policy === SCHED_FIFO)).toEqual([{ policy: SCHED_FIFO, rtPriority: 10 }]);
  });
});
