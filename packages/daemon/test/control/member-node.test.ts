import { beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createTestPki, issueMemberCertificate, MessageSealer, createClusterCa, type TestPki } from '@gwcluster/security';
import { decodeEnvelope, decodeSignedMessage, encodeEnvelope, encodeSignedMessage } from '@gwcluster/wire';
import { MemberNode } from '../../src/control/member-node.js';
import { NoClusterAddress } from '../../src/control/cluster-address.js';
import { DenyListApplication } from '../../src/control/applications.js';
import { MemoryNetwork } from '@gwcluster/cluster-core';

import { IPS, WALL0, config } from './fixtures.js';

class Harness {
  readonly hub = new MemoryNetwork();
  now = 0;
  readonly nodes = new Map<string, MemberNode>();
  constructor(readonly pki: TestPki) {}

  add(ip: string, opts: { certChainDer?: readonly Uint8Array[]; keyPem?: string; apps?: DenyListApplication[] } = {}): MemberNode {
    const m = this.pki.members[ip];
    const node = new MemberNode({
      config: config(ip),
      credentials: { certChainDer: opts.certChainDer ?? m!.chainDer, keyPem: opts.keyPem ?? m!.keyPem, caPem: this.pki.ca.certPem },
      transport: this.hub.attach(ip),
      clusterAddress: new NoClusterAddress(),
      applications: opts.apps ?? [],
      logger: pino({ level: 'silent' }),
      clock: () => this.now,
      wallClock: () => WALL0 + this.now,
      incarnation: WALL0 + this.now,
      autoTick: false,
    });
    this.nodes.set(ip, node);
    return node;
  }

  /** Advances time in 10 ms ticks, delivering datagrams between ticks. */
  async run(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += 10) {
      this.now += 10;
      for (const n of this.nodes.values()) n.tick();
      this.hub.flush();
      await Promise.resolve(); // let application verdicts (promises) settle
      this.hub.flush();
    }
  }
}

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki([...IPS, '192.0.2.14']);
});

describe('MemberNode over an in-memory network with real signatures', () => {
  it('three members form a cluster', async () => {
    const h = new Harness(pki);
    for (const ip of IPS) h.add(ip).start();
    await h.run(2000);
    const roles = IPS.map((ip) => h.nodes.get(ip)!.core.role);
    expect(roles).toEqual(['master', 'member', 'member']);
    const st = h.nodes.get(IPS[0]!)!.status();
    expect(st.owners.every((o) => o !== null)).toBe(true);
    expect(st.security.ok).toBeGreaterThan(0);
  });

  it('drops a forged MASTER KEEPALIVE (signed by a key outside the cluster CA) and keeps its state', async () => {
    const h = new Harness(pki);
    for (const ip of IPS) h.add(ip).start();
    await h.run(1500);
    const victim = h.nodes.get(IPS[1]!)!;
    const before = victim.status();
    // An attacker with its own CA claims the master's address and announces itself as master of a new epoch
    // owning every unit.
    const rogueCa = await createClusterCa({ commonName: 'rogue', notBefore: new Date(0), notAfter: new Date('2100-01-01') });
    const rogue = await issueMemberCertificate({ ca: rogueCa, memberIp: IPS[0]!, notBefore: new Date(0), notAfter: new Date('2100-01-01') });
    const sealer = new MessageSealer({ cluster: 'test', memberIp: IPS[0]!, certChainDer: [rogue.certDer], privateKeyPem: rogue.keyPem, incarnation: WALL0 + 10 ** 9 });
    const forged = sealer.seal(
      {
        type: 'master-keepalive',
        epoch: 999,
        seq: 10 ** 6,
        keepalivePeriodMs: 100,
        configVersion: 1,
        members: [{ member: IPS[0]!, watchdogPeriods: 2, loss: 0, load: 0 }],
        table: { version: 1, owners: new Array(1024).fill(IPS[0]!) },
      },
      'broadcast',
      WALL0 + h.now,
    );
    h.hub.inject(IPS[0]!, IPS[1]!, forged);
    // The same keepalive with a good key but a flipped bit in the signed part.
    const genuine = h.hub.wire.filter((d) => d.from === IPS[0] && d.to === IPS[1]).at(-1)!.bytes;
    const env = decodeEnvelope(genuine);
    expect(env.ok).toBe(true);
    if (!env.ok) return;
    const original = decodeSignedMessage(env.value.signed);
    if (!original.ok) throw original.error;
    // A seq never received, so that the signature is what refuses it.
    const signed = encodeSignedMessage({ ...original.value, seq: original.value.seq + 10 ** 6 });
    h.hub.inject(IPS[0]!, IPS[1]!, encodeEnvelope({ ...env.value, signed }));
    // A replay of an earlier genuine datagram.
    h.hub.inject(IPS[0]!, IPS[1]!, genuine);
    // Garbage.
    for (let i = 0; i < 200; i++) h.hub.inject(IPS[0]!, IPS[1]!, new Uint8Array(Array.from({ length: (i * 37) % 300 }, (_, k) => (k * 131 + i) & 255)));
    h.hub.flush();
    const after = victim.status();
    expect(after.epoch).toBe(before.epoch);
    expect(after.master).toBe(IPS[0]);
    expect(after.ownedUnits).toEqual(before.ownedUnits);
    expect(after.node['drop.certificate-rejected']).toBe(1);
    expect(after.node['drop.bad-signature']).toBe(1);
    expect(after.node['drop.replay']).toBe(1);
    expect(Object.entries(after.node).filter(([k]) => k.startsWith('drop.')).reduce((a, [, v]) => a + v, 0)).toBe(203);
    await h.run(1000);
    expect(IPS.map((ip) => h.nodes.get(ip)!.core.role)).toEqual(['master', 'member', 'member']);
  });

  it('answers a joiner with an expired certificate with NAK certificate-rejected; it never becomes master', async () => {
    const h = new Harness(pki);
    h.add(IPS[0]!).start();
    await h.run(500);
    const expired = await issueMemberCertificate({ ca: pki.ca, memberIp: '192.0.2.14', notBefore: new Date('2020-01-01'), notAfter: new Date('2021-01-01') });
    const joiner = h.add('192.0.2.14', { certChainDer: [expired.certDer], keyPem: expired.keyPem });
    joiner.start();
    await h.run(1000);
    expect(joiner.core.role).toBe('rejected');
    const events = joiner.recentEvents().map((e) => e.message).join('\n');
    expect(events).toMatch(/certificate-rejected/);
    expect(events).toMatch(/expired/);
    expect(h.nodes.get(IPS[0]!)!.status().members.map((m) => m.id)).toEqual([IPS[0]]);
  });

  it('an application on the master vetoes a joiner with its reason; members hear of joins', async () => {
    const h = new Harness(pki);
    const veto = new DenyListApplication(new Set([IPS[2]!]), 'not in the IPsec peer policy');
    const watcher = new DenyListApplication(new Set(), '');
    h.add(IPS[0]!, { apps: [veto] }).start();
    await h.run(500);
    h.add(IPS[1]!, { apps: [watcher] }).start();
    await h.run(500);
    h.add(IPS[2]!).start();
    await h.run(1000);
    expect(h.nodes.get(IPS[2]!)!.core.role).toBe('rejected');
    expect(h.nodes.get(IPS[2]!)!.recentEvents().map((e) => e.message).join('\n')).toMatch(/not in the IPsec peer policy/);
    expect(watcher.seen.flatMap((s) => s.joined)).toEqual([IPS[0], IPS[1]]);
    expect(h.nodes.get(IPS[0]!)!.status().members.map((m) => m.id).sort()).toEqual([IPS[0], IPS[1]]);
  });
});
