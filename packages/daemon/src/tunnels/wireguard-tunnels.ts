/**
 * The member's tunnel plane as gwclusterd holds it: the WireGuard service of the configuration in force,
 * replaced when a reload changes the section or its key files (the new keys are read and checked before
 * the old endpoint is closed). The operator plane reads it through TunnelsProvider, whichever service
 * runs at the time.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { MemberConfig, WireGuardConfig } from '@gwcluster/contracts';
import type { MemberId } from '@gwcluster/wire';
import { loadWireGuardKeys } from './wireguard-keys.js';
import { WireGuardService } from './wireguard-service.js';
import { NO_TUNNELS, type TunnelsProvider, type TunnelsView } from './tunnels-view.js';
import type { ExtraRecords } from '../sync/session-sync.js';
import { isTunnelRecord } from './tunnel-replication.js';

export interface WireGuardTunnelsOptions {
  readonly clusterIp: string;
  readonly logger: Logger;
  readonly owners: () => readonly (MemberId | null)[];
  /** This member and the current members: tunnel state is replicated when `replicated` (sessions sync on). */
  readonly self?: MemberId;
  readonly members?: () => readonly MemberId[];
  readonly ownedUnits?: () => readonly number[];
  readonly replicated?: boolean;
}

/** A digest of the key files' contents: a reload with the same paths but new keys restarts the endpoint. */
function keyDigest(wg: WireGuardConfig): string {
  const h = createHash('sha256');
  for (const f of [wg.privateKeyFile, ...wg.peers.map((p) => p.presharedKeyFile ?? '')]) {
    try {
      h.update(f ? readFileSync(f) : '');
    } catch {
      h.update('unreadable');
    }
    h.update('\0');
  }
  return h.digest('hex');
}

export class WireGuardTunnels implements TunnelsProvider {
  private service?: WireGuardService;
  private running?: { config: WireGuardConfig; keys: string };

  constructor(private readonly opts: WireGuardTunnelsOptions) {}

  /** The tunnels' records for the state sync (whichever service runs; nothing while none does). */
  readonly sync: ExtraRecords = {
    owns: (r) => isTunnelRecord(r),
    install: (_from, records) => this.service?.replication?.install(records),
    collect: () => this.service?.replication?.collect() ?? [],
    recordsOf: (units) => this.service?.replication?.recordsOf(units) ?? [],
    handoverRecordsOf: (units) => this.service?.replication?.handoverRecordsOf(units, performance.now()) ?? [],
    acked: (from, key, version) => this.service?.replication?.acked(from, key, version),
  };

  /** Whether `config` would change what runs (the section or its key files' contents). */
  differs(config: MemberConfig): boolean {
    const wg = config.tunnels?.wireguard;
    if (!wg || !this.running) return Boolean(wg) !== Boolean(this.running);
    return !isDeepStrictEqual(wg, this.running.config) || keyDigest(wg) !== this.running.keys;
  }

  /** Reads and checks the section's key files (BootError) without changing anything. */
  check(config: MemberConfig): void {
    if (config.tunnels?.wireguard) loadWireGuardKeys(config.tunnels.wireguard);
  }

  /** Runs the endpoint of `config` (stops the one running when it differs). Throws BootError; then nothing runs. */
  async apply(config: MemberConfig): Promise<void> {
    if (!this.differs(config)) return;
    this.check(config);
    this.stop();
    const wg = config.tunnels?.wireguard;
    if (!wg) return;
    const service = new WireGuardService({
      config: wg, listenAddress: this.opts.clusterIp, logger: this.opts.logger, owners: this.opts.owners, source: config.source,
      ...(this.opts.self ? { self: this.opts.self } : {}), ...(this.opts.members ? { members: this.opts.members } : {}), ...(this.opts.ownedUnits ? { ownedUnits: this.opts.ownedUnits } : {}), replicated: this.opts.replicated ?? false,
    });
    await service.start();
    this.service = service;
    this.running = { config: wg, keys: keyDigest(wg) };
  }

  stop(): void {
    if (this.service) this.opts.logger.info('wireguard: endpoint stopped');
    this.service?.stop();
    this.service = undefined;
    this.running = undefined;
  }

  view(): TunnelsView {
    return this.service?.view() ?? NO_TUNNELS;
  }
}
