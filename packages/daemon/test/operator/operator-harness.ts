/**
 * A cluster of MemberNodes over the in-memory hub with real signatures, each with its operator channel,
 * metrics and admin API (fastify, used through inject()), and a configuration file in a temp dir so that
 * configuration propagation writes real files. Time is simulated only (10 ms ticks drive the members and
 * their operator planes); `during()` runs the cluster while an admin request that needs other members (a
 * forwarded action) is in flight.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { TestPki } from '@gwcluster/security';
import { parseMemberConfig, type MemberConfig } from '../../src/config/config.js';
import { MemberNode } from '../../src/control/member-node.js';
import { NoClusterAddress } from '../../src/control/cluster-address.js';
import { OperatorChannel } from '../../src/operator/operator-channel.js';
import { writeConfigFileAtomically } from '../../src/config/cluster-config.js';
import { buildAdminServer } from '../../src/operator/server.js';
import { createMetrics, type MemberMetrics } from '../../src/operator/metrics.js';
import type { OperatorProviders } from '../../src/operator/providers.js';
import { MemoryNetwork } from '@gwcluster/cluster-core';

export const TOKEN = 'test-token-0123456789abcdef';
export const WALL0 = Date.parse('2026-06-01T00:00:00Z');

export interface OperatorMember {
  readonly ip: string;
  readonly node: MemberNode;
  readonly channel: OperatorChannel;
  readonly api: FastifyInstance;
  readonly metrics: MemberMetrics;
  readonly configFile: string;
}

export class OperatorCluster {
  readonly hub = new MemoryNetwork();
  readonly dir = mkdtempSync(join(tmpdir(), 'gwcluster-operator-'));
  now = 0;
  readonly members = new Map<string, OperatorMember>();
  /** Members whose configuration file cannot be written (EACCES), as when its directory is read-only. */
  readonly unwritable = new Set<string>();

  constructor(
    readonly pki: TestPki,
    readonly opts: { token?: string | null; metricsToken?: string; processMetrics?: boolean; providers?: OperatorProviders; requestTimeoutMs?: number; configVersion?: number } = {},
  ) {}

  config(ip: string, configVersion = this.opts.configVersion ?? 1): MemberConfig {
    const file = join(this.dir, `${ip}.json`);
    const raw = {
      cluster: { name: 'test', clusterIp: '198.51.100.10', configVersion },
      member: { address: ip, interface: 'eth0' },
      pki: { certificate: 'member.crt', key: 'member.key', ca: 'ca.crt' },
      clusterAddress: { mode: 'none' },
      logLevel: 'error',
    };
    writeFileSync(file, `${JSON.stringify(raw, null, 2)}\n`, { mode: 0o640 });
    return parseMemberConfig(raw, file, this.dir);
  }

  add(ip: string, configVersion?: number): OperatorMember {
    const m = this.pki.members[ip]!;
    const config = this.config(ip, configVersion);
    const node = new MemberNode({
      config,
      credentials: { certChainDer: m.chainDer, keyPem: m.keyPem, caPem: this.pki.ca.certPem },
      transport: this.hub.attach(ip),
      clusterAddress: new NoClusterAddress(),
      logger: pino({ level: 'silent' }),
      clock: () => this.now,
      wallClock: () => WALL0 + this.now,
      incarnation: WALL0 + this.now,
      autoTick: false,
    });
    const channel = new OperatorChannel({
      node,
      requestTimeoutMs: this.opts.requestTimeoutMs ?? 2000,
      retransmitMs: 50,
      clock: () => this.now,
      wallClock: () => WALL0 + this.now,
      autoTick: false,
      writeConfigFile: (file, raw) => {
        if (this.unwritable.has(ip)) throw Object.assign(new Error(`EACCES: permission denied, open '${file}'`), { code: 'EACCES' });
        writeConfigFileAtomically(file, raw);
      },
    });
    const metrics = createMetrics({
      node,
      providers: this.opts.providers ?? { sessions: { list: () => ({ total: 0, sessions: [] }) }, traffic: null, sync: null },
      certificates: () => ({ member: m.chainDer[0], ca: this.pki.ca.certPem }),
      ...(this.opts.processMetrics ? { processMetrics: true } : {}),
    });
    const token = this.opts.token === null ? undefined : (this.opts.token ?? TOKEN);
    const api = buildAdminServer({
      node,
      channel,
      metrics,
      logger: pino({ level: 'silent' }),
      ...(token ? { token } : {}),
      ...(this.opts.metricsToken ? { metricsToken: this.opts.metricsToken } : {}),
      ...(this.opts.providers ? { providers: this.opts.providers } : {}),
    });
    const member = { ip, node, channel, api, metrics, configFile: config.source };
    this.members.set(ip, member);
    return member;
  }

  get(ip: string): OperatorMember {
    return this.members.get(ip)!;
  }

  /** Advances simulated time in 10 ms ticks, delivering datagrams and letting promises settle. */
  async run(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += 10) {
      this.now += 10;
      for (const m of this.members.values()) {
        m.node.tick();
        m.channel.tick();
      }
      this.hub.flush();
      await Promise.resolve();
      this.hub.flush();
    }
  }

  /** Runs the cluster until `p` settles or maxMs of simulated time have passed; then returns p. */
  async during<T>(p: Promise<T>, maxMs = 3000): Promise<T> {
    let settled = false;
    void p.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let t = 0; t < maxMs && !settled; t += 10) {
      await this.run(10);
      await new Promise((r) => setImmediate(r));
    }
    return p;
  }

  master(): OperatorMember {
    for (const m of this.members.values()) if (m.node.core.role === 'master') return m;
    throw new Error('no master');
  }

  async close(): Promise<void> {
    for (const m of this.members.values()) {
      m.channel.close();
      m.metrics.close();
      await m.api.close();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const auth = { authorization: `Bearer ${TOKEN}` };
