// Rolling upgrade: a newer master propagates a cluster configuration with a live field this release does
// not know. Real MemberNodes with real signatures over the in-memory network, real configuration files.
// The member adopts the version without the field (a warning, a counter) and stays in the cluster.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@gwcluster/security';
import { CLUSTER_LIVE_FIELDS } from '@gwcluster/contracts';
import { OperatorCluster, auth } from './operator-harness.js';

const IPS = ['192.0.2.11', '192.0.2.12'];
let pki: TestPki;
let c: OperatorCluster;

beforeAll(async () => {
  pki = await createTestPki(IPS);
  c = new OperatorCluster(pki);
  for (const ip of IPS) c.add(ip).node.start();
  await c.run(3000);
}, 30_000);

afterAll(async () => {
  await c?.close();
});

describe('a propagated configuration with a field this release does not know', () => {
  it('is adopted without the field, counted and warned about once; the member stays in the cluster', async () => {
    const master = c.master();
    const member = c.get(IPS.find((ip) => ip !== master.ip)!);
    expect(member.node.core.role).toBe('member');
    const settings: Record<string, unknown> = Object.fromEntries(CLUSTER_LIVE_FIELDS.map((f) => [f, master.node.config.cluster[f]]));
    settings.keepalivePeriodMs = 120;
    settings.futureKnobMs = 5;
    // What a master of a newer release sends: CONFIG UPDATE, signed with its member certificate.
    master.node.sendControl(member.ip, { type: 'config-update', version: 2, clusterConfig: new TextEncoder().encode(JSON.stringify(settings)) });
    await c.run(1000);
    expect(member.node.config.cluster.configVersion).toBe(2);
    expect(member.node.config.cluster.keepalivePeriodMs).toBe(120);
    const file = JSON.parse(readFileSync(member.configFile, 'utf8'));
    expect(file.cluster).toMatchObject({ configVersion: 2, keepalivePeriodMs: 120 });
    expect(file.cluster).not.toHaveProperty('futureKnobMs');
    // Kept for the release that knows it: once this member is upgraded, it boots with the cluster's value.
    expect(file.cluster.heldForNewerRelease).toEqual({ futureKnobMs: 5 });
    expect(member.node.config.cluster.heldForNewerRelease).toEqual({ futureKnobMs: 5 });
    expect(member.node.counters['config.unknown-fields-ignored']).toBe(1);
    const counters = (await member.api.inject({ url: '/v1/counters', headers: auth })).json();
    expect(counters.counters['node.config.unknown-fields-ignored']).toBe(1);
    const warning = member.node.recentEvents().filter((e) => /does not know, ignored: futureKnobMs/.test(e.message));
    expect(warning).toHaveLength(1);
    // Still in the cluster, and the master runs the same version now (the higher version wins).
    expect(member.node.core.role).toBe('member');
    expect(master.node.config.cluster.configVersion).toBe(2);
    expect(master.node.status().members.map((m) => m.id).sort()).toEqual([...IPS].sort());
  });
});
