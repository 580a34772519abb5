// The operator-plane messages and the new MemberEntry fields through the codec.
import { describe, expect, it } from 'vitest';
import { decodeClusterMessage, encodeClusterMessage, type ClusterMessage } from '@gwcluster/wire';

const enc = new TextEncoder();

describe('operator-plane messages', () => {
  const samples: ClusterMessage[] = [
    { type: 'operator-request', requestId: 1_790_000_000_000_123, action: 'drain', member: '192.0.2.12', payload: new Uint8Array(0) },
    { type: 'operator-request', requestId: 2, action: 'config', member: '', payload: enc.encode('{"changes":{"keepalivePeriodMs":150}}') },
    { type: 'operator-reply', requestId: 2, ok: false, code: 'GW_CONFIG_INVALID', detail: 'cluster.keepalivePeriodMs: must be >= 10', payload: new Uint8Array(0) },
    { type: 'operator-reply', requestId: 3, ok: true, code: '', detail: 'draining 192.0.2.12', payload: enc.encode('{"units":341}') },
    { type: 'config-update', version: 7, clusterConfig: enc.encode('{"keepalivePeriodMs":150}') },
    { type: 'config-status', version: 7 },
  ];
  it('round-trip', () => {
    for (const m of samples) {
      const d = decodeClusterMessage(encodeClusterMessage(m));
      expect(d.ok).toBe(true);
      if (d.ok) expect(d.value).toEqual(m);
    }
  });

  it('refuses an oversized payload and a member that is not an address', () => {
    const big = decodeClusterMessage(encodeClusterMessage({ type: 'config-update', version: 1, clusterConfig: new Uint8Array(9000) }));
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.error.code).toBe('limit');
    const bad = decodeClusterMessage(encodeClusterMessage({ type: 'operator-request', requestId: 1, action: 'leave', member: 'nobody' as never, payload: new Uint8Array(0) }));
    expect(bad.ok).toBe(false);
  });

  it('MASTER KEEPALIVE carries draining and the age of each member\'s last keepalive', () => {
    const m: ClusterMessage = {
      type: 'master-keepalive',
      epoch: 1,
      seq: 1,
      keepalivePeriodMs: 100,
      configVersion: 1,
      members: [
        { member: '192.0.2.11', watchdogPeriods: 2, loss: 0, load: 512 },
        { member: '192.0.2.12', watchdogPeriods: 2, loss: 0, load: 0, draining: true, lastHeardMsAgo: 42 },
      ],
      table: { version: 3, owners: Array.from({ length: 1024 }, (_, u) => (u < 512 ? '192.0.2.11' : null)) },
    };
    const d = decodeClusterMessage(encodeClusterMessage(m));
    expect(d.ok && d.value).toEqual(m);
  });
});
