/**
 * Reloading a running member's configuration file (SIGHUP, `systemctl reload gwclusterd`): everything is
 * read and checked first, with the checks of a boot (schema, certificate chain and dates against the new
 * CA and CRL, key permissions and match, bundle signature, admin TLS files); on any error nothing changes,
 * the error is logged and counted (node counter reload.failed). Otherwise the live fields
 * (config/reload-plan.ts) are installed and what changed is logged and recorded as a cluster event; fields
 * that need a restart are reported, not applied. The member stays in the cluster throughout: no message
 * is sent for a reload, and the incarnation and message sequence carry on.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { TrustStore } from '@gwcluster/security';
import { ConfigError, loadMemberConfig, type MemberConfig } from './config/config.js';
import { BootError, loadCredentialsAndTrust } from './config/credentials.js';
import { planReload, type NotApplied } from './config/reload-plan.js';
import { applicationsFromConfig } from './control/applications.js';
import type { Credentials, MemberNode } from './control/member-node.js';
import type { WireGuardTunnels } from './tunnels/wireguard-tunnels.js';
import { readAdminTls, updateAdminCredentials, type AdminTlsMaterial } from './operator/server.js';

export type ReloadOutcome =
  | { readonly ok: true; readonly changed: readonly string[]; readonly notApplied: readonly NotApplied[] }
  | { readonly ok: false; readonly error: string };

export interface MemberReloaderOptions {
  readonly node: MemberNode;
  readonly admin: FastifyInstance;
  /** What the member booted with (loadCredentialsAndTrust). */
  readonly credentials: Credentials;
  readonly trust: TrustStore;
  /** Wall clock, ms (certificate dates). Default Date.now(). */
  readonly wallClock?: () => number;
  /** Reads the configuration file (with the adopted versions of the state directory laid over it). Default loadMemberConfig. */
  readonly load?: (file: string) => MemberConfig;
  /** The tunnel plane: restarted when the WireGuard section or its key files change. */
  readonly tunnels?: WireGuardTunnels;
}

function leafSerial(credentials: Credentials): string {
  return new X509Certificate(Buffer.from(credentials.certChainDer[0]!)).serialNumber.toLowerCase();
}

function digest(text: string | Buffer | undefined): string {
  return text === undefined ? '' : createHash('sha256').update(text).digest('hex');
}

export class MemberReloader {
  private credentials: Credentials;
  private trust: TrustStore;
  private tls: AdminTlsMaterial | undefined;
  private readonly wallClock: () => number;

  constructor(private readonly opts: MemberReloaderOptions) {
    this.credentials = opts.credentials;
    this.trust = opts.trust;
    this.wallClock = opts.wallClock ?? (() => Date.now());
    const tls = opts.node.config.admin.tls;
    try {
      this.tls = tls ? readAdminTls(tls) : undefined;
    } catch {
      this.tls = undefined;
    }
  }

  /** The credentials in force (as booted, or as the last successful reload installed them). */
  get currentCredentials(): Credentials {
    return this.credentials;
  }

  /** Reads the member's configuration file again and applies what can change live. Never throws. */
  reload(): ReloadOutcome {
    const node = this.opts.node;
    const file = node.config.source;
    let outcome: ReloadOutcome;
    try {
      outcome = this.reloadUnchecked(file);
    } catch (e) {
      const error = e instanceof ConfigError || e instanceof BootError ? e.message : `${file}: ${(e as Error).message}`;
      outcome = { ok: false, error };
    }
    const counter = outcome.ok ? 'reload.ok' : 'reload.failed';
    node.counters[counter] = (node.counters[counter] ?? 0) + 1;
    if (!outcome.ok) {
      node.note('error', 'reload', `reload refused, the running configuration is kept: ${outcome.error}`, { error: outcome.error });
    } else {
      const byReason = new Map<string, string[]>();
      for (const n of outcome.notApplied) byReason.set(n.reason, [...(byReason.get(n.reason) ?? []), n.field]);
      const restart = [...byReason].map(([reason, fields]) => `; not applied, ${reason}: ${fields.join(', ')}`).join('');
      const what = outcome.changed.length ? `applied ${outcome.changed.join(', ')}` : 'nothing to apply';
      node.note(restart ? 'warn' : 'info', 'reload', `reload of ${file}: ${what}${restart}`, {
        changed: outcome.changed,
        notApplied: outcome.notApplied,
      });
    }
    return outcome;
  }

  private reloadUnchecked(file: string): ReloadOutcome {
    const node = this.opts.node;
    const next = (this.opts.load ?? loadMemberConfig)(file);
    const plan = planReload(node.config, next);
    // Everything is read and checked before anything is installed.
    const { credentials, trust } = loadCredentialsAndTrust(plan.config, this.wallClock());
    const tls = plan.config.admin.tls && node.config.admin.tls ? readAdminTls(plan.config.admin.tls) : undefined;
    const applications = applicationsFromConfig(plan.config.applications);
    const tunnels = this.opts.tunnels;
    const restartTunnels = tunnels?.differs(plan.config) ?? false;
    if (restartTunnels) tunnels!.check(plan.config);

    const changed = new Set(plan.changed);
    if (restartTunnels && !changed.has('tunnels.wireguard')) changed.add('tunnels.wireguard key files');
    const before = this.credentials;
    if (leafSerial(before) !== leafSerial(credentials)) changed.add(`pki.certificate (serial ${leafSerial(before)} -> ${leafSerial(credentials)})`);
    if (digest(before.keyPem) !== digest(credentials.keyPem)) changed.add('pki.key');
    if (digest(before.caPem) !== digest(credentials.caPem)) changed.add('pki.ca');
    const added = [...trust.revokedSerials].filter((s) => !this.trust.revokedSerials.has(s));
    const removed = [...this.trust.revokedSerials].filter((s) => !trust.revokedSerials.has(s));
    if (digest(before.crlPem) !== digest(credentials.crlPem)) {
      changed.add(`pki.crl (${trust.revokedSerials.size} revoked${added.length ? `, newly revoked ${added.join(' ')}` : ''}${removed.length ? `, no longer revoked ${removed.join(' ')}` : ''})`);
    }
    if (tls && this.tls && !(tls.cert.equals(this.tls.cert) && tls.key.equals(this.tls.key) && tls.ca.equals(this.tls.ca))) changed.add('admin.tls files');
    // Drop the bare field names that a more precise entry above already reports.
    for (const f of ['pki.certificate', 'pki.crl']) if ([...changed].some((c) => c.startsWith(`${f} (`))) changed.delete(f);

    // Install: credentials first (the only step that can still refuse, and then nothing has changed).
    node.replaceCredentials(credentials, trust);
    updateAdminCredentials(this.opts.admin, { token: plan.config.admin.token, ...(tls ? { tls } : {}) });
    node.replaceApplications(applications);
    node.logLevel = plan.config.logLevel;
    node.config = plan.config;
    this.credentials = credentials;
    this.trust = trust;
    if (tls) this.tls = tls;
    if (restartTunnels) {
      // The endpoint is replaced after the reply: opening the TUN device and routes is asynchronous.
      tunnels!.apply(plan.config).catch((e: unknown) => node.note('error', 'reload', `tunnels.wireguard: the new endpoint did not start, no tunnel runs: ${(e as Error).message}`, { error: (e as Error).message }));
    }
    return { ok: true, changed: [...changed], notApplied: plan.notApplied };
  }
}
