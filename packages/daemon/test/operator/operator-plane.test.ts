// The operator plane as a pure machine: events in, effects out, time only as `now`.
import { describe, expect, it } from 'vitest';
import type { ClusterMessage } from '@gwcluster/wire';
import { parseMemberConfig } from '../../src/config/config.js';
import { OperatorPlane, UNKNOWN_CONFIG_FIELDS_COUNTER, type MemberSnapshot, type OperatorEffect } from '../../src/operator/operator-plane.js';

const SELF = '192.0.2.11';
const MASTER = '192.0.2.12';
const raw = (configVersion = 1) => ({
  cluster: { name: 'test', clusterIp: '198.51.100.10', configVersion },
  member: { address: SELF, interface: 'eth0' },
  pki: { certificate: 'm.crt', key: 'm.key', ca: 'ca.crt' },
});
const config = parseMemberConfig(raw(), '/etc/gwcluster/member.json', '/etc/gwcluster');
const members = [
  { id: SELF, units: 512, draining: false },
  { id: MASTER, units: 512, draining: false },
];
const view = (over: Partial<MemberSnapshot> = {}): MemberSnapshot => ({ role: 'member', master: MASTER, members, movingUnits: 0, config, ...over });
const plane = (self = SELF) => new OperatorPlane({ self, requestTimeoutMs: 1000, retransmitMs: 250, confirmTimeoutMs: 500, persist: true });
const types = (effects: OperatorEffect[]) => effects.map((e) => e.type);
const sent = (effects: OperatorEffect[]) => effects.filter((e): e is Extract<OperatorEffect, { type: 'send' }> => e.type === 'send');

describe('operator plane', () => {
  it('forwards an action to the master, retransmits every retransmitMs and answers with the reply', () => {
    const p = plane();
    const out = p.step({ type: 'act', now: 0, wallNow: 1_000, ticket: 1, action: 'rebalance', member: '', payload: {}, view: view(), configFile: {} });
    const [request] = sent(out);
    expect(request).toMatchObject({ to: MASTER, message: { type: 'operator-request', requestId: 1_000_000, action: 'rebalance' } });
    expect(p.nextWakeAt()).toBe(250);
    expect(p.step({ type: 'tick', now: 249 })).toEqual([]);
    expect(sent(p.step({ type: 'tick', now: 250 }))).toHaveLength(1);
    const reply: ClusterMessage = { type: 'operator-reply', requestId: 1_000_000, ok: true, code: '', detail: 'rebalance round started', payload: new TextEncoder().encode('{"moving":3}') };
    const answer = p.step({ type: 'message', now: 300, from: MASTER, message: reply, view: view(), configFile: {} });
    expect(answer).toEqual([
      { type: 'answer', ticket: 1, answer: { ok: true, outcome: { action: 'rebalance', doneBy: MASTER, forwarded: true, detail: 'rebalance round started', result: { moving: 3 } } } },
    ]);
    expect(p.nextWakeAt()).toBeNull();
  });

  it('times a forwarded action out with GW_FORWARD_TIMEOUT; no master is GW_NO_MASTER at once', () => {
    const p = plane();
    p.step({ type: 'act', now: 0, wallNow: 1, ticket: 7, action: 'drain', member: SELF, payload: {}, view: view(), configFile: {} });
    for (let t = 250; t < 1000; t += 250) expect(types(p.step({ type: 'tick', now: t }))).toEqual(['send']);
    const [timeout] = p.step({ type: 'tick', now: 1000 });
    expect(timeout).toMatchObject({ type: 'answer', ticket: 7, answer: { ok: false, code: 'GW_FORWARD_TIMEOUT' } });
    const none = p.step({ type: 'act', now: 0, wallNow: 1, ticket: 8, action: 'rebalance', member: '', payload: {}, view: view({ master: null, role: 'joining' }), configFile: {} });
    expect(none).toMatchObject([{ type: 'answer', ticket: 8, answer: { ok: false, code: 'GW_NO_MASTER' } }]);
  });

  it('carries a local action out: core event, note, then the result read from the view after the core took it', () => {
    const p = plane();
    const out = p.step({ type: 'act', now: 0, wallNow: 1, ticket: 2, action: 'leave', member: SELF, payload: {}, view: view(), configFile: {} });
    expect(types(out)).toEqual(['note', 'core', 'need-view']);
    const answer = p.step({ type: 'viewed', now: 0, view: view({ role: 'left' }) });
    expect(answer).toMatchObject([{ type: 'answer', ticket: 2, answer: { ok: true, outcome: { doneBy: SELF, forwarded: false, result: { member: SELF, role: 'left' } } } }]);
  });

  it('failback on the master: refused for a stranger, a draining member or an empty pool; else the core event and the addresses the member gained', () => {
    const p = plane(MASTER);
    const pooled = parseMemberConfig({ ...raw(), cluster: { ...raw().cluster, addressPool: [{ address: '192.0.2.101', interface: 'eth0' }, { address: '192.0.2.102', interface: 'eth0' }] } }, '/etc/gwcluster/member.json', '/etc/gwcluster');
    const act = (ticket: number, member: string, over: Partial<MemberSnapshot> = {}) =>
      p.step({ type: 'act', now: 0, wallNow: ticket, ticket, action: 'failback', member, payload: {}, view: view({ role: 'master', config: pooled, ...over }), configFile: {} });
    expect(act(1, '192.0.2.99')).toMatchObject([{ type: 'answer', answer: { ok: false, code: 'GW_NOT_FOUND' } }]);
    expect(act(2, SELF, { members: [{ ...members[0]!, draining: true }, members[1]!] })).toMatchObject([{ type: 'answer', answer: { ok: false, code: 'GW_REFUSED', message: expect.stringContaining('undrain') } }]);
    expect(act(3, SELF, { config })).toMatchObject([{ type: 'answer', answer: { ok: false, code: 'GW_REFUSED', message: expect.stringContaining('no address pool') } }]);
    const before = [{ address: '192.0.2.101', owner: MASTER }, { address: '192.0.2.102', owner: MASTER }];
    const out = act(4, SELF, { pool: before });
    expect(out).toContainEqual({ type: 'core', event: { type: 'failback', member: SELF } });
    const answer = p.step({ type: 'viewed', now: 0, view: view({ role: 'master', config: pooled, pool: [before[0]!, { address: '192.0.2.102', owner: SELF }] }) });
    expect(answer).toMatchObject([{ type: 'answer', ticket: 4, answer: { ok: true, outcome: { action: 'failback', result: { member: SELF, addresses: ['192.0.2.102'], gained: ['192.0.2.102'] }, detail: expect.stringContaining('answers for 192.0.2.102 again') } } }]);
  });

  it('answers a repeated request with the first reply, without doing the action twice', () => {
    const p = plane();
    const request: ClusterMessage = { type: 'operator-request', requestId: 5, action: 'leave', member: SELF, payload: new Uint8Array(0) };
    const first = p.step({ type: 'message', now: 0, from: MASTER, message: request, view: view(), configFile: {} });
    expect(types(first)).toEqual(['note', 'core', 'need-view']);
    const [reply] = p.step({ type: 'viewed', now: 0, view: view({ role: 'left' }) });
    expect(reply).toMatchObject({ type: 'send', to: MASTER, message: { type: 'operator-reply', requestId: 5, ok: true } });
    const again = p.step({ type: 'message', now: 100, from: MASTER, message: request, view: view({ role: 'left' }), configFile: {} });
    expect(again).toEqual([reply]);
  });

  it('adopts a higher CONFIG UPDATE after persisting it and answers CONFIG STATUS; a failed write adopts nothing and leaves the cluster', () => {
    const update: ClusterMessage = { type: 'config-update', version: 2, clusterConfig: new TextEncoder().encode(JSON.stringify({ keepalivePeriodMs: 80 })) };
    const ok = plane();
    const persist = ok.step({ type: 'message', now: 0, from: MASTER, message: update, view: view(), configFile: raw() });
    expect(persist).toHaveLength(1);
    expect(persist[0]).toMatchObject({ type: 'persist', file: '/etc/gwcluster/member.json', raw: { cluster: { configVersion: 2, keepalivePeriodMs: 80 } } });
    const adopted = ok.step({ type: 'persisted', now: 0, error: null });
    expect(types(adopted)).toEqual(['adopt', 'note', 'send']);
    expect(adopted[2]).toMatchObject({ to: MASTER, message: { type: 'config-status', version: 2 } });
    const failing = plane();
    failing.step({ type: 'message', now: 0, from: MASTER, message: update, view: view(), configFile: raw() });
    const refused = failing.step({ type: 'persisted', now: 0, error: 'EACCES: permission denied' });
    expect(refused).toEqual([
      { type: 'note', level: 'error', kind: 'config', message: `refused cluster configuration version 2 from ${MASTER}: EACCES: permission denied; leaving the cluster (fix the file, then gwctl join ${SELF})`, fields: { from: MASTER, version: 2 } },
      { type: 'core', event: { type: 'leave', detail: 'cannot write its configuration file, so it did not adopt version 2: EACCES: permission denied' } },
    ]);
  });

  it('rolling upgrade: a propagated configuration with fields this release does not know is adopted without them (one warning per field, counted each time); the operator API still refuses them', () => {
    const enc = (o: Record<string, unknown>) => new TextEncoder().encode(JSON.stringify(o));
    const p = plane();
    // A newer master's version 2 carries a live field this member has never heard of.
    const update: ClusterMessage = { type: 'config-update', version: 2, clusterConfig: enc({ keepalivePeriodMs: 80, futureKnobMs: 5 }) };
    const first = p.step({ type: 'message', now: 0, from: MASTER, message: update, view: view(), configFile: raw() });
    expect(types(first)).toEqual(['count', 'note', 'persist']);
    expect(first[0]).toEqual({ type: 'count', name: UNKNOWN_CONFIG_FIELDS_COUNTER });
    expect(first[1]).toMatchObject({ type: 'note', level: 'warn', kind: 'config', fields: { ignored: ['futureKnobMs'], version: 2, from: MASTER } });
    expect((first[1] as { message: string }).message).toMatch(/has field\(s\) this release does not know, ignored: futureKnobMs/);
    const written = (first[2] as { raw: { cluster: Record<string, unknown> } }).raw.cluster;
    expect(written).toMatchObject({ configVersion: 2, keepalivePeriodMs: 80 });
    expect(written).not.toHaveProperty('futureKnobMs');
    expect(types(p.step({ type: 'persisted', now: 0, error: null }))).toEqual(['adopt', 'note', 'send']);
    // The next version with the same unknown field: counted again, no second warning.
    const v2config = parseMemberConfig({ ...raw(2), cluster: { ...raw(2).cluster, keepalivePeriodMs: 80 } }, '/etc/gwcluster/member.json', '/etc/gwcluster');
    const next: ClusterMessage = { type: 'config-update', version: 3, clusterConfig: enc({ keepalivePeriodMs: 90, futureKnobMs: 6 }) };
    const second = p.step({ type: 'message', now: 10, from: MASTER, message: next, view: view({ config: v2config }), configFile: raw(2) });
    expect(types(second)).toEqual(['count', 'persist']);
    // What an operator sends is checked strictly: an unknown field is refused, nothing is adopted.
    const master = plane(MASTER);
    const masterConfig = parseMemberConfig({ ...raw(), member: { address: MASTER, interface: 'eth0' } }, '/etc/gwcluster/member.json', '/etc/gwcluster');
    const refused = master.step({
      type: 'act', now: 0, wallNow: 1, ticket: 5, action: 'config', member: '', payload: { changes: { futureKnobMs: 5 } },
      view: view({ role: 'master', master: MASTER, config: masterConfig }), configFile: { ...raw(), member: { address: MASTER, interface: 'eth0' } },
    });
    expect(refused).toMatchObject([{ type: 'answer', ticket: 5, answer: { ok: false, code: 'GW_CONFIG_INVALID' } }]);
    expect((refused[0] as { answer: { message: string } }).answer.message).toMatch(/cluster\.futureKnobMs: unknown field/);
  });

  it("refuses a pool with a member's own address or an address outside its interface's subnets, naming the field; nothing is adopted", () => {
    const masterRaw = { ...raw(), member: { address: MASTER, interface: 'eth0' } };
    const masterConfig = parseMemberConfig(masterRaw, '/etc/gwcluster/member.json', '/etc/gwcluster');
    const master = new OperatorPlane({ self: MASTER, requestTimeoutMs: 1000, retransmitMs: 250, confirmTimeoutMs: 500, persist: true, hostSubnets: () => [{ iface: 'eth0', address: MASTER, prefixLength: 24 }] });
    const act = (ticket: number, pool: unknown) =>
      master.step({ type: 'act', now: 0, wallNow: 1, ticket, action: 'config', member: '', payload: { changes: { addressPool: pool } }, view: view({ role: 'master', master: MASTER, config: masterConfig }), configFile: masterRaw });
    const own = act(1, [{ address: SELF, interface: 'eth0' }]);
    expect(own).toMatchObject([{ type: 'answer', ticket: 1, answer: { ok: false, code: 'GW_CONFIG_INVALID' } }]);
    expect((own[0] as { answer: { message: string } }).answer.message).toBe(`cluster.addressPool[0].address: ${SELF} is the own address of member ${SELF}; a pool address must be another address`);
    const outside = act(2, [{ address: '192.0.2.101', interface: 'eth0' }, { address: '203.0.113.7', interface: 'eth1' }]);
    expect((outside[0] as { answer: { message: string } }).answer.message).toBe(`cluster.addressPool[1].interface: eth1 has no IPv4 address on ${MASTER} (interfaces with one: eth0)`);
    // A good pool goes on to be persisted.
    expect(types(act(3, [{ address: '192.0.2.101', interface: 'eth0' }]))).toContain('persist');
  });

  it('compares versions after the core handled a keepalive; CONFIG UPDATE to a lower peer at most every 200 ms', () => {
    const p = plane();
    const keepalive = { type: 'master-keepalive', configVersion: 0 } as unknown as ClusterMessage;
    expect(p.step({ type: 'protocol-message', now: 0, from: MASTER, message: keepalive, role: 'member' })).toEqual([{ type: 'compare-after-core', from: MASTER, version: 0 }]);
    expect(types(p.step({ type: 'peer-version', now: 0, from: MASTER, version: 0, config }))).toEqual(['send']);
    expect(p.step({ type: 'peer-version', now: 199, from: MASTER, version: 0, config })).toEqual([]);
    expect(types(p.step({ type: 'peer-version', now: 200, from: MASTER, version: 0, config }))).toEqual(['send']);
    expect(p.step({ type: 'peer-version', now: 300, from: MASTER, version: 1, config })).toEqual([]);
  });

  describe('a configuration change waits for every member the master sent it to', () => {
    const M2 = '192.0.2.13';
    const masterView = view({
      role: 'master',
      master: SELF,
      members: [
        { id: SELF, units: 400, draining: false },
        { id: MASTER, units: 312, draining: false },
        { id: M2, units: 312, draining: false },
      ],
    });
    /** The master (SELF) takes an operator change to version 2 and persists it; returns the plane. */
    const change = () => {
      const p = plane();
      const out = p.step({ type: 'act', now: 0, wallNow: 1, ticket: 9, action: 'config', member: '', payload: { changes: { keepalivePeriodMs: 80 } }, view: masterView, configFile: raw() });
      expect(types(out)).toEqual(['persist']);
      const adopted = p.step({ type: 'persisted', now: 0, error: null });
      expect(types(adopted)).toEqual(['send', 'send', 'adopt', 'note']);
      return p;
    };
    const status = (version: number): ClusterMessage => ({ type: 'config-status', version });
    /** The master's view once it runs version 2. */
    const after = { ...masterView, config: parseMemberConfig(raw(2), '/etc/gwcluster/member.json', '/etc/gwcluster') };

    it('answers once every member confirmed (CONFIG STATUS with the new version); retransmits the update meanwhile', () => {
      const p = change();
      expect(p.step({ type: 'message', now: 10, from: MASTER, message: status(2), view: after, configFile: {} })).toEqual([]);
      const again = sent(p.step({ type: 'tick', now: 250 }));
      expect(again.map((x) => [x.to, x.message.type])).toEqual([[M2, 'config-update']]);
      const [answer] = p.step({ type: 'message', now: 260, from: M2, message: status(2), view: after, configFile: {} });
      expect(answer).toMatchObject({ type: 'answer', ticket: 9, answer: { ok: true, outcome: { result: { version: 2 } } } });
      expect(p.nextWakeAt()).toBeNull();
    });

    it('a member that left instead (it could not write its file) fails the change with GW_CONFIG_NOT_ADOPTED naming it and why', () => {
      const p = change();
      p.step({ type: 'message', now: 10, from: MASTER, message: status(2), view: after, configFile: {} });
      const exit: ClusterMessage = { type: 'exit-cluster', reason: 'leaving', detail: 'cannot write its configuration file, so it did not adopt version 2: EACCES: permission denied', epoch: 3, configVersion: 1 };
      const out = p.step({ type: 'protocol-message', now: 20, from: M2, message: exit, role: 'master' });
      const answer = out.find((e) => e.type === 'answer');
      expect(answer).toMatchObject({ answer: { ok: false, code: 'GW_CONFIG_NOT_ADOPTED' } });
      expect((answer as { answer: { message: string } }).answer.message).toBe(
        `configuration version 2 (was 1) is in force on the master ${SELF}, but not on 1 member(s): ${M2}: left the cluster (leaving): cannot write its configuration file, so it did not adopt version 2: EACCES: permission denied`,
      );
    });

    it('a member silent until confirmTimeoutMs is named as not having confirmed', () => {
      const p = change();
      p.step({ type: 'message', now: 10, from: MASTER, message: status(2), view: after, configFile: {} });
      expect(p.nextWakeAt()).toBe(250);
      p.step({ type: 'tick', now: 250 });
      const [note, answer] = p.step({ type: 'tick', now: 500 });
      expect(note).toMatchObject({ type: 'note', level: 'error' });
      expect(answer).toMatchObject({ type: 'answer', ticket: 9, answer: { ok: false, code: 'GW_CONFIG_NOT_ADOPTED' } });
      expect((answer as { answer: { message: string } }).answer.message).toMatch(new RegExp(`${M2}: did not confirm version 2 within 500 ms`));
    });
  });
});
