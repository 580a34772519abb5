// Each member announces its software release (JOIN REQUEST, CLIENT KEEPALIVE); the master's member list,
// and so every member's status, carries it. A member that announces none (an older release) shows none.
import { describe, expect, it } from 'vitest';
import { decodeClusterMessage, encodeClusterMessage, type ClusterMessage } from '@gwcluster/wire';
import { SimNetwork } from '../src/index.js';

const ip = (i: number) => `192.0.2.${i}`;

describe('software versions', () => {
  it('the master lists every member with the version it announced, and every member reports the same list', () => {
    const net = new SimNetwork({ seed: 7 });
    net.add(ip(11), { softwareVersion: '1.4.0' });
    net.add(ip(12), { softwareVersion: '1.5.0-rc.1' });
    net.add(ip(13));
    for (const i of [11, 12, 13]) net.start(ip(i));
    expect(net.runUntil(() => net.converged(3), 20_000)).not.toBeNull();
    net.run(500);
    for (const i of [11, 12, 13]) {
      const members = net.node(ip(i)).member.status(net.now).members;
      const byId = Object.fromEntries(members.map((m) => [m.id, m.version]));
      expect(byId, `as ${ip(i)} sees it`).toEqual({ [ip(11)]: '1.4.0', [ip(12)]: '1.5.0-rc.1', [ip(13)]: undefined });
    }
  });

  it('the codec carries software_version as an optional field: absent stays absent, junk is refused', () => {
    const roundTrip = (m: ClusterMessage) => decodeClusterMessage(encodeClusterMessage(m));
    const join: ClusterMessage = { type: 'join-request', configVersion: 1, claimedUnits: [], nonce: 5, softwareVersion: '0.2.0' };
    expect(roundTrip(join)).toMatchObject({ ok: true, value: join });
    const old: ClusterMessage = { type: 'join-request', configVersion: 1, claimedUnits: [], nonce: 5 };
    const decoded = roundTrip(old);
    expect(decoded).toMatchObject({ ok: true });
    expect((decoded as { value: object }).value).not.toHaveProperty('softwareVersion');
    const ka: ClusterMessage = { type: 'client-keepalive', epoch: 1, seq: 2, load: 0, ownedUnits: [], busiestUnits: [], syncReady: true, softwareVersion: '0.2.0' };
    expect(roundTrip(ka)).toMatchObject({ ok: true, value: { softwareVersion: '0.2.0' } });
    const owners = new Array(1024).fill(null);
    const mk: ClusterMessage = {
      type: 'master-keepalive', epoch: 1, seq: 1, keepalivePeriodMs: 100, configVersion: 1,
      members: [{ member: ip(11), watchdogPeriods: 2, loss: 0, load: 0, softwareVersion: '0.2.0' }, { member: ip(12), watchdogPeriods: 2, loss: 0, load: 0 }],
      table: { version: 1, owners },
    };
    const got = roundTrip(mk) as { ok: true; value: { members: { softwareVersion?: string }[] } };
    expect(got.value.members.map((m) => m.softwareVersion)).toEqual(['0.2.0', undefined]);
    for (const bad of ['has space', 'x'.repeat(33)]) {
      expect(roundTrip({ ...join, softwareVersion: bad } as ClusterMessage)).toMatchObject({ ok: false });
    }
  });
});
