import { ClusterSchema, UnitsSchema, type ClusterView, type UnitsView } from '@gwcluster/contracts';
import { getJson, type ClientOptions } from './client.js';
import { table, unitRanges } from './format.js';

export type { ClusterView, UnitsView } from '@gwcluster/contracts';

export async function fetchStatus(opts: ClientOptions): Promise<{ cluster: ClusterView; units: UnitsView }> {
  const [cluster, units] = await Promise.all([getJson<ClusterView>(opts, '/v1/cluster', ClusterSchema), getJson<UnitsView>(opts, '/v1/units', UnitsSchema)]);
  return { cluster, units };
}

export function renderStatus({ cluster, units }: { cluster: ClusterView; units: UnitsView }): string {
  const lines: string[] = [];
  lines.push(`member ${cluster.self}: ${cluster.role}`);
  lines.push(`master ${cluster.master ?? '(none)'}   epoch ${cluster.epoch}   config v${cluster.configVersion}   keepalive ${cluster.keepalivePeriodMs} ms`);
  lines.push(`units  ${cluster.units.assigned} assigned, ${cluster.units.unassigned} unassigned, ${cluster.units.moving} moving (table v${cluster.tableVersion})`);
  lines.push('');
  const byOwner = new Map<string, number[]>();
  units.owners.forEach((o, u) => {
    const key = o ?? '(unassigned)';
    byOwner.set(key, [...(byOwner.get(key) ?? []), u]);
  });
  lines.push(
    table(
      ['MEMBER', 'ROLE', 'VERSION', 'UNITS', 'LOAD', 'LOSS', 'WATCHDOG', 'LAST HEARD'],
      cluster.members.map((m) => [
        m.id,
        m.role + (m.draining ? ' (draining)' : ''),
        m.version ?? 'unknown',
        String(m.units),
        m.load.toFixed(1),
        m.loss.toFixed(4),
        `${m.watchdogPeriods} x ${cluster.keepalivePeriodMs} ms`,
        m.lastHeardMsAgo === null ? '-' : `${Math.round(m.lastHeardMsAgo)} ms ago`,
      ]),
    ),
  );
  lines.push('');
  lines.push(table(['OWNER', 'UNITS'], [...byOwner].map(([o, us]) => [o, `${us.length}: ${unitRanges(us)}`])));
  const a = cluster.addresses;
  if (a && (a.pool.length > 0 || a.takeovers.length > 0)) {
    lines.push('');
    lines.push(
      table(
        ['ADDRESS', 'ANSWERED BY'],
        [...a.pool.map((p) => [p.address, p.owner ?? '(not placed)']), ...a.takeovers.map((t) => [t.member, `${t.holder} (member ${t.member} is down)`])],
      ),
    );
  }
  return lines.join('\n');
}
