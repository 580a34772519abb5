// A member that cannot write its configuration file during a configuration change (issue 10, defect 7):
// it adopts nothing, leaves the cluster and gives up its units; the operator's change fails with
// GW_CONFIG_NOT_ADOPTED naming it and why. Three members over the in-memory network, simulated time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki } from '@gwcluster/security';
import { OperatorCluster, auth } from './operator-harness.js';

const IPS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
let c: OperatorCluster;

beforeAll(async () => {
  c = new OperatorCluster(await createTestPki(IPS), { requestTimeoutMs: 1500 });
  for (const ip of IPS) c.add(ip).node.start();
  await c.run(3500);
}, 30_000);

afterAll(async () => {
  await c?.close();
});

describe('a member that cannot write its configuration', () => {
  it('leaves and gives up its units; the change answers 502 GW_CONFIG_NOT_ADOPTED naming the member', async () => {
    const master = c.master().ip;
    const [other, failing] = IPS.filter((ip) => ip !== master) as [string, string];
    expect(c.get(failing).node.status().ownedUnits.length).toBeGreaterThan(0);
    c.unwritable.add(failing);
    const r = await c.during(c.get(other).api.inject({ method: 'PATCH', url: '/v1/config', headers: auth, payload: { changes: { rebalanceIntervalMs: 2500 } } }));
    expect(r.statusCode).toBe(502);
    expect(r.json().code).toBe('GW_CONFIG_NOT_ADOPTED');
    expect(r.json().message).toMatch(new RegExp(`^${master}: configuration version 2 \\(was 1\\) is in force on the master ${master}, but not on 1 member\\(s\\): ${failing}: left the cluster \\(leaving\\): cannot write its configuration file, so it did not adopt version 2: EACCES`));
    await c.run(2000);
    const gone = c.get(failing).node;
    expect(gone.core.role).toBe('left');
    expect(gone.config.cluster.configVersion).toBe(1);
    expect(gone.status().ownedUnits).toEqual([]);
    // The others run version 2 and share every unit; none is left with the member that failed.
    const st = c.get(master).node.status();
    expect(st.members.map((m) => m.id).sort()).toEqual([master, other].sort());
    expect(st.owners.filter((o) => o === failing)).toEqual([]);
    expect(st.owners.filter((o) => o !== null)).toHaveLength(1024);
    for (const ip of [master, other]) expect(c.get(ip).node.config.cluster.configVersion).toBe(2);
    expect(gone.recentEvents().some((e) => e.kind === 'config' && /refused cluster configuration version 2 .*leaving the cluster/.test(e.message))).toBe(true);
  });

  it('once the file can be written, gwctl join brings it back and it adopts the cluster version', async () => {
    const failing = [...c.unwritable][0]!;
    c.unwritable.clear();
    const r = await c.during(c.get(failing).api.inject({ method: 'POST', url: `/v1/members/${failing}/join`, headers: auth }));
    expect(r.statusCode).toBe(202);
    await c.run(4000);
    expect(c.get(failing).node.config.cluster.configVersion).toBe(2);
    expect(c.get(failing).node.core.role).toBe('member');
  });
});
