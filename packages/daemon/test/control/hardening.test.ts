// Issue 10 defects 1, 3 and 4 on MemberNode with real signatures over an in-memory network: a captured
// unicast replayed to another member, a replayed other-CA join, a member whose clock is 60 s off.
import { beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createTestPki, type TestPki } from '@gwcluster/security';
import { MemoryNetwork } from '@gwcluster/cluster-core';
import { decodeEnvelope, decodeSignedMessage, type ClusterMessage, type ClusterMessageType } from '@gwcluster/wire';
import { MemberNode } from '../../src/control/member-node.js';
import { NoClusterAddress } from '../../src/control/cluster-address.js';
import { OperatorChannel } from '../../src/operator/operator-channel.js';

import { IPS, WALL0, config } from './fixtures.js';

class Cluster {
  readonly hub = new MemoryNetwork();
  now = 0;
  readonly nodes = new Map<string, MemberNode>();
  readonly channels = new Map<string, OperatorChannel>();
  constructor(readonly pki: TestPki) {}

  add(ip: string, opts: { pki?: TestPki; clockOffsetMs?: number } = {}): MemberNode {
    const m = (opts.pki ?? this.pki).members[ip]!;
    const wall = () => WALL0 + this.now + (opts.clockOffsetMs ?? 0);
    const node = new MemberNode({
      config: config(ip),
      credentials: { certChainDer: m.chainDer, keyPem: m.keyPem, caPem: this.pki.ca.certPem },
      transport: this.hub.attach(ip),
      clusterAddress: new NoClusterAddress(),
      logger: pino({ level: 'silent' }),
      clock: () => this.now,
      wallClock: wall,
      incarnation: wall(),
      autoTick: false,
    });
    this.nodes.set(ip, node);
    this.channels.set(ip, new OperatorChannel({ node, autoTick: false, persist: false, clock: () => this.now, wallClock: wall }));
    return node;
  }

  async run(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += 10) {
      this.now += 10;
      for (const n of this.nodes.values()) n.tick();
      for (const c of this.channels.values()) c.tick();
      this.hub.flush();
      await Promise.resolve();
      this.hub.flush();
    }
  }

  roles(): string[] {
    return IPS.filter((ip) => this.nodes.has(ip)).map((ip) => this.nodes.get(ip)!.core.role);
  }
}

function messageOf(bytes: Uint8Array): ClusterMessage | null {
  const e = decodeEnvelope(bytes);
  if (!e.ok) return null;
  const s = decodeSignedMessage(e.value.signed);
  return s.ok ? s.value.message : null;
}

const typeOf = (bytes: Uint8Array): ClusterMessageType | null => messageOf(bytes)?.type ?? null;

let pki: TestPki;
let foreign: TestPki;
beforeAll(async () => {
  [pki, foreign] = await Promise.all([createTestPki(IPS), createTestPki([IPS[2]!], { caCommonName: 'other CA' })]);
});

async function formed(): Promise<Cluster> {
  const c = new Cluster(pki);
  for (const ip of IPS) c.add(ip).start();
  await c.run(1500);
  expect(c.roles()).toEqual(['master', 'member', 'member']);
  return c;
}

describe('recipient binding (issue 10, defect 1)', () => {
  it('a gwctl leave forwarded to one member, replayed to the master from the forwarder 3.5 s later, moves nothing', async () => {
    const c = await formed();
    const [master, forwarder, target] = IPS as [string, string, string];
    const left = c.channels.get(forwarder)!.act('leave', target);
    await c.run(300);
    await expect(left).resolves.toMatchObject({ doneBy: target, forwarded: true });
    expect(c.nodes.get(target)!.core.role).toBe('left');
    const captured = c.hub.wire.find((d) => d.from === forwarder && d.to === target && typeOf(d.bytes) === 'operator-request')!;
    await c.run(3500);
    c.hub.inject(forwarder, master, captured.bytes);
    c.hub.flush();
    await c.run(1000);
    expect(c.nodes.get(master)!.core.role).toBe('master');
    expect(c.nodes.get(forwarder)!.core.role).toBe('member');
    expect(c.nodes.get(master)!.status().node['drop.wrong-recipient']).toBe(1);
  });

  it('an operator request naming another member is refused by leave and join', async () => {
    const c = await formed();
    const [master, forwarder, target] = IPS as [string, string, string];
    // Built wrongly on purpose: addressed to the master, naming the target.
    c.nodes.get(forwarder)!.sendControl(master, { type: 'operator-request', requestId: 42, action: 'leave', member: target, payload: new Uint8Array(0) });
    await c.run(200);
    expect(c.nodes.get(master)!.core.role).toBe('master');
    const reply = c.hub.wire.filter((d) => d.from === master && d.to === forwarder).map((d) => messageOf(d.bytes)).find((m) => m?.type === 'operator-reply');
    expect(reply).toMatchObject({ requestId: 42, ok: false, code: 'GW_BAD_REQUEST' });
    expect(reply?.type === 'operator-reply' && reply.detail).toContain(`only that member carries it out, not ${master}`);
    expect(c.nodes.get(master)!.recentEvents().some((e) => /leaving/.test(e.message))).toBe(false);
  });
});

describe('work for unauthenticated joiners is bounded (issue 10, defect 3)', () => {
  it('one other-CA join replayed 2000 times: a handful of signed NAKs and events, the rest counted', async () => {
    const c = await formed();
    const [master] = IPS as [string];
    const rogueIp = IPS[2]!;
    // Member 3 is replaced by a host at its address with a certificate of another CA, which joins.
    c.nodes.get(rogueIp)!.stop();
    c.hub.detach(rogueIp);
    c.nodes.delete(rogueIp);
    c.channels.get(rogueIp)!.close();
    c.channels.delete(rogueIp);
    const rogue = c.add(rogueIp, { pki: foreign });
    rogue.start();
    c.hub.flush();
    const join = c.hub.wire.filter((d) => d.from === rogueIp && d.to === master).at(-1)!;
    expect(typeOf(join.bytes)).toBe('join-request');
    const eventsBefore = c.nodes.get(master)!.recentEvents(500).length;
    const repliesBefore = c.hub.wire.filter((d) => d.from === master && d.to === rogueIp).length;
    for (let i = 0; i < 2000; i++) c.hub.inject(rogueIp, master, join.bytes);
    c.hub.flush();
    const st = c.nodes.get(master)!.status();
    const naks = c.hub.wire.filter((d) => d.from === master && d.to === rogueIp).length - repliesBefore;
    expect(naks).toBeLessThanOrEqual(5);
    expect((st.node['drop.rate-limited'] ?? 0) + (st.node['untrusted-join.rate-limited'] ?? 0)).toBeGreaterThan(1990);
    expect(c.nodes.get(master)!.recentEvents(500).length - eventsBefore).toBeLessThanOrEqual(10);
    expect(st.role).toBe('master');
  });
});

describe('freshness without clocks (issue 10, defect 4)', () => {
  it.each([60_000, -60_000])('a member whose clock is %i ms off joins and stays a member; one master', async (offset) => {
    const c = new Cluster(pki);
    c.add(IPS[0]!).start();
    c.add(IPS[1]!).start();
    c.add(IPS[2]!, { clockOffsetMs: offset }).start();
    await c.run(5000);
    expect(c.roles()).toEqual(['master', 'member', 'member']);
    const skewed = c.nodes.get(IPS[2]!)!.status();
    expect(skewed.security['clock-skew']).toBeGreaterThan(0);
    expect(c.nodes.get(IPS[2]!)!.core.counters['watchdog.master-dead'] ?? 0).toBe(0);
  });
});
