// The service manager's notifications as the daemon decides them: READY=1 once, when readiness (the
// /readyz definition) first holds; STATUS= on changes; RELOADING=1 / READY=1 around a reload; STOPPING=1;
// WATCHDOG=1 only while live; a failing send logged once; the environment read and cleared.
import { describe, expect, it } from 'vitest';
import { readiness } from '../src/operator/readiness.js';
import { ServiceNotifier, serviceNotifierFromEnv, type NotifierLog } from '../src/service-notify.js';

function harness(opts: { watchdogUsec?: number; failing?: boolean } = {}) {
  const sent: string[] = [];
  const warnings: string[] = [];
  const infos: string[] = [];
  const log: NotifierLog = { info: (m) => infos.push(m), warn: (_f, m) => warnings.push(m) };
  const n = new ServiceNotifier({
    send: (s) => {
      if (opts.failing) throw Object.assign(new Error('sdNotify: sendto to /run/x: Connection refused'), { code: 'ECONNREFUSED' });
      sent.push(s);
    },
    logger: log,
    monotonicUsec: () => 123456789n,
    ...(opts.watchdogUsec !== undefined ? { watchdogUsec: opts.watchdogUsec } : {}),
  });
  const member = { core: { role: 'joining', syncReady: true } };
  const dataPlane = { running: true };
  let live = true;
  const source = { readiness: () => readiness(member, dataPlane), status: () => `${member.core.role}, 3 units`, live: () => live };
  return { n, sent, warnings, infos, member, dataPlane, source, setLive: (v: boolean) => (live = v) };
}

describe('ServiceNotifier', () => {
  it('READY=1 once, when the member is first in a cluster with its state and data plane; STATUS= when the line changes', () => {
    const h = harness();
    h.n.tick();
    expect(h.sent).toEqual(['STATUS=starting: binding the member address and the admin API']);
    h.n.attach(h.source);
    h.n.tick(); // unchanged: nothing new
    expect(h.sent.slice(1)).toEqual(['STATUS=not ready (joining), waiting for: a place in the cluster']);
    h.member.core.role = 'member';
    h.member.core.syncReady = false;
    h.n.tick();
    expect(h.sent.at(-1)).toBe("STATUS=not ready (member), waiting for: the other members' session state");
    h.member.core.syncReady = true;
    h.dataPlane.running = false;
    h.n.tick();
    expect(h.sent.at(-1)).toBe('STATUS=not ready (member), waiting for: the data plane');
    expect(h.sent.some((s) => s.includes('READY=1'))).toBe(false);
    h.dataPlane.running = true;
    h.n.tick();
    expect(h.sent.at(-1)).toBe('READY=1\nSTATUS=ready: member, 3 units');
    expect(h.infos).toHaveLength(1);
    h.n.tick();
    h.member.core.role = 'master';
    h.n.tick();
    h.member.core.role = 'left';
    h.n.tick();
    expect(h.sent.slice(-2)).toEqual(['STATUS=ready: master, 3 units', 'STATUS=not ready (left), waiting for: a place in the cluster']);
    h.member.core.role = 'member';
    h.n.tick();
    expect(h.sent.filter((s) => s.startsWith('READY=1'))).toHaveLength(1);
  });

  it('RELOADING=1 with MONOTONIC_USEC, then READY=1 with the outcome; STOPPING=1 once, and nothing after it', () => {
    const h = harness();
    h.n.attach(h.source);
    h.n.reloading();
    h.n.tick(); // no status while reloading
    h.n.reloaded('reload applied: admin.token');
    expect(h.sent.slice(-2)).toEqual(['RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading the configuration', 'READY=1\nSTATUS=reload applied: admin.token']);
    h.n.stopping('SIGTERM');
    h.n.stopping('SIGTERM');
    h.n.reloading();
    h.n.tick();
    expect(h.sent.at(-1)).toBe('STOPPING=1\nSTATUS=stopping on SIGTERM: leaving the cluster');
    expect(h.sent.filter((s) => s.startsWith('STOPPING=1'))).toHaveLength(1);
  });

  it('WATCHDOG=1 only while live (event loop not stalled)', () => {
    const h = harness({ watchdogUsec: 2_000_000 });
    h.n.attach(h.source);
    h.n.watchdog();
    h.setLive(false);
    h.n.watchdog();
    h.setLive(true);
    h.n.watchdog();
    expect(h.sent.filter((s) => s === 'WATCHDOG=1')).toHaveLength(2);
    expect(h.n.counters.watchdog).toBe(2);
  });

  it('a send that fails is counted and logged once, never thrown', () => {
    const h = harness({ failing: true });
    h.n.attach(h.source);
    h.n.stopping('SIGINT');
    h.n.watchdog();
    expect(h.n.counters.failed).toBe(3);
    expect(h.warnings).toEqual(['cannot notify the service manager ($NOTIFY_SOCKET): sdNotify: sendto to /run/x: Connection refused']);
  });
});

describe('serviceNotifierFromEnv', () => {
  const log: NotifierLog = { info: () => {}, warn: () => {} };

  it('none without NOTIFY_SOCKET; the variables are removed so child commands do not inherit them', () => {
    const env: NodeJS.ProcessEnv = { WATCHDOG_USEC: '1000000', PATH: '/usr/bin' };
    expect(serviceNotifierFromEnv(env, () => {}, log)).toBeNull();
    expect(env).toEqual({ PATH: '/usr/bin' });
  });

  it('sends to the address of NOTIFY_SOCKET; the watchdog only when WATCHDOG_PID is unset or this process', () => {
    const to: string[] = [];
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '@sd-notify', WATCHDOG_USEC: '1000000', WATCHDOG_PID: '42' };
    const mine = serviceNotifierFromEnv(env, (address, state) => to.push(`${address} ${state}`), log, 42)!;
    mine.watchdog();
    expect(to).toEqual(['@sd-notify WATCHDOG=1']);
    expect(env).toEqual({});
    mine.start();
    mine.close();
    // start() with a watchdog sends one at once.
    expect(to).toEqual(['@sd-notify WATCHDOG=1', '@sd-notify WATCHDOG=1']);
    const other = serviceNotifierFromEnv({ NOTIFY_SOCKET: '/run/n', WATCHDOG_USEC: '1000000', WATCHDOG_PID: '7' }, (a, s) => to.push(`${a} ${s}`), log, 42)!;
    other.start();
    other.close();
    expect(to).toHaveLength(2);
  });
});
