// MASTER KEEPALIVE's address pool fields (docs/protocol.md, "Address pool and address takeover"):
// round trip, absent when empty, and every malformed value refused with a reason.
import { describe, expect, it } from 'vitest';
import { UNIT_COUNT, decodeClusterMessage, encodeClusterMessage, type MasterKeepalive } from '../src/index.js';

const members = ['192.0.2.11', '192.0.2.12'].map((member) => ({ member, watchdogPeriods: 6, loss: 0, load: 0 }));
const base: MasterKeepalive = {
  type: 'master-keepalive',
  epoch: 3,
  seq: 9,
  keepalivePeriodMs: 40,
  configVersion: 2,
  members,
  table: { version: 1, owners: new Array(UNIT_COUNT).fill('192.0.2.11') },
  successor: '192.0.2.12',
};

function roundTrip(m: MasterKeepalive) {
  return decodeClusterMessage(encodeClusterMessage(m));
}

describe('MasterKeepalive pool_owners and takeovers', () => {
  it('round-trips owners by slot and takeovers; both absent when empty, and the bytes unchanged', () => {
    const m: MasterKeepalive = { ...base, poolOwners: ['192.0.2.12', null, '192.0.2.11'], takeovers: [{ member: '192.0.2.13', holder: '192.0.2.11' }] };
    const d = roundTrip(m);
    expect(d.ok && d.value).toEqual(m);
    const plain = roundTrip(base);
    expect(plain.ok && plain.value).toEqual(base);
    expect(encodeClusterMessage({ ...base, poolOwners: [], takeovers: [] })).toEqual(encodeClusterMessage(base));
  });

  it.each([
    ['a holder that is not a member', { takeovers: [{ member: '192.0.2.13', holder: '192.0.2.99' }] }, /holder 192\.0\.2\.99 is not among the members/],
    ['a taken-over member that is a member', { takeovers: [{ member: '192.0.2.12', holder: '192.0.2.11' }] }, /is a member/],
    ['a member taken over twice', { takeovers: [{ member: '192.0.2.13', holder: '192.0.2.11' }, { member: '192.0.2.13', holder: '192.0.2.12' }] }, /twice/],
    ['a holder that is no address', { takeovers: [{ member: '192.0.2.13', holder: 'x' }] }, /not a dotted-quad/],
  ])('refuses %s', (_what, extra, reason) => {
    const d = roundTrip({ ...base, ...(extra as Partial<MasterKeepalive>) });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error.message).toMatch(reason);
  });

  it('refuses a pool slot beyond the members and more than 64 pool owners', () => {
    // Slots are computed from members at encoding: an owner that is not a member becomes slot 0 (none)...
    const unknown = roundTrip({ ...base, poolOwners: ['192.0.2.99'] });
    expect(unknown.ok && (unknown.value as MasterKeepalive).poolOwners).toEqual([null]);
    // ...and a list longer than the limit is refused.
    const many = roundTrip({ ...base, poolOwners: new Array(65).fill('192.0.2.11') });
    expect(many.ok).toBe(false);
    if (!many.ok) expect(many.error.code).toBe('limit');
  });
});

describe('PoolAffinity', () => {
  it('round-trips the connections (8 bytes each) and an empty list', () => {
    const m = { type: 'pool-affinity' as const, address: '192.0.2.101', serial: 7, flows: [{ client: '203.0.113.9', clientPort: 40001, port: 7 }, { client: '198.51.100.2', clientPort: 1, port: 65535 }] };
    const d = decodeClusterMessage(encodeClusterMessage(m));
    expect(d.ok && d.value).toEqual(m);
    const empty = decodeClusterMessage(encodeClusterMessage({ ...m, flows: [] }));
    expect(empty.ok && empty.value).toEqual({ ...m, flows: [] });
  });

  it('refuses too many connections and an address that is no address', () => {
    const bytes = (flows: number) =>
      encodeClusterMessage({ type: 'pool-affinity', address: '192.0.2.101', serial: 1, flows: Array.from({ length: flows }, (_, i) => ({ client: '203.0.113.9', clientPort: i % 65536, port: 7 })) });
    const tooMany = decodeClusterMessage(bytes(4097));
    expect(!tooMany.ok && tooMany.error.code).toBe('limit');
    const bad = decodeClusterMessage(encodeClusterMessage({ type: 'pool-affinity', address: 'x', serial: 1, flows: [] }));
    expect(!bad.ok && bad.error.message).toMatch(/poolAffinity\.address/);
  });
});
