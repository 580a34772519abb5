import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { UNIT_COUNT, type MemberId } from '@gwcluster/wire';
import { parseMemberConfig } from '../../src/config/config.js';
import { DataPlane, type KernelSetup } from '../../src/dataplane/data-plane.js';
import type { DataPlaneView } from '../../src/dataplane/ownership.js';
import type { PacketPath, PacketPathOptions } from '../../src/dataplane/packet-path.js';

const A = '192.0.2.11';
const B = '192.0.2.12';

/** A packet path that records its calls (the seam a kernel fast path would implement). */
class RecordingPath implements PacketPath {
  readonly calls: string[] = [];
  constructor(readonly opts: PacketPathOptions) {}
  setRole(r: { localSlot: number; master: boolean }) { this.calls.push(`role ${r.master ? 'master' : 'member'}`); }
  setOwner(u: number, s: number) { this.calls.push(`owner ${u} ${s}`); }
  setSlotMac(s: number, mac: string) { this.calls.push(`mac ${s} ${mac}`); }
  hold(u: number) { this.calls.push(`hold ${u}`); }
  release(u: number) { this.calls.push(`release ${u}`); }
  setArpAnswering(on: boolean) { this.calls.push(`arp ${on}`); }
  announce() { this.calls.push('announce'); }
  counters() { return { packets: new Float64Array(UNIT_COUNT), bytes: new Float64Array(UNIT_COUNT) }; }
  attachSessions() {}
  stats() { return {}; }
  close() { this.calls.push('close'); }
}

const kernel: KernelSetup = { ownAddresses: async () => [A], setup: async () => {}, teardown: async () => {} };

function view(owners: Record<number, MemberId>, master = false): DataPlaneView {
  const table: (MemberId | null)[] = new Array(UNIT_COUNT).fill(null);
  for (const [u, m] of Object.entries(owners)) table[Number(u)] = m;
  return { master, owned: new Set(table.flatMap((m, u) => (m === A ? [u] : []))), owners: table, holding: new Set(), members: [A, B] };
}

describe('DataPlane facade', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('carries the policy out on the packet path with real timers: the drain ends after 50 ms', async () => {
    const config = parseMemberConfig({
      cluster: { name: 't', clusterIp: '198.51.100.10' },
      member: { address: A, interface: 'eth0' },
      pki: { certificate: 'x', key: 'x', ca: 'x' },
      dataplane: { interfaces: [{ name: 'eth1', clusterIps: ['198.51.100.10'] }], sessions: { tracking: false } },
      logLevel: 'error',
    }).dataplane!;
    let path: RecordingPath | null = null;
    const submitted: unknown[] = [];
    const dp = new DataPlane({
      config,
      self: A,
      logger: pino({ level: 'silent' }),
      packetPath: (o) => (path = new RecordingPath(o)),
      onUnitNeedsOwner: () => {},
      onLoad: () => {},
      send: () => {},
      submit: (e) => submitted.push(e),
      clock: () => Date.now(),
      kernel,
    });
    await dp.start();
    expect(submitted).toEqual([{ type: 'sync-ready' }]);
    const p = path!;
    p.calls.length = 0;
    dp.sync(view({ 7: A }));
    dp.sync(view({ 7: B }));
    dp.handover(4, [7], B);
    expect(submitted).toContainEqual({ type: 'handover-done', requestId: 4 });
    expect(p.calls).toEqual(['owner 7 1']);
    await vi.advanceTimersByTimeAsync(49);
    expect(p.calls).toEqual(['owner 7 1']);
    await vi.advanceTimersByTimeAsync(1);
    expect(p.calls).toEqual(['owner 7 1', 'owner 7 2']);
    await dp.stop();
    expect(p.calls.at(-1)).toBe('close');
  });
});
