// Affinity for the address pool (docs/operator-guide.md, "Affinity"), with a fake kernel: the old owner
// keeps its connections and sends them; the new owner answers only once it has the list and forwards the
// listed connections; forwarding stops when they end; /proc/net/tcp is read right.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HeldAddress } from '@gwcluster/cluster-core';
import type { AffinityFlow, MemberId, PoolAffinity } from '@gwcluster/wire';
import { AFFINITY_POLL_MS, AFFINITY_WAIT_MS, AffinityAddressHolder, parseProcTcp, type AffinityKernel } from '../../src/control/pool-affinity.js';
import type { AddressHolder } from '../../src/control/held-addresses.js';

const A = '192.0.2.101';
const held = (address: string): HeldAddress => ({ address, kind: 'pool', interface: 'eth0' });
const flow = (clientPort: number): AffinityFlow => ({ client: '192.0.2.200', clientPort, port: 7000 });

class FakeLeases implements AddressHolder {
  readonly addresses = new Map<string, string>();
  change(gained: readonly HeldAddress[], lost: readonly HeldAddress[]): void {
    for (const h of lost) this.addresses.delete(h.address);
    for (const h of gained) this.addresses.set(h.address, h.interface ?? 'eth0');
  }
  async releaseAll(): Promise<void> {
    this.addresses.clear();
  }
  held(): ReadonlyMap<string, string> {
    return this.addresses;
  }
}

class FakeKernel implements AffinityKernel {
  readonly drainingSet = new Set<string>();
  readonly conns = new Map<string, AffinityFlow[]>();
  /** address . client port -> MAC */
  readonly forwarded = new Map<string, string>();
  async setup(): Promise<void> {}
  async ensureInterface(): Promise<void> {}
  async draining(address: string, on: boolean): Promise<void> {
    if (on) this.drainingSet.add(address);
    else this.drainingSet.delete(address);
  }
  async connections(address: string): Promise<AffinityFlow[]> {
    return this.conns.get(address) ?? [];
  }
  async forward(address: string, flows: readonly AffinityFlow[], mac: string | null, previous: readonly AffinityFlow[]): Promise<void> {
    for (const f of previous) this.forwarded.delete(`${address}:${f.clientPort}`);
    for (const f of flows) this.forwarded.set(`${address}:${f.clientPort}`, mac!);
  }
  async macOf(member: MemberId): Promise<string | null> {
    return `02:00:00:00:00:${member.split('.')[3]}`;
  }
  async teardown(): Promise<void> {}
}

function member(self: MemberId, sent: { to: MemberId; m: PoolAffinity }[]) {
  const leases = new FakeLeases();
  const kernel = new FakeKernel();
  const holder = new AffinityAddressHolder({
    self,
    inner: leases,
    kernel,
    send: (to, m) => sent.push({ to, m }),
    members: () => ['192.0.2.11', '192.0.2.12', '192.0.2.13'],
    log: () => {},
  });
  return { leases, kernel, holder };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await vi.advanceTimersByTimeAsync(1);
};

describe('address pool affinity', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the old owner keeps serving its connections, the new one answers once it has them and forwards them; both stop when they end', async () => {
    const sent: { to: MemberId; m: PoolAffinity }[] = [];
    const old = member('192.0.2.12', sent);
    const neu = member('192.0.2.13', []);
    await old.holder.start();
    await neu.holder.start();
    old.holder.change([held(A)], [], [{ address: A, from: null, to: '192.0.2.12' }]);
    await settle();
    expect(old.leases.addresses.has(A)).toBe(true);
    old.kernel.conns.set(A, [flow(40001), flow(40002)]);

    // The address moves to .13 (a failback): .13 waits for .12's list before it answers.
    old.holder.change([], [held(A)], [{ address: A, from: '192.0.2.12', to: '192.0.2.13' }]);
    neu.holder.change([held(A)], [], [{ address: A, from: '192.0.2.12', to: '192.0.2.13' }]);
    await settle();
    expect(neu.leases.addresses.has(A)).toBe(false);
    // The old owner: still holds the address, no ARP and no new connections for it, sent its two connections to both others.
    expect(old.leases.addresses.has(A)).toBe(true);
    expect(old.kernel.drainingSet.has(A)).toBe(true);
    expect(sent.map((s) => s.to).sort()).toEqual(['192.0.2.11', '192.0.2.13']);
    const list = sent.find((s) => s.to === '192.0.2.13')!.m;
    expect(list.flows).toEqual([flow(40001), flow(40002)]);

    neu.holder.onMessage('192.0.2.12', list);
    await settle();
    expect(neu.leases.addresses.has(A)).toBe(true);
    expect([...neu.kernel.forwarded]).toEqual([
      [`${A}:40001`, '02:00:00:00:00:12'],
      [`${A}:40002`, '02:00:00:00:00:12'],
    ]);

    // One connection ends: a new list, forwarding follows.
    old.kernel.conns.set(A, [flow(40002)]);
    sent.length = 0;
    await vi.advanceTimersByTimeAsync(AFFINITY_POLL_MS + 5);
    const shorter = sent.find((s) => s.to === '192.0.2.13')!.m;
    expect(shorter.flows).toEqual([flow(40002)]);
    neu.holder.onMessage('192.0.2.12', shorter);
    // A stale (lower serial) list changes nothing.
    neu.holder.onMessage('192.0.2.12', list);
    await settle();
    expect([...neu.kernel.forwarded.keys()]).toEqual([`${A}:40002`]);

    // The last one ends: the old owner lets the address go and says so; forwarding stops.
    old.kernel.conns.set(A, []);
    sent.length = 0;
    await vi.advanceTimersByTimeAsync(AFFINITY_POLL_MS + 5);
    expect(old.leases.addresses.has(A)).toBe(false);
    expect(old.kernel.drainingSet.has(A)).toBe(false);
    const empty = sent.find((s) => s.to === '192.0.2.13')!.m;
    expect(empty.flows).toEqual([]);
    neu.holder.onMessage('192.0.2.12', empty);
    await settle();
    expect(neu.kernel.forwarded.size).toBe(0);
    expect(neu.leases.addresses.has(A)).toBe(true);
  });

  it('an old owner with no connection lets go at once; a new owner that hears nothing answers after the wait; one from a dead owner answers at once', async () => {
    const sent: { to: MemberId; m: PoolAffinity }[] = [];
    const old = member('192.0.2.12', sent);
    await old.holder.start();
    old.holder.change([held(A)], [], []);
    old.holder.change([], [held(A)], [{ address: A, from: '192.0.2.12', to: '192.0.2.13' }]);
    await settle();
    expect(old.leases.addresses.has(A)).toBe(false);
    expect(sent.find((s) => s.to === '192.0.2.13')!.m.flows).toEqual([]);

    const neu = member('192.0.2.13', []);
    await neu.holder.start();
    neu.holder.change([held(A)], [], [{ address: A, from: 'unknown', to: '192.0.2.13' }]);
    await settle();
    expect(neu.leases.addresses.has(A)).toBe(false);
    await vi.advanceTimersByTimeAsync(AFFINITY_WAIT_MS + 5);
    expect(neu.leases.addresses.has(A)).toBe(true);
    expect(neu.holder.counters.waitsTimedOut).toBe(1);

    const survivor = member('192.0.2.11', []);
    await survivor.holder.start();
    survivor.holder.change([held('192.0.2.102')], [], [{ address: '192.0.2.102', from: null, to: '192.0.2.11' }]);
    expect(survivor.leases.addresses.has('192.0.2.102')).toBe(true);
  });

  it('an address that comes back while its old connections are still served is simply held again', async () => {
    const sent: { to: MemberId; m: PoolAffinity }[] = [];
    const old = member('192.0.2.12', sent);
    await old.holder.start();
    old.holder.change([held(A)], [], []);
    old.kernel.conns.set(A, [flow(40001)]);
    old.holder.change([], [held(A)], [{ address: A, from: '192.0.2.12', to: '192.0.2.13' }]);
    await settle();
    expect(old.kernel.drainingSet.has(A)).toBe(true);
    old.holder.change([held(A)], [], [{ address: A, from: '192.0.2.13', to: '192.0.2.12' }]);
    await settle();
    expect(old.kernel.drainingSet.has(A)).toBe(false);
    expect(old.leases.addresses.has(A)).toBe(true);
    expect(sent.at(-1)!.m.flows).toEqual([]);
  });
});

describe('parseProcTcp', () => {
  it('reads the connections to one local address, skipping listeners and TIME-WAIT', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
      '   1: 650200C0:1B58 C80200C0:9C41 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1',
      '   2: 650200C0:1B58 C80200C0:9C42 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1',
      '   3: 660200C0:1B58 C80200C0:9C43 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1',
      '   4: 650200C0:1B58 C80200C0:9C44 08 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1',
    ].join('\n');
    expect(parseProcTcp(text, '192.0.2.101')).toEqual([
      { client: '192.0.2.200', clientPort: 0x9c41, port: 7000 },
      { client: '192.0.2.200', clientPort: 0x9c44, port: 7000 },
    ]);
  });
});
