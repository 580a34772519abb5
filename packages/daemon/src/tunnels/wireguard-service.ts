/**
 * The WireGuard endpoint inside gwclusterd (tunnels.wireguard, docs/tunnels.md "Ownership in the cluster").
 *
 * Every member runs the endpoint on the cluster IP (cluster.clusterIp, on every member's `lo` once the data
 * plane is up) and the configured port: the socket exists everywhere and the packet engine delivers a
 * peer's outer packets (unit = source address ^ source port) to exactly one member, the unit's owner,
 * which answers the handshake and decrypts. Decrypted packets leave by the TUN device and are routed by
 * the kernel; the service routes every peer's allowed IPs to the TUN device.
 *
 * Lifecycle: start() (keys read and checked, device and socket opened, routes added; throws BootError)
 * -> view() at any time -> stop() (idempotent; the TUN device and its routes go with it). A reload that
 * changes the section stops the endpoint and starts the new one (peers re-handshake: the keypairs are
 * not carried over). Bad packets never reach here as exceptions: the core and the data path count them
 * per reason; a failure while handling one event is logged and counted ('internal-error').
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { WireGuardConfig } from '@gwcluster/contracts';
import { classifyFlow } from '@gwcluster/native-addon';
import type { MemberId } from '@gwcluster/wire';
import type { TunnelPeerView, TunnelsProvider, TunnelsView } from './tunnels-view.js';
import { BootError } from '../config/credentials.js';
import { loadWireGuardKeys } from './wireguard-keys.js';
import { WireGuardEndpoint } from './wireguard-endpoint.js';
import type { Endpoint } from './tunnel-core.js';
import { DEFAULT_LEASE, TunnelReplication } from './tunnel-replication.js';

const run = promisify(execFile);

export type { TunnelPeerView, TunnelsProvider, TunnelsView } from './tunnels-view.js';

export interface WireGuardServiceOptions {
  readonly config: WireGuardConfig;
  /** The cluster IP the socket binds. */
  readonly listenAddress: string;
  readonly logger: Logger;
  /** The work table as this member knows it (owner per unit). */
  readonly owners: () => readonly (MemberId | null)[];
  /** Where the configuration came from (BootError names it). */
  readonly source: string;
  /** This member (its own address: the forward socket binds it). */
  readonly self?: MemberId;
  /** The current members (this one included). */
  readonly members?: () => readonly MemberId[];
  /** The units this member serves now (its own state: the table may name a unit's receiver before it owns it). */
  readonly ownedUnits?: () => readonly number[];
  /** Tunnel state is replicated with the sessions (docs/tunnels.md, "Replication and takeover"). */
  readonly replicated?: boolean;
}

export class WireGuardService implements TunnelsProvider {
  private endpoint?: WireGuardEndpoint;
  private publicKey: string | null = null;
  /** The tunnels' replication, when replicated. */
  replication?: TunnelReplication;
  private readonly units = new Map<string, number | null>();

  constructor(private readonly opts: WireGuardServiceOptions) {}

  get config(): WireGuardConfig {
    return this.opts.config;
  }

  /** Opens the endpoint (when enabled). Throws BootError naming the file or field on any failure, and then holds nothing open. */
  async start(): Promise<void> {
    const c = this.opts.config;
    const keys = loadWireGuardKeys(c);
    this.publicKey = keys.publicKey;
    if (!c.enabled) return;
    const log = this.opts.logger;
    const replicated = Boolean(this.opts.replicated && this.opts.self && this.opts.members);
    const endpoint = new WireGuardEndpoint({
      ...(replicated ? { replicated: true, defaultSendLimit: DEFAULT_LEASE, forwardAddress: this.opts.self, forwardPort: c.forwardPort } : {}),
      privateKey: keys.privateKey,
      listenAddress: this.opts.listenAddress,
      listenPort: c.listenPort,
      tunName: c.interface,
      mtu: c.mtu,
      underLoadPerSecond: c.underLoadPerSecond,
      peers: c.peers.map((p, i) => ({ publicKey: Buffer.from(p.publicKey, 'base64'), allowedIps: p.allowedIps, ...(keys.presharedKeys[i] ? { presharedKey: keys.presharedKeys[i] } : {}) })),
      onError: (what, err) => log.error({ err: err.message }, `wireguard: ${what}: ${err.message}`),
      onEffect: (e) => {
        if (e.kind === 'handshake-complete') log.info({ peer: c.peers[e.peer]?.publicKey }, 'wireguard: handshake completed');
      },
    });
    try {
      endpoint.start();
    } catch (e) {
      endpoint.close();
      throw new BootError(this.opts.source, `tunnels.wireguard: cannot open ${c.interface} and UDP ${this.opts.listenAddress}:${c.listenPort}: ${(e as Error).message}`);
    }
    try {
      for (const p of c.peers) for (const prefix of p.allowedIps) await run('ip', ['route', 'replace', prefix, 'dev', c.interface], { timeout: 10_000 });
    } catch (e) {
      endpoint.close();
      throw new BootError(this.opts.source, `tunnels.wireguard: cannot route the peers' allowed IPs to ${c.interface}: ${String((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}`);
    }
    this.endpoint = endpoint;
    if (replicated) {
      const self = this.opts.self!;
      const members = this.opts.members!;
      // One look at the cluster per tick (the core's status is not free).
      let seen: { owners: readonly (MemberId | null)[]; owned: ReadonlySet<number>; members: readonly MemberId[] } = { owners: [], owned: new Set(), members: [] };
      const replication = new TunnelReplication(endpoint, {
        self,
        members: () => seen.members,
        unitOf: (e) => this.unitOf(e),
        ownerOf: (e) => {
          const u = this.unitOf(e);
          if (u === null) return null;
          if (seen.owned.has(u)) return self;
          // The table names a unit's receiver while the move is under way: not ours until we serve it.
          const t = seen.owners[u] ?? null;
          return t === self ? null : t;
        },
      }, {
        replicateKeys: c.replicateKeys, forwardPort: c.forwardPort, wallMs: Date.now,
        onEvent: (what, peer, detail) => log.info({ peer: c.peers[peer]?.publicKey, ...detail }, what === 'takeover' ? 'wireguard: took the tunnel over' : 'wireguard: tunnel handed on'),
      });
      this.replication = replication;
      let forwarders = '';
      endpoint.onTick = () => {
        seen = { owners: this.opts.owners(), owned: new Set(this.opts.ownedUnits?.() ?? []), members: members() };
        const others = seen.members.filter((m) => m !== self);
        const key = others.join(',');
        if (key !== forwarders) {
          forwarders = key;
          endpoint.setForwarders(others);
        }
        replication.tick(performance.now());
      };
    }
    log.info({ publicKey: keys.publicKey, listen: `${this.opts.listenAddress}:${endpoint.port}`, interface: c.interface, peers: c.peers.length }, 'wireguard: endpoint listening');
  }

  private unitOf(e: Endpoint): number | null {
    const k = `${e.address}:${e.port}`;
    let u = this.units.get(k);
    if (u === undefined) {
      try {
        u = classifyFlow({ proto: 'udp', src: e.address, sport: e.port, dst: this.opts.listenAddress, dport: this.opts.config.listenPort }).unit;
      } catch {
        u = null;
      }
      if (this.units.size > 4096) this.units.clear();
      this.units.set(k, u);
    }
    return u;
  }

  /** Closes the endpoint; the TUN device (and the routes through it) disappear with its descriptor. Idempotent. */
  stop(): void {
    this.endpoint?.close();
    this.endpoint = undefined;
    this.replication = undefined;
  }

  view(): TunnelsView {
    const c = this.opts.config;
    const ep = this.endpoint;
    const owners = this.opts.owners();
    const status = ep?.status() ?? [];
    const peers = c.peers.map((p, i): TunnelPeerView => {
      const s = status.find((x) => x.publicKey === p.publicKey) ?? status[i];
      const e = s?.endpoint ?? null;
      let unit: number | null = null;
      if (e) {
        try {
          unit = classifyFlow({ proto: 'udp', src: e.address, sport: e.port, dst: this.opts.listenAddress, dport: c.listenPort }).unit;
        } catch {
          unit = null;
        }
      }
      return {
        publicKey: p.publicKey,
        ...(p.name !== undefined ? { name: p.name } : {}),
        allowedIps: [...p.allowedIps],
        endpoint: e ? `${e.address}:${e.port}` : null,
        unit,
        owner: unit === null ? null : (owners[unit] ?? null),
        latestHandshake: s?.latestHandshakeMs ? new Date(s.latestHandshakeMs).toISOString() : null,
        rxBytes: s?.rxBytes ?? 0,
        rxPackets: s?.rxPackets ?? 0,
        txBytes: s?.txBytes ?? 0,
        txPackets: s?.txPackets ?? 0,
      };
    });
    const d = ep?.drops();
    const nonZero = (r: Readonly<Record<string, number | undefined>> | null | undefined) => Object.fromEntries(Object.entries(r ?? {}).filter(([k, v]) => (v ?? 0) > 0 && k !== 'data' && k !== 'keepalive')) as Record<string, number>;
    return {
      enabled: c.enabled,
      running: ep !== undefined,
      publicKey: this.publicKey,
      listenAddress: this.opts.listenAddress,
      listenPort: c.listenPort,
      interface: c.interface,
      peers,
      drops: { handshake: nonZero(d?.handshake), transport: nonZero(d?.transport) },
    };
  }
}
