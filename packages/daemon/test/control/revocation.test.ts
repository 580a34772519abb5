// Certificates replaced in a running cluster (MemberNode.replaceCredentials, what gwclusterd reload
// installs), with real signatures over the in-memory network: a revoked member is refused at its next
// message and cannot rejoin while the others carry on; a member whose certificate (and key) is renewed
// stays in the cluster.
import { beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createRevocationList, createTestPki, issueMemberCertificate, TrustStore, type TestPki } from '@gwcluster/security';
import { MemoryNetwork } from '@gwcluster/cluster-core';
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
    await c.run(3000, () => {
      for (const ip of IPS) expect(c.view(ip).members).toEqual([...IPS].sort());
    });
    for (const ip of [M1, M3]) expect(c.nodes.get(ip)!.status().node['drop.bad-signature'] ?? 0).toBe(0);
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
