// Certificates replaced in a running cluster (MemberNode.replaceCredentials, what gwclusterd reload
// installs), with real signatures over the in-memory network: a revoked member is refused at its next
// message and cannot rejoin while the others carry on; a member whose certificate (and key) is renewed
// stays in the cluster.
import { beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createRevocationList, createTestPki, issueMemberCertificate, TrustStore, type TestPki } from '@gwcluster/security';
import { MemoryNetwork } from '@gwcluster/cluster-core';
import { decodeEnvelope } from '@gwcluster/wire';
import { MemberNode, type Credentials } from '../../src/control/member-node.js';
import { NoClusterAddress } from '../../src/control/cluster-address.js';
import { IPS, WALL0, config } from './fixtures.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki(IPS);
});

class Cluster {
  readonly hub = new MemoryNetwork();
  now = 0;
  readonly nodes = new Map<string, MemberNode>();

  add(ip: string): MemberNode {
    const m = pki.members[ip]!;
    const wall = () => WALL0 + this.now;
    const node = new MemberNode({
      config: config(ip),
      credentials: { certChainDer: m.chainDer, keyPem: m.keyPem, caPem: pki.ca.certPem },
      transport: this.hub.attach(ip),
      clusterAddress: new NoClusterAddress(),
      logger: pino({ level: 'silent' }),
      clock: () => this.now,
      wallClock: wall,
      incarnation: wall(),
      autoTick: false,
    });
    this.nodes.set(ip, node);
    return node;
  }

  async run(ms: number, each?: () => void): Promise<void> {
    for (let t = 0; t < ms; t += 10) {
      this.now += 10;
      for (const n of this.nodes.values()) n.tick();
      this.hub.flush();
      await Promise.resolve();
      this.hub.flush();
      each?.();
    }
  }

  view(ip: string): { role: string; members: string[] } {
    const st = this.nodes.get(ip)!.core.status(this.now);
    return { role: st.role, members: st.members.map((m) => m.id).sort() };
  }
}

async function formed(): Promise<Cluster> {
  const c = new Cluster();
  for (const ip of IPS) c.add(ip).start();
  await c.run(1500);
  expect(IPS.map((ip) => c.view(ip).members.length)).toEqual([3, 3, 3]);
  return c;
}

const [M1, M2, M3] = IPS as [string, string, string];

/** Whether a datagram is authenticated by a MAC (not a signature). */
function macd(bytes: Uint8Array): boolean {
  const e = decodeEnvelope(bytes);
  return e.ok && (e.value.mac?.length ?? 0) > 0;
}

describe('revocation at run time', () => {
  it('members that adopt a CRL revoking member 3 refuse its next message; it is declared dead and cannot rejoin', async () => {
    const c = await formed();
    const crlPem = await createRevocationList({ ca: pki.ca, revokedSerials: [pki.members[M3]!.serial], thisUpdate: new Date(WALL0) });
    for (const ip of [M1, M2]) {
      const m = pki.members[ip]!;
      const credentials: Credentials = { certChainDer: m.chainDer, keyPem: m.keyPem, caPem: pki.ca.certPem, crlPem };
      c.nodes.get(ip)!.replaceCredentials(credentials, new TrustStore({ caCertPem: pki.ca.certPem, crlPem }));
    }
    let twoMembers = false;
    // Member 1 and 2 never lose each other while member 3 is refused.
    await c.run(3000, () => {
      for (const ip of [M1, M2]) expect(c.view(ip).members).toEqual(expect.arrayContaining([M1, M2]));
      twoMembers ||= [M1, M2].every((ip) => c.view(ip).members.length === 2);
    });
    expect(twoMembers).toBe(true);
    expect(c.view(M1).members).toEqual([M1, M2]);
    expect(c.view(M2).members).toEqual([M1, M2]);
    expect([c.view(M1).role, c.view(M2).role].sort()).toEqual(['master', 'member']);
    const master = c.view(M1).role === 'master' ? M1 : M2;
    const refused = c.nodes.get(master)!.status().node;
    expect((refused['drop.certificate-rejected'] ?? 0) + (refused['drop.unknown-signer'] ?? 0)).toBeGreaterThan(0);
    // Still refused 3 s later: member 3 never gets back in.
    await c.run(3000);
    expect(c.view(master).members).toEqual([M1, M2]);
    const st3 = c.nodes.get(M3)!.core.status(c.now);
    // Member 3 (still on the old CRL) hears the master's table without itself and serves no unit.
    expect(st3.members.map((m) => m.id)).not.toContain(M3);
    expect(st3.ownedUnits).toEqual([]);
  });

  it('a member whose certificate is renewed with a new key carries on: nobody drops it', async () => {
    const c = await formed();
    const renewed = await issueMemberCertificate({ ca: pki.ca, memberIp: M2, notBefore: new Date(0), notAfter: new Date('2100-01-01T00:00:00Z') });
    c.nodes.get(M2)!.replaceCredentials({ certChainDer: [renewed.certDer], keyPem: renewed.keyPem, caPem: pki.ca.certPem }, pki.trustStore());
    const macsBefore = c.nodes.get(M2)!.status().security['sealed.mac']!;
    // Past the certificate grace (5 s): M2 MACs its unicasts again, under its new key.
    await c.run(7000, () => {
      for (const ip of IPS) expect(c.view(ip).members).toEqual([...IPS].sort());
    });
    for (const ip of [M1, M3]) expect(c.nodes.get(ip)!.status().node['drop.bad-signature'] ?? 0).toBe(0);
    expect(c.nodes.get(M2)!.status().security['sealed.mac']!).toBeGreaterThan(macsBefore);
  });

  it('a peer that missed the renewed certificate fails the pair\'s MACs once, and the certificate exchange this triggers repairs it', async () => {
    const c = await formed();
    const got: string[] = [];
    c.nodes.get(M2)!.addPlaneHandler((from, m) => {
      if (m.type !== 'state-ack' || m.seqs.length !== 1 || m.seqs[0] === 0) return false;
      got.push(`${from}:${m.seqs[0]}`);
      return true;
    });
    const m3 = c.nodes.get(M3)!;
    m3.sendControl(M2, { type: 'state-ack', seqs: [5] }); // MAC'd: M3 and M2 know each other's certificates
    await c.run(20);
    expect(got).toEqual([`${M3}:5`]);
    const renewed = await issueMemberCertificate({ ca: pki.ca, memberIp: M2, notBefore: new Date(0), notAfter: new Date('2100-01-01T00:00:00Z') });
    // M3 hears nothing from M2 during M2's certificate grace: it keeps M2's old certificate.
    c.hub.drop = (d) => d.from === M2 && d.to === M3;
    c.nodes.get(M2)!.replaceCredentials({ certChainDer: [renewed.certDer], keyPem: renewed.keyPem, caPem: pki.ca.certPem }, pki.trustStore());
    await c.run(6000);
    c.hub.drop = () => false;
    m3.sendControl(M2, { type: 'state-ack', seqs: [6] }); // MAC'd with M2's old key: refused
    expect(macd(c.hub.wire.filter((d) => d.from === M3 && d.to === M2).at(-1)!.bytes)).toBe(true);
    await c.run(500); // M2 sends M3 its certificate, M3 answers with its own
    expect(c.nodes.get(M2)!.status().node['drop.bad-signature']).toBe(1);
    expect(got).toEqual([`${M3}:5`]);
    m3.sendControl(M2, { type: 'state-ack', seqs: [7] });
    expect(macd(c.hub.wire.filter((d) => d.from === M3 && d.to === M2).at(-1)!.bytes)).toBe(true);
    await c.run(20);
    expect(got).toEqual([`${M3}:5`, `${M3}:7`]);
    expect(c.nodes.get(M2)!.status().node['drop.bad-signature']).toBe(1);
    expect(IPS.map((ip) => c.view(ip).members)).toEqual([[...IPS].sort(), [...IPS].sort(), [...IPS].sort()]);
  });

  it('a key that does not belong to the certificate is refused and the old credentials stay', async () => {
    const c = await formed();
    const other = pki.members[M1]!;
    expect(() => c.nodes.get(M2)!.replaceCredentials({ certChainDer: pki.members[M2]!.chainDer, keyPem: other.keyPem, caPem: pki.ca.certPem }, pki.trustStore())).toThrow(/does not belong/);
    await c.run(1000, () => {
      for (const ip of IPS) expect(c.view(ip).members).toEqual([...IPS].sort());
    });
  });
});
