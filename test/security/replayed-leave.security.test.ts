// Issue 10, defect 1, on real namespaces: a `gwctl leave` forwarded by one member to another is captured
// on the segment and sent 3.5 s later to the master from the forwarding member's address. The master must
// stay master and the cluster keep one master (before recipient binding, the master left the cluster).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, decodeSignedMessage, type SignedMessage } from '@gwcluster/wire';
import { ClusterFixture, healthy } from '../e2e/cluster-fixture.mjs';
import { senderScript, startCapture } from './attacker.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];

function signedOf(payload: Uint8Array): SignedMessage | null {
  const e = decodeEnvelope(payload);
  if (!e.ok) return null;
  const s = decodeSignedMessage(e.value.signed);
  return s.ok ? s.value : null;
}

describe('a captured unicast replayed to another member', () => {
  let f: ClusterFixture;
  /** The captured OPERATOR REQUEST leave: datagram, forwarder and target. */
  let captured: { payload: Uint8Array; forwarder: string; target: string } | undefined;

  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3 });
    f.startMonitor(50);
    f.startAll();
    await f.waitForView((v) => healthy(v, M), { what: 'a healthy three-member cluster', timeoutMs: 20_000 });
  }, 60_000);

  afterAll(async () => {
    await f?.destroy();
  });

  it('a gwctl leave forwarded to a member, replayed to the master from the forwarder 3.5 s later: the master stays master', async () => {
    const master = f.latest()!.views[M[0]!]!.master!;
    const [forwarder, target] = M.filter((ip) => ip !== master) as [string, string];
    const capture = await startCapture(f.member(forwarder).host, `udp and src host ${forwarder} and dst host ${target} and dst port 7400`, { name: 'leave' });
    const left = await f.gwctl(['leave', target], { endpoint: `http://${forwarder}:7401` });
    expect(left.code, left.stderr).toBe(0);
    await f.waitForView((v) => v[target]?.role === 'left', { what: `${target} out of the cluster` });
    const datagrams = await capture.stop();
    const leave = datagrams.find((d) => {
      const s = signedOf(d.payload);
      return s?.message.type === 'operator-request' && s.message.action === 'leave';
    });
    expect(leave, `no OPERATOR REQUEST leave among ${datagrams.length} captured datagrams`).toBeDefined();
    expect(signedOf(leave!.payload)?.recipient).toBe(target);
    captured = { payload: leave!.payload, forwarder, target };
    await f.waitForView((v) => healthy(v, [master, forwarder]), { what: 'the two remaining members healthy' });

    // 3.5 s after the capture, from the forwarder's own address (the source the master expects).
    const wait = leave!.t + 3500 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = Date.now();
    const sent = await f.member(forwarder).host.exec([process.execPath, '-e', senderScript({ payloads: [leave!.payload], from: forwarder, to: master, count: 3, rate: 10 })]);
    expect(sent.code, sent.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 4000));
    const after = f.samples.filter((s) => s.t >= t0);
    expect(after.length).toBeGreaterThan(20);
    for (const s of after) {
      expect(s.views[master]!.role, `at ${s.t - t0} ms`).toBe('master');
      const masters = [master, forwarder].filter((ip) => s.views[ip]!.role === 'master');
      expect(masters).toEqual([master]);
    }
    const status = JSON.parse((await f.gwctl(['status', '--json'], { endpoint: `http://${master}:7401` })).stdout);
    expect(status.cluster.counters['node.drop.wrong-recipient']).toBeGreaterThanOrEqual(1);

    // The target comes back when asked.
    const joined = await f.gwctl(['join', target], { endpoint: `http://${forwarder}:7401` });
    expect(joined.code, joined.stderr).toBe(0);
    await f.waitForView((v) => healthy(v, M), { since: Date.now(), what: 'all three members back', timeoutMs: 20_000 });
  });

  it('the same leave replayed to its own recipient after that member restarted: the new process refuses it (stale-recipient) and stays', async () => {
    expect(captured, 'the first test captured a leave').toBeDefined();
    const { payload, forwarder, target } = captured!;
    // The forwarder knew the target's process when it sealed the request.
    expect(signedOf(payload)?.recipientIncarnation ?? 0).toBeGreaterThan(0);
    const old = f.procs.get(target)!;
    const exited = new Promise((r) => old.once('exit', r));
    f.signal(target, 'SIGTERM');
    await exited;
    const t1 = Date.now();
    f.start(target);
    await f.waitForView((v) => healthy(v, M), { since: t1 + 200, what: `${target} back in the cluster as a new process`, timeoutMs: 20_000 });
    const t0 = Date.now();
    const sent = await f.member(forwarder).host.exec([process.execPath, '-e', senderScript({ payloads: [payload], from: forwarder, to: target, count: 3, rate: 10 })]);
    expect(sent.code, sent.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 2000));
    const after = f.samples.filter((s) => s.t >= t0);
    expect(after.length).toBeGreaterThan(10);
    for (const s of after) expect(['member', 'master'], `${target} at ${s.t - t0} ms`).toContain(s.views[target]!.role);
    expect(f.logLine(target, /leaving the cluster/, t0)).toBeUndefined();
    const status = JSON.parse((await f.gwctl(['status', '--json'], { endpoint: `http://${target}:7401` })).stdout);
    expect(status.cluster.counters['node.drop.stale-recipient']).toBeGreaterThanOrEqual(1);
  });
});
