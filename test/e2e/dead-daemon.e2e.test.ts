// What a member's kernel does with routed traffic while its daemon is dead (method 1, docs/dataplane.md
// "When the daemon dies"): a one-member gateway's daemon is killed with SIGKILL and nobody takes over.
// With dataplane.whenDaemonDies route-established (the default) the kernel keeps routing the connections
// it has seen: 20 paced TCP connections through it complete intact, while a new connection through it is
// refused its SYN (it times out; no reset). With `drop` the same connections stall: the control that
// shows the test can fail.
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterFixture, healthy } from './cluster-fixture.mjs';

const M = ['192.0.2.11'];
const LOCALS = Array.from({ length: 4 }, (_, i) => `198.51.100.${30 + i * 11}`);
const SERVER = '203.0.113.100';
const SOAK = new URL('./tools/soak.mjs', import.meta.url).pathname;
const SECONDS = 6;

interface SoakResult {
  connections: number;
  completed: number;
  failed: number;
  resets: number;
  errors: Record<string, number>;
}

let f: ClusterFixture | undefined;
afterEach(async () => {
  await f?.destroy();
  f = undefined;
});

async function gateway(whenDaemonDies: 'route-established' | 'drop'): Promise<ClusterFixture> {
  const fx = await ClusterFixture.create({ members: 1, layout: 'gateway', method: 'master-forward', clients: 1, extraConfig: { dataplane: { whenDaemonDies } } });
  for (const a of LOCALS) await fx.clients![0]!.addAddress('eth0', `${a}/24`);
  await fx.server!.addAddress('eth0', `${SERVER}/24`);
  for (const m of fx.members) await m.host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
  fx.startMonitor(100);
  fx.startAll();
  await fx.waitForView((v) => healthy(v, M) && v[M[0]!]!.role === 'master', { timeoutMs: 30_000, what: 'a one-member cluster' });
  fx.startEcho(fx.server!, 's1');
  await new Promise((r) => setTimeout(r, 700));
  return fx;
}

function soak(fx: ClusterFixture): Promise<SoakResult> {
  return fx.clients![0]!
    .exec([process.execPath, SOAK, '--targets', SERVER, '--port', '7000', '--connections', '20', '--seconds', String(SECONDS), '--local-addresses', LOCALS.join(','), '--idle-fail-ms', '2500'], { timeoutMs: (SECONDS + 60) * 1000 })
    .then((r) => {
      if (r.code !== 0) throw new Error(`soak failed (${r.code}): ${r.stderr}${r.stdout}`);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as SoakResult;
    });
}

/** One TCP connect from the client to the server, 2 s at most: 'connected', 'reset' or 'timeout'. */
async function connectOnce(fx: ClusterFixture): Promise<string> {
  const js = `const s=require('net').connect({host:'${SERVER}',port:7000,localAddress:'${LOCALS[0]}'});const t=setTimeout(()=>{console.log('timeout');process.exit(0)},2000);s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',(e)=>{console.log(e.code==='ECONNRESET'||e.code==='ECONNREFUSED'?'reset':e.code);process.exit(0)});`;
  const r = await fx.clients![0]!.exec([process.execPath, '-e', js], { timeoutMs: 10_000 });
  return r.stdout.trim();
}

describe('a dead daemon in method 1', () => {
  it('route-established: connections through the dead daemon\'s kernel carry on intact; a new one gets no answer', async () => {
    f = await gateway('route-established');
    expect(await connectOnce(f)).toBe('connected'); // the path works while the daemon lives
    const running = soak(f);
    await new Promise((r) => setTimeout(r, 2000));
    f.kill9(M[0]!);
    await new Promise((r) => setTimeout(r, 500));
    const fresh = await connectOnce(f);
    const result = await running;
    expect(result, JSON.stringify(result)).toMatchObject({ connections: 20, completed: 20, failed: 0, resets: 0 });
    expect(fresh).toBe('timeout');
  }, 60_000);

  it('drop: the same connections stall once the daemon is dead (the control)', async () => {
    f = await gateway('drop');
    const running = soak(f);
    await new Promise((r) => setTimeout(r, 2000));
    f.kill9(M[0]!);
    const result = await running;
    expect(result.failed, JSON.stringify(result)).toBe(20);
    expect(result.resets).toBe(0); // dropped, never answered
  }, 60_000);
});
