import { describe, expect, it } from 'vitest';
import { UnitAction, type FastPathOptions, type SessionTable } from '@gwcluster/native-addon';
import { UNIT_COUNT } from '@gwcluster/wire';
import { kernelUnitAction } from '../../src/dataplane/kernel-action.js';
import { KERNEL_PASS_MARK, autoPacketPathFactory, kernelPacketPathFactory, type UnitDecider } from '../../src/dataplane/kernel-path.js';
import { iptablesRules, type NetfilterPlan } from '../../src/dataplane/netfilter.js';
import { LOCAL_SLOT, NO_SLOT, type PacketPath, type PacketPathOptions } from '../../src/dataplane/packet-path.js';

const OTHER = 2;
const ACTION_NAME = ['TO_USER', 'PASS', 'DROP', 'PASS_TRACKED', 'REDIRECT'];

describe('kernelUnitAction', () => {
  const base = { localSlot: LOCAL_SLOT, master: false, method: 2 as const, held: false, tracking: 'none' as const, ownerReachable: false };
  it.each([
    ['own unit', { owner: LOCAL_SLOT }, UnitAction.PASS],
    ['own unit, strict sessions without the flow offload', { owner: LOCAL_SLOT, tracking: 'user' as const }, UnitAction.TO_USER],
    ['own unit, sessions with the flow offload', { owner: LOCAL_SLOT, tracking: 'offload' as const }, UnitAction.PASS_TRACKED],
    ['own unit held at the master, flow offload', { owner: LOCAL_SLOT, master: true, held: true, tracking: 'offload' as const }, UnitAction.TO_USER],
    ["another member's unit, flow offload", { owner: OTHER, tracking: 'offload' as const }, UnitAction.DROP],
    ["another member's unit at the master, method 1, its MAC known to the kernel", { owner: OTHER, master: true, method: 1 as const, ownerReachable: true }, UnitAction.REDIRECT],
    ["another member's held unit at the master, method 1, its MAC known", { owner: OTHER, master: true, method: 1 as const, held: true, ownerReachable: true }, UnitAction.TO_USER],
    ["another member's unit at a non-master, method 1, its MAC known", { owner: OTHER, method: 1 as const, ownerReachable: true }, UnitAction.DROP],
    ["another member's unit at the master, method 2, its MAC known", { owner: OTHER, master: true, ownerReachable: true }, UnitAction.DROP],
    ['own unit held at the master', { owner: LOCAL_SLOT, master: true, held: true }, UnitAction.TO_USER],
    ["another member's unit", { owner: OTHER }, UnitAction.DROP],
    ["nobody's unit at a non-master", { owner: NO_SLOT }, UnitAction.DROP],
    ["nobody's unit at the master (held first packet)", { owner: NO_SLOT, master: true }, UnitAction.TO_USER],
    ["another member's unit at the master, method 2", { owner: OTHER, master: true }, UnitAction.DROP],
    ["another member's unit at the master, method 3", { owner: OTHER, master: true, method: 3 as const }, UnitAction.DROP],
    ["another member's unit at the master, method 1 (forwarded)", { owner: OTHER, master: true, method: 1 as const }, UnitAction.TO_USER],
    ["another member's unit at a non-master, method 1", { owner: OTHER, method: 1 as const }, UnitAction.DROP],
    ["another member's held unit at the master", { owner: OTHER, master: true, held: true }, UnitAction.TO_USER],
  ])('%s', (_what, s, expected) => {
    expect(ACTION_NAME[kernelUnitAction({ ...base, ...s })]).toBe(ACTION_NAME[expected]);
  });
});

/** Records engine and kernel calls in one log, so tests can check their order. */
function harness(opts: { interfaces?: string[]; method?: 1 | 2 | 3; failAttach?: boolean } = {}) {
  const log: string[] = [];
  const kernel = new Map<string, Uint8Array>();
  const closed: string[] = [];
  const engine: PacketPath = {
    setRole: (r) => log.push(`engine role ${r.master ? 'master' : 'member'}`),
    setOwner: (u, s) => log.push(`engine owner ${u} ${s}`),
    setSlotMac: () => {},
    hold: (u) => log.push(`engine hold ${u}`),
    release: (u) => log.push(`engine release ${u}`),
    setArpAnswering: () => {},
    announce: () => {},
    counters: () => ({ packets: new BigUint64Array(UNIT_COUNT).fill(1n), bytes: new BigUint64Array(UNIT_COUNT).fill(100n) }),
    attachSessions: () => log.push('engine sessions'),
    stats: () => ({ received: 7 }),
    close: () => closed.push('engine'),
  };
  const openDecider = (o: FastPathOptions): UnitDecider => {
    expect(o.passMark).toBe(KERNEL_PASS_MARK);
    let name = '';
    const actions = new Uint8Array(UNIT_COUNT);
    return {
      attach: (ifname: string) => {
        if (opts.failAttach) throw new Error('bpf_link_create: Invalid argument');
        name = ifname;
        kernel.set(ifname, actions);
      },
      setUnitActions: (units: Iterable<number>, action: UnitAction) => {
        const list = [...units];
        for (const u of list) actions[u] = action;
        log.push(`kernel ${name} ${ACTION_NAME[action]} ${list.length === 1 ? list[0] : `${list.length} units`}`);
      },
      unitCounters: () => ({ packets: new BigUint64Array(UNIT_COUNT).fill(2n), bytes: new BigUint64Array(UNIT_COUNT).fill(300n) }),
      stats: () => Object.fromEntries(['passed', 'dropped', 'toUser'].map((n) => [n, 5n])) as ReturnType<UnitDecider['stats']>,
      close: () => closed.push(`kernel ${name}`),
    } as UnitDecider;
  };
  const popts = {
    method: opts.method ?? 2,
    interfaces: opts.interfaces ?? ['eth0'],
    clusterIps: ['198.51.100.10'],
    bypassAddresses: ['192.0.2.11', '192.0.2.255'],
    localSlot: LOCAL_SLOT,
    onError: (e: Error) => log.push(`error ${e.message}`),
  } as unknown as PacketPathOptions;
  const open = () => kernelPacketPathFactory({ openEngine: () => engine, openDecider })(popts);
  const openAuto = (onFallback: (why: string) => void) => autoPacketPathFactory(onFallback, { openEngine: () => engine, openDecider })(popts);
  return { log, kernel, closed, open, openAuto, engine };
}

describe('kernel packet path', () => {
  it('writes each unit\'s kernel action from the engine\'s own calls, on every interface', () => {
    const h = harness({ interfaces: ['eth0', 'eth1'] });
    const path = h.open();
    path.setRole({ localSlot: LOCAL_SLOT, master: false });
    // Every unit nobody owns is dropped at a non-master; all start TO_USER, so all are written once per interface.
    expect(h.log).toEqual(['engine role member', 'kernel eth0 DROP 1024 units', 'kernel eth1 DROP 1024 units']);
    h.log.length = 0;
    path.setOwner(5, LOCAL_SLOT);
    path.setOwner(6, OTHER);
    path.setOwner(6, OTHER + 1); // same action: nothing written
    expect(h.log).toEqual(['engine owner 5 1', 'kernel eth0 PASS 5', 'kernel eth1 PASS 5', 'engine owner 6 2', 'engine owner 6 3']);
    expect(h.kernel.get('eth1')![5]).toBe(UnitAction.PASS);
  });

  it('holds in the kernel before the engine, and releases in the engine before the kernel', () => {
    const h = harness();
    const path = h.open();
    path.setRole({ localSlot: LOCAL_SLOT, master: true });
    h.log.length = 0;
    path.setOwner(9, LOCAL_SLOT);
    path.hold(9);
    path.setOwner(9, OTHER); // held: stays TO_USER
    path.release(9);
    expect(h.log).toEqual([
      'engine owner 9 1',
      'kernel eth0 PASS 9',
      'kernel eth0 TO_USER 9',
      'engine hold 9',
      'engine owner 9 2',
      'engine release 9',
      'kernel eth0 DROP 9',
    ]);
  });

  it('method 1: the master hands other members\' units up for forwarding', () => {
    const h = harness({ method: 1 });
    const path = h.open();
    path.setRole({ localSlot: LOCAL_SLOT, master: true });
    path.setOwner(3, OTHER);
    expect(h.kernel.get('eth0')![3]).toBe(UnitAction.TO_USER);
    path.setRole({ localSlot: LOCAL_SLOT, master: false });
    expect(h.kernel.get('eth0')![3]).toBe(UnitAction.DROP);
  });

  it('without the flow offload (fake deciders), a strict session table keeps own units in user space; a loose one lets them pass', () => {
    const h = harness();
    const path = h.open();
    path.setRole({ localSlot: LOCAL_SLOT, master: false });
    path.setOwner(1, LOCAL_SLOT);
    path.attachSessions({ mode: 'strict' } as SessionTable);
    expect(h.kernel.get('eth0')![1]).toBe(UnitAction.TO_USER);
    path.attachSessions({ mode: 'loose' } as SessionTable);
    expect(h.kernel.get('eth0')![1]).toBe(UnitAction.PASS);
    path.attachSessions({ mode: 'strict' } as SessionTable);
    path.attachSessions(null);
    expect(h.kernel.get('eth0')![1]).toBe(UnitAction.PASS);
  });

  it('counts the engine\'s and the kernel\'s packets; stats carry the program\'s counters as kernel.*', () => {
    const h = harness({ interfaces: ['eth0', 'eth1'] });
    const path = h.open();
    const c = path.counters({ reset: true });
    expect(c.packets[0]).toBe(1 + 2 * 2);
    expect(c.bytes[UNIT_COUNT - 1]).toBe(100 + 2 * 300);
    expect(path.stats()).toMatchObject({ received: 7, 'kernel.passed': 10, 'kernel.dropped': 10, 'kernel.writeErrors': 0 });
  });

  it('close detaches the program before closing the engine; a failed attach closes everything and says why', () => {
    const h = harness({ interfaces: ['eth0', 'eth1'] });
    const path = h.open();
    path.close();
    path.close();
    expect(h.closed).toEqual(['kernel eth0', 'kernel eth1', 'engine']);
    const bad = harness({ failAttach: true });
    expect(() => bad.open()).toThrow(/cannot attach the BPF program to eth0 in tcx mode \(needs Linux 6\.6\+\): bpf_link_create/);
    expect(bad.closed).toEqual(['kernel ', 'engine']);
  });

  it('dataplane.path auto: the kernel path where it loads, else the engine alone, saying why', () => {
    const why: string[] = [];
    const good = harness();
    const path = good.openAuto((w) => why.push(w));
    path.setRole({ localSlot: LOCAL_SLOT, master: false });
    expect(good.log).toContain('kernel eth0 DROP 1024 units');
    expect(why).toEqual([]);
    const bad = harness({ failAttach: true });
    const fallback = bad.openAuto((w) => why.push(w));
    expect(fallback).toBe(bad.engine);
    expect(why).toHaveLength(1);
    expect(why[0]).toMatch(/cannot attach the BPF program to eth0 in tcx mode/);
  });
});

describe('netfilter rules of the kernel path', () => {
  const plan: NetfilterPlan = { interfaces: [{ name: 'eth0', clusterIps: ['198.51.100.10'] }], method: 'unicast-mac', ownAddresses: ['192.0.2.11'], queueNum: 3, forwarding: true };
  it('returns the packets the program passed before the NFQUEUE rule; everything else is still queued', () => {
    const rules = iptablesRules({ ...plan, passMark: KERNEL_PASS_MARK }).map((r) => r.join(' '));
    expect(rules.slice(-2)).toEqual(['-A GWCLUSTER -m mark --mark 0x10000000/0x10000000 -j RETURN', '-A GWCLUSTER -j NFQUEUE --queue-num 3']);
    expect(iptablesRules(plan).some((r) => r.includes('mark'))).toBe(false);
  });
});
