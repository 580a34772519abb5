/**
 * The simulator's plane seam (SimPlane): planes see messages before the core and may consume them, hear
 * the core's effects and every step, take hand-overs over, and act through ctx.emit in virtual time.
 */
import { describe, expect, it } from 'vitest';
import { encodeClusterMessage, type ClusterMessage, type MemberId, type WorkUnit } from '@gwcluster/wire';
import { SimNetwork, type SimPlane } from '../src/index.js';

const ip = (i: number) => `192.0.2.${i}`;

/** Answers each hand-over 30 ms after it was asked, from its tick; consumes config-status messages. */
function recordingPlane(log: string[]): SimPlane {
  const pending: { requestId: number; at: number }[] = [];
  return {
    name: 'recorder',
    message: (ctx, from, message: ClusterMessage) => {
      if (message.type !== 'config-status') return false;
      log.push(`${ctx.now} consumed config-status ${message.version} from ${from}`);
      return true;
    },
    coreEffect: (ctx, effect) => {
      if (effect.type === 'role') log.push(`${ctx.now} role ${effect.role}`);
    },
    handover: (ctx, requestId, units: readonly WorkUnit[], to: MemberId | '') => {
      log.push(`${ctx.now} handover ${requestId} of ${units.length} units to ${to}`);
      pending.push({ requestId, at: ctx.now + 30 });
    },
    tick: (ctx) => {
      while (pending.length > 0 && pending[0]!.at <= ctx.now) {
        const { requestId } = pending.shift()!;
        ctx.emit({ type: 'note', text: `done ${requestId}` });
        ctx.emit({ type: 'core', event: { type: 'handover-done', requestId } });
      }
    },
  };
}

describe('SimPlane seam', () => {
  it('a plane takes the hand-over: WORK ACK waits for its handover-done, emitted in virtual time', () => {
    const logs = new Map<MemberId, string[]>();
    const net = new SimNetwork({ seed: 5, latencyMs: 1, jitterMs: 0, coreOverrides: { handoverBeforeAck: true }, planes: (id) => [recordingPlane(logs.set(id, []).get(id)!)] });
    for (const i of [11, 12]) net.add(ip(i));
    for (const i of [11, 12]) net.start(ip(i));
    expect(net.runUntil(() => net.converged(2), 10_000)).not.toBeNull();
    expect(logs.get(ip(11))).toContain('200 role master');
    net.event(ip(11), { type: 'drain', member: ip(12) });
    net.run(20);
    // Asked, not yet answered: the master still waits for the WORK ACK.
    const member = logs.get(ip(12))!;
    expect(member.some((l) => / handover \d+ of 512 units to 192\.0\.2\.11$/.test(l))).toBe(true);
    expect(net.node(ip(11)).member.owned.size).toBe(512);
    net.run(100);
    expect(net.node(ip(11)).member.owned.size).toBe(1024);
    const trace = net.node(ip(12)).trace;
    const done = trace.findIndex((t) => t.plane === 'recorder' && t.effect.type === 'note');
    const ack = trace.findLastIndex((t) => t.plane === undefined && t.effect.type === 'send' && t.effect.message.type === 'work-ack');
    expect(done).toBeGreaterThanOrEqual(0);
    expect(ack).toBeGreaterThan(done);
  });

  it('a plane that consumes a message kind keeps it from the core', () => {
    const log: string[] = [];
    const net = new SimNetwork({ seed: 6, latencyMs: 1, jitterMs: 0, planes: (id) => (id === ip(12) ? [recordingPlane(log)] : []) });
    for (const i of [11, 12]) net.add(ip(i));
    for (const i of [11, 12]) net.start(ip(i));
    net.run(10);
    const before = net.node(ip(12)).member.counters['rx.config-status'] ?? 0;
    net.node(ip(11)).transport.send(ip(12), encodeStatus());
    net.run(5);
    expect(log.some((l) => l.includes('consumed config-status 7 from 192.0.2.11'))).toBe(true);
    expect(net.node(ip(12)).member.counters['rx.config-status'] ?? 0).toBe(before);
  });
});

function encodeStatus(): Uint8Array {
  return encodeClusterMessage({ type: 'config-status', version: 7 });
}
