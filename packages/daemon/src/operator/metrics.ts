/**
 * Prometheus metrics of one member (prom-client), served at GET /metrics. Every value is read when
 * Prometheus scrapes, from the member's status and its providers; nothing is sampled in between except
 * failovers, counted from the member's cluster events. Names and meanings: docs/operator-guide.md.
 *
 * Who exports what, so that an aggregation over every member's scrape counts each fact once:
 * - per-member series (`member` label = this member's address) come from that member only;
 * - cluster-wide facts (gwcluster_cluster_*) and the master's measurements of the other members
 *   (keepalive loss, last keepalive) come from the master only.
 * Names follow the Prometheus conventions (base units, `_total` counters, `_ratio` for 0..1), checked by
 * `promtool check metrics` in the tests.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PROTOCOL_VERSION } from '@gwcluster/wire';
import type { MemberNode } from '../control/member-node.js';
import type { OperatorProviders } from './providers.js';

export interface MetricsOptions {
  readonly node: MemberNode;
  readonly providers: OperatorProviders;
  /** Add Node.js process metrics (gwclusterd_process_*); off in tests. */
  readonly processMetrics?: boolean;
  /** The member certificate (DER or PEM) and the cluster CA (PEM) in force, for their expiry times. */
  readonly certificates?: () => { readonly member?: Uint8Array | string; readonly ca?: string };
}

/** The software version: the daemon package's version (package.json). */
export const SOFTWARE_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** notAfter of a certificate, Unix seconds; null if it cannot be read. */
function expirySeconds(cert: Uint8Array | string | undefined): number | null {
  if (cert === undefined) return null;
  try {
    const x = new X509Certificate(typeof cert === 'string' ? cert : Buffer.from(cert));
    return Math.floor(Date.parse(x.validTo) / 1000);
  } catch {
    return null;
  }
}

export interface MemberMetrics {
  readonly registry: Registry;
  /** Stops listening to the member's events. */
  close(): void;
}

export function createMetrics(opts: MetricsOptions): MemberMetrics {
  const { node, providers } = opts;
  const registry = new Registry();
  if (opts.processMetrics) {
    collectDefaultMetrics({ register: registry, prefix: 'gwclusterd_' });
    // prom-client names three gauges with a `_total` suffix, which Prometheus reserves for counters; the
    // same figures are in gwclusterd_nodejs_active_handles / _requests / _resources (by type).
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) registry.removeSingleMetric(`gwclusterd_nodejs_${name}`);
  }
  const self = node.self;
  const registers = [registry];

  let failovers = 0;
  let lastMaster: string | null = null;
  const unsubscribe = node.onEvent((e) => {
    if (e.kind !== 'role') return;
    const master = (e.fields?.master as string | null | undefined) ?? null;
    if (master !== null) {
      if (lastMaster !== null && master !== lastMaster) failovers++;
      lastMaster = master;
    }
  });

  const status = () => node.status();

  new Gauge({
    name: 'gwcluster_info',
    help: 'This member: 1, labelled with its address, role and the master it follows.',
    labelNames: ['member', 'role', 'master'],
    registers,
    collect() {
      const st = status();
      this.reset();
      this.set({ member: self, role: st.role, master: st.master ?? '' }, 1);
    },
  });
  new Gauge({
    name: 'gwcluster_build_info',
    help: 'Always 1, labelled with the software version and the cluster protocol version this member speaks.',
    labelNames: ['version', 'protocol'],
    registers,
    collect() {
      this.reset();
      this.set({ version: SOFTWARE_VERSION, protocol: String(PROTOCOL_VERSION) }, 1);
    },
  });
  new Gauge({
    name: 'gwcluster_certificate_expiry_timestamp_seconds',
    help: 'When a certificate this member uses expires (notAfter), Unix seconds: certificate="member" (its own) or "ca" (the cluster CA).',
    labelNames: ['member', 'certificate'],
    registers,
    collect() {
      this.reset();
      const certs = opts.certificates?.() ?? {};
      const member = expirySeconds(certs.member);
      const ca = expirySeconds(certs.ca);
      if (member !== null) this.set({ member: self, certificate: 'member' }, member);
      if (ca !== null) this.set({ member: self, certificate: 'ca' }, ca);
    },
  });
  const own = { member: self };
  new Gauge({ name: 'gwcluster_epoch', help: 'Epoch of the master this member follows (or is).', labelNames: ['member'], registers, collect() { this.set(own, status().epoch); } });
  new Gauge({ name: 'gwcluster_config_version', help: 'Cluster configuration version this member runs.', labelNames: ['member'], registers, collect() { this.set(own, node.config.cluster.configVersion); } });
  new Gauge({
    name: 'gwcluster_keepalive_interval_seconds',
    help: 'Keepalive period T in force on this member, seconds.',
    labelNames: ['member'],
    registers,
    collect() {
      this.set(own, status().keepalivePeriodMs / 1000);
    },
  });
  // This member's own row of the member table (as the master's keepalives carry it): one series per
  // member across the cluster, so sum() over the members is the cluster's total.
  const ownGauge = (name: string, help: string, pick: (m: ReturnType<typeof status>['members'][number], st: ReturnType<typeof status>) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['member'],
      registers,
      collect() {
        this.reset();
        const st = status();
        const m = st.members.find((x) => x.id === self);
        if (!m) return;
        const v = pick(m, st);
        if (v !== null) this.set({ member: self }, v);
      },
    });
  ownGauge('gwcluster_member_units', 'Work units this member owns.', (m) => m.units);
  ownGauge('gwcluster_member_load', 'Load of this member (docs/architecture.md, "Load measure").', (m) => m.load);
  ownGauge('gwcluster_member_watchdog_periods', 'Adaptive multiple n the master applies to this member: it is declared dead after n missed keepalives.', (m) => m.watchdogPeriods);
  ownGauge('gwcluster_member_watchdog_seconds', 'Time without keepalive after which the master declares this member dead, (n + 0.5) * T.', (m, st) => ((m.watchdogPeriods + 0.5) * st.keepalivePeriodMs) / 1000);
  ownGauge('gwcluster_member_draining', '1 while this member is drained.', (m) => (m.draining ? 1 : 0));
  new Gauge({
    name: 'gwcluster_liveness_realtime',
    help: "1 if this member's fast-liveness heartbeat thread runs at real-time priority (liveness.realtimePriority), 0 if it runs with normal scheduling (refused, or priority 0); absent without fast liveness.",
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      const v = status().node['liveness.realtime'];
      if (v !== undefined) this.set(own, v);
    },
  });
  new Gauge({
    name: 'gwcluster_is_master',
    help: '1 if this member is the master, else 0 (sum over the members: masters in the cluster, 1 when healthy).',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      this.set({ member: self }, status().role === 'master' ? 1 : 0);
    },
  });

  // Cluster-wide facts and the master's measurements of the others: exported by the master only, so an
  // aggregation over every member's scrape counts each fact once.
  new Gauge({
    name: 'gwcluster_cluster_members',
    help: 'Members in the cluster (exported by the master only; member = the master).',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      const st = status();
      if (st.role === 'master') this.set(own, st.members.length);
    },
  });
  const masterView = (name: string, help: string, pick: (m: ReturnType<typeof status>['members'][number]) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['member'],
      registers,
      collect() {
        this.reset();
        const st = status();
        if (st.role !== 'master') return;
        for (const m of st.members) {
          if (m.id === self) continue;
          const v = pick(m);
          if (v !== null) this.set({ member: m.id }, v);
        }
      },
    });
  masterView('gwcluster_member_keepalive_loss_ratio', "The master's estimate P of a member's lost keepalives per keepalive, 0..1 (exported by the master only, for the other members).", (m) => m.loss);
  masterView('gwcluster_member_last_keepalive_age_seconds', "Seconds since the master last heard a member's keepalive (exported by the master only, for the other members).", (m) => (m.lastHeardMsAgo === null ? null : m.lastHeardMsAgo / 1000));
  new Gauge({
    name: 'gwcluster_master_keepalive_loss_ratio',
    help: "This member's estimate P of the master's lost keepalives, 0..1 (members only).",
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      const loss = node.core.masterLoss;
      if (loss !== null) this.set(own, loss);
    },
  });
  new Gauge({
    name: 'gwcluster_cluster_units',
    help: 'Work units by state: assigned, unassigned, moving (an assign or de-assign in flight); exported by the master only (member = the master).',
    labelNames: ['member', 'state'],
    registers,
    collect() {
      this.reset();
      const st = status();
      if (st.role !== 'master') return;
      const assigned = st.owners.filter((o) => o !== null).length;
      this.set({ member: self, state: 'assigned' }, assigned);
      this.set({ member: self, state: 'unassigned' }, st.owners.length - assigned);
      this.set({ member: self, state: 'moving' }, st.movingUnits);
    },
  });
  new Counter({
    name: 'gwcluster_failovers_total',
    help: 'Master changes this member has seen (a new master replaced the one it knew).',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      this.inc(own, failovers);
    },
  });
  new Counter({
    name: 'gwcluster_watchdog_expired_total',
    help: 'Watchdogs expired: peer="master" (this member lost its master), peer="member" (as master, a member died).',
    labelNames: ['member', 'peer'],
    registers,
    collect() {
      const c = node.core.counters;
      this.reset();
      this.inc({ member: self, peer: 'master' }, c['watchdog.master-dead'] ?? 0);
      this.inc({ member: self, peer: 'member' }, c['watchdog.member-dead'] ?? 0);
    },
  });
  new Counter({
    name: 'gwcluster_messages_total',
    help: 'Cluster protocol messages by direction and type.',
    labelNames: ['member', 'direction', 'type'],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(node.core.counters)) {
        const m = /^(rx|tx)\.([a-z-]+)$/.exec(k);
        if (m) this.inc({ member: self, direction: m[1] === 'rx' ? 'in' : 'out', type: m[2]! }, v);
      }
    },
  });
  new Counter({
    name: 'gwcluster_messages_authenticated_total',
    help: 'Cluster datagrams this member sent, by how they were authenticated: method="signature" (ECDSA) or "mac" (pairwise HMAC, protocol.md "Framing and authentication").',
    labelNames: ['member', 'method'],
    registers,
    collect() {
      this.reset();
      const security = status().security;
      this.inc({ member: self, method: 'signature' }, security['sealed.signature'] ?? 0);
      this.inc({ member: self, method: 'mac' }, security['sealed.mac'] ?? 0);
    },
  });
  new Counter({
    name: 'gwcluster_datagrams_dropped_total',
    help: 'Cluster datagrams dropped before the protocol, by reason (protocol.md "Framing and authentication").',
    labelNames: ['member', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(node.counters)) if (k.startsWith('drop.')) this.inc({ member: self, reason: k.slice(5) }, v);
    },
  });

  // Data plane: this member's own traffic, per unit and in total.
  const unitCounter = (name: string, help: string, read: () => ArrayLike<number> | undefined) =>
    new Counter({
      name,
      help,
      labelNames: ['member', 'unit'],
      registers,
      collect() {
        this.reset();
        const values = read();
        if (!values) return;
        for (let u = 0; u < values.length; u++) if (values[u]! > 0) this.inc({ member: self, unit: String(u) }, values[u]!);
      },
    });
  unitCounter('gwcluster_unit_packets_total', 'Packets this member handled per work unit (units with traffic only).', () => providers.traffic?.unitPackets());
  unitCounter('gwcluster_unit_bytes_total', 'Bytes this member handled per work unit (units with traffic only).', () => providers.traffic?.unitBytes());
  unitCounter('gwcluster_unit_dropped_packets_total', 'Packets this member dropped per work unit (units with drops only).', () => providers.traffic?.unitDrops());
  const sum = (a: ArrayLike<number> | undefined) => {
    let s = 0;
    if (a) for (let i = 0; i < a.length; i++) s += a[i]!;
    return s;
  };
  new Counter({
    name: 'gwcluster_packets_total',
    help: 'Packets this member handled.',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      if (providers.traffic) this.inc({ member: self }, sum(providers.traffic.unitPackets()));
    },
  });
  new Counter({
    name: 'gwcluster_bytes_total',
    help: 'Bytes this member handled.',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      if (providers.traffic) this.inc({ member: self }, sum(providers.traffic.unitBytes()));
    },
  });
  new Counter({
    name: 'gwcluster_dropped_packets_total',
    help: 'Packets this member dropped, by reason.',
    labelNames: ['member', 'reason'],
    registers,
    collect() {
      this.reset();
      if (!providers.traffic) return;
      for (const [reason, v] of Object.entries(providers.traffic.drops())) this.inc({ member: self, reason }, v);
    },
  });
  // WireGuard tunnels (tunnels.wireguard): per peer, this member's counters (the owner's are the tunnel's).
  const tunnelPeers = () => providers.tunnels?.view().peers ?? [];
  const peerCounter = (name: string, help: string, pick: (p: ReturnType<typeof tunnelPeers>[number]) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['member', 'peer'],
      registers,
      collect() {
        this.reset();
        for (const p of tunnelPeers()) if (pick(p) > 0) this.inc({ member: self, peer: p.publicKey }, pick(p));
      },
    });
  peerCounter('gwcluster_tunnel_received_bytes_total', 'WireGuard transport bytes this member received from each peer (peer = its public key).', (p) => p.rxBytes);
  peerCounter('gwcluster_tunnel_received_packets_total', 'WireGuard transport messages this member received from each peer.', (p) => p.rxPackets);
  peerCounter('gwcluster_tunnel_sent_bytes_total', 'WireGuard transport bytes this member sent to each peer.', (p) => p.txBytes);
  peerCounter('gwcluster_tunnel_sent_packets_total', 'WireGuard transport messages this member sent to each peer.', (p) => p.txPackets);
  new Gauge({
    name: 'gwcluster_tunnel_latest_handshake_seconds',
    help: 'Unix time of the latest handshake this member completed with each peer (peers with one only).',
    labelNames: ['member', 'peer'],
    registers,
    collect() {
      this.reset();
      for (const p of tunnelPeers()) if (p.latestHandshake) this.set({ member: self, peer: p.publicKey }, Date.parse(p.latestHandshake) / 1000);
    },
  });
  new Counter({
    name: 'gwcluster_tunnel_dropped_packets_total',
    help: 'WireGuard packets this member dropped, by stage (handshake, transport) and reason (docs/tunnels.md).',
    labelNames: ['member', 'stage', 'reason'],
    registers,
    collect() {
      this.reset();
      const d = providers.tunnels?.view().drops;
      if (!d) return;
      for (const [reason, v] of Object.entries(d.handshake)) if (v > 0) this.inc({ member: self, stage: 'handshake', reason }, v);
      for (const [reason, v] of Object.entries(d.transport)) if (v > 0) this.inc({ member: self, stage: 'transport', reason }, v);
    },
  });
  new Gauge({
    name: 'gwcluster_hold_queue_packets',
    help: 'Packets held for units being assigned (Figure 9).',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      if (providers.traffic) this.set({ member: self }, providers.traffic.holdQueue().packets);
    },
  });
  new Gauge({
    name: 'gwcluster_hold_queue_bytes',
    help: 'Bytes held for units being assigned.',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      if (providers.traffic) this.set({ member: self }, providers.traffic.holdQueue().bytes);
    },
  });
  new Gauge({
    name: 'gwcluster_sync_backlog_entries',
    help: 'State entries waiting to be sent to peers.',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      if (providers.sync) this.set({ member: self }, providers.sync.backlog());
    },
  });
  new Counter({
    name: 'gwcluster_sync_bytes_total',
    help: 'State synchronisation bytes, by direction.',
    labelNames: ['member', 'direction'],
    registers,
    collect() {
      this.reset();
      if (!providers.sync) return;
      this.inc({ member: self, direction: 'out' }, providers.sync.bytesSent());
      this.inc({ member: self, direction: 'in' }, providers.sync.bytesReceived());
    },
  });
  new Gauge({
    name: 'gwcluster_sessions',
    help: 'Sessions this member knows.',
    labelNames: ['member'],
    registers,
    collect() {
      this.reset();
      this.set({ member: self }, providers.sessions.list({}, 0, 0).total);
    },
  });

  return { registry, close: unsubscribe };
}
