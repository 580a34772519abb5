/**
 * Setting up members: a cluster CA, member certificates, and a member's personality directory
 * (configuration + certificate + key + CA), as docs/operator-guide.md describes.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import {
  SecurityConfigError,
  canonicalSerial,
  createClusterCa,
  createRevocationList,
  installedPackageRoot,
  issueMemberCertificate,
  readRevocationList,
  signBundle,
  softwarePackageRoots,
  type IssuedCertificate,
} from '@gwcluster/security';
import { memberConfigProblems } from '@gwcluster/contracts';
import { EXIT, GwctlError } from './client.js';

/**
 * mkdir -p, one level at a time from the deepest existing ancestor, failing at once with the flag and
 * the reason. (node's recursive mkdir loops forever on a path under /proc, where mkdir answers ENOENT
 * for a parent that exists.)
 */
export function makeDirectory(flag: string, dir: string): void {
  const missing: string[] = [];
  let p = dir;
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new GwctlError(EXIT.badArguments, `${flag} ${dir}: cannot use ${p} (${code ?? (e as Error).message})`);
      missing.unshift(p);
      const parent = dirname(p);
      if (parent === p) break;
      p = parent;
      continue;
    }
    if (!st.isDirectory()) throw new GwctlError(EXIT.badArguments, `${flag} ${dir}: ${p} is not a directory`);
    break;
  }
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      throw new GwctlError(EXIT.badArguments, `${flag} ${dir}: cannot create the directory ${d} (${code ?? (e as Error).message}); choose a directory on a writable file system`);
    }
  }
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

function refuseOverwrite(paths: readonly string[], force: boolean): void {
  if (force) return;
  const present = paths.filter((p) => existsSync(p));
  if (present.length > 0) throw new GwctlError(EXIT.refused, `${present.join(', ')} already exist(s); pass --force to overwrite`);
}

export async function initCa(opts: { dir: string; name: string; days: number; force: boolean }): Promise<{ certPath: string; keyPath: string; fingerprint: string }> {
  const dir = resolve(opts.dir);
  makeDirectory('--dir', dir);
  const certPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'ca.key');
  refuseOverwrite([certPath, keyPath], opts.force);
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const ca = await createClusterCa({ commonName: opts.name, notBefore, notAfter: new Date(notBefore.getTime() + opts.days * 86_400_000) });
  writeFileSync(certPath, ca.certPem, { mode: 0o644 });
  writeSecret(keyPath, ca.keyPem);
  return { certPath, keyPath, fingerprint: ca.fingerprint };
}

function readCa(caDir: string): { certPem: string; keyPem: string } {
  const dir = resolve(caDir);
  try {
    return { certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'ca.key'), 'utf8') };
  } catch (e) {
    throw new GwctlError(EXIT.badArguments, `--ca-dir ${dir}: cannot read ca.crt and ca.key (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); create them with "gwctl pki init-ca --dir ${caDir}"`);
  }
}

/** Merges `extra` into `base` section by section (objects merge, everything else replaces). */
function mergeConfig(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] = b && typeof b === 'object' && !Array.isArray(b) && v && typeof v === 'object' && !Array.isArray(v) ? { ...b, ...v } : v;
  }
  return out;
}

export interface PersonalityOptions {
  readonly caDir: string;
  readonly out: string;
  readonly clusterName: string;
  readonly clusterIp: string;
  readonly memberIp: string;
  readonly prefixLength: number;
  readonly iface: string;
  readonly days: number;
  readonly token?: string;
  readonly configVersion: number;
  readonly extra?: Record<string, unknown>;
  readonly force: boolean;
}

/**
 * The CA directory keeps a copy of every certificate it issues, as issued/SERIAL.crt, so that
 * `gwctl pki list | revoke | renew` know them; its revocation list is crl.pem.
 */
export const ISSUED_DIR = 'issued';
export const CRL_FILE = 'crl.pem';

function recordIssued(caDir: string, cert: IssuedCertificate): void {
  const dir = join(resolve(caDir), ISSUED_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, `${cert.serial}.crt`), cert.certPem, { mode: 0o644 });
}

/** The service account the personality is made for (gwctl personality --owner). */
export interface Owner {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** Looks up `name` (a user, through the system's user database) and its primary group. */
export function resolveOwner(name: string): Owner {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0] ?? '';
  } catch {
    throw new GwctlError(EXIT.badArguments, `--owner ${name}: no such user (the gwcluster package creates the user gwcluster; or: adduser --system --group ${name})`);
  }
  const [, , uid, gid] = line.split(':');
  if (uid === undefined || gid === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) throw new GwctlError(EXIT.badArguments, `--owner ${name}: cannot read its user and group ids from the user database`);
  return { name, uid: Number(uid), gid: Number(gid) };
}

/**
 * The modes and owners of a personality made for the service account `owner` (appliance/README.md): the
 * directory and every file readable by the account's group and written by root only, the private key the
 * account's own (gwclusterd refuses a key that its group or others can read).
 */
export const OWNED_MODES = { dir: 0o750, file: 0o640, key: 0o600 } as const;

/** Gives the personality's directory and `files` to root (the running user) and `owner`'s group; `key` to `owner`. */
export function applyOwnership(dir: string, files: readonly string[], key: string, owner: Owner): void {
  const self = process.getuid?.() ?? 0;
  try {
    chownSync(dir, self, owner.gid);
    chmodSync(dir, OWNED_MODES.dir);
    for (const f of files) {
      chownSync(f, self, owner.gid);
      chmodSync(f, OWNED_MODES.file);
    }
    chownSync(key, owner.uid, owner.gid);
    chmodSync(key, OWNED_MODES.key);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new GwctlError(EXIT.failure, `--owner ${owner.name}: cannot give ${dir} to it (${code})${code === 'EPERM' ? '; run gwctl personality --owner as root' : ''}`);
  }
}

/**
 * Writes OUT/member.json, member.crt, member.key (0600) and ca.crt. Returns the config path. The
 * configuration is checked first with gwclusterd's own check: a personality that would not boot is
 * refused, naming the field, and nothing is written.
 */
export async function createPersonality(o: PersonalityOptions): Promise<{ configPath: string; fingerprint: string; files: string[]; key: string }> {
  const ca = readCa(o.caDir);
  const out = resolve(o.out);
  const paths = { config: join(out, 'member.json'), cert: join(out, 'member.crt'), key: join(out, 'member.key'), ca: join(out, 'ca.crt') };
  const config = mergeConfig(
    {
      cluster: { name: o.clusterName, clusterIp: o.clusterIp, configVersion: o.configVersion },
      member: { address: o.memberIp, prefixLength: o.prefixLength, interface: o.iface },
      pki: { certificate: 'member.crt', key: 'member.key', ca: 'ca.crt' },
      admin: o.token ? { token: o.token } : {},
    },
    o.extra ?? {},
  );
  const problems = memberConfigProblems(structuredClone(config));
  if (problems.length > 0) throw new GwctlError(EXIT.badArguments, `${paths.config}: gwclusterd would refuse this configuration, nothing written: ${problems.join('; ')}`);
  refuseOverwrite(Object.values(paths), o.force);
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const cert = await issueMemberCertificate({ ca, memberIp: o.memberIp, notBefore, notAfter: new Date(notBefore.getTime() + o.days * 86_400_000) });
  recordIssued(o.caDir, cert);
  makeDirectory('--out', out);
  writeFileSync(paths.cert, cert.certPem, { mode: 0o644 });
  writeSecret(paths.key, cert.keyPem);
  writeFileSync(paths.ca, ca.certPem, { mode: 0o644 });
  // The configuration holds the admin token: owner only.
  writeSecret(paths.config, `${JSON.stringify(config, null, 2)}\n`);
  return { configPath: paths.config, fingerprint: cert.fingerprint, files: [paths.config, paths.cert, paths.ca], key: paths.key };
}

/** Issues a client certificate (for gwctl over mutual TLS) into OUT/client.crt and client.key (0600). */
export async function issueClientCertificate(o: { caDir: string; out: string; ip: string; days: number; force: boolean }): Promise<{ certPath: string; keyPath: string; fingerprint: string }> {
  const ca = readCa(o.caDir);
  const out = resolve(o.out);
  makeDirectory('--out', out);
  const certPath = join(out, 'client.crt');
  const keyPath = join(out, 'client.key');
  refuseOverwrite([certPath, keyPath], o.force);
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const cert = await issueMemberCertificate({ ca, memberIp: o.ip, notBefore, notAfter: new Date(notBefore.getTime() + o.days * 86_400_000) });
  recordIssued(o.caDir, cert);
  writeFileSync(certPath, cert.certPem, { mode: 0o644 });
  writeSecret(keyPath, cert.keyPem);
  return { certPath, keyPath, fingerprint: cert.fingerprint };
}

/**
 * Signs the installed gwclusterd software and the personality of `config` with the CA key (bundle.ts of
 * @gwcluster/security). gwclusterd is found where Node resolves @gwcluster/daemon from gwctl (installed beside it).
 * With setInConfig, also sets pki.bundleSignature in the configuration (before signing: it is part of it).
 */
export async function signPersonalityBundle(o: { caDir: string; config: string; out?: string; setInConfig?: boolean }): Promise<{ path: string; files: number }> {
  const ca = readCa(o.caDir);
  const configPath = resolve(o.config);
  let raw: Record<string, any>;
  try {
    raw = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, any>;
  } catch (e) {
    throw new GwctlError(EXIT.badArguments, `--config ${configPath}: cannot read it as JSON (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const dir = dirname(configPath);
  const out = o.out ? resolve(o.out) : join(dir, 'bundle.sig');
  if (o.setInConfig) {
    raw.pki = { ...(raw.pki ?? {}), bundleSignature: relative(dir, out) || 'bundle.sig' };
    writeFileSync(configPath, `${JSON.stringify(raw, null, 2)}\n`);
  }
  const pkiSection = (raw.pki ?? {}) as Record<string, string>;
  const abs = (p: string | undefined) => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(dir, p));
  if (!pkiSection.certificate || !pkiSection.ca) throw new GwctlError(EXIT.badArguments, `--config ${configPath}: pki.certificate and pki.ca are needed to sign the bundle`);
  const crl = abs(pkiSection.crl);
  let daemonRoot: string;
  try {
    daemonRoot = installedPackageRoot('@gwcluster/daemon', import.meta.url);
  } catch (e) {
    throw new GwctlError(EXIT.failure, `cannot find the installed gwclusterd (@gwcluster/daemon) to sign its software (${(e as Error).message}); install it beside gwctl`);
  }
  const files = { config: configPath, certificate: abs(pkiSection.certificate)!, ca: abs(pkiSection.ca)!, ...(crl ? { crl } : {}) };
  const bundle = signBundle(files, softwarePackageRoots(daemonRoot), ca.certPem, ca.keyPem);
  writeFileSync(out, `${JSON.stringify(bundle, null, 2)}\n`, { mode: 0o644 });
  return { path: out, files: Object.keys(bundle.manifest.software).length + Object.keys(bundle.manifest.personality).length };
}

// ------------------------------------------------------------------------------------------------
// Certificate lifecycle: list, revoke, renew.

/** One certificate the CA issued, as `gwctl pki list` shows it. */
export interface IssuedEntry {
  readonly serial: string;
  readonly subject: string;
  /** The subjectAltName IP: the member (or operator host) the certificate is for. */
  readonly memberIp: string | null;
  readonly notAfter: string;
  /** Whole days until notAfter (negative once expired). */
  readonly daysLeft: number;
  readonly revoked: boolean;
  readonly revokedAt?: string;
  readonly fingerprint: string;
  readonly file: string;
}

interface IssuedCert {
  readonly cert: X509Certificate;
  readonly serial: string;
  readonly file: string;
}

function issuedCertificates(caDir: string, caCertPem: string): IssuedCert[] {
  const dir = join(resolve(caDir), ISSUED_DIR);
  if (!existsSync(dir)) return [];
  const ca = new X509Certificate(caCertPem);
  const out: IssuedCert[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.crt')).sort()) {
    const file = join(dir, name);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(readFileSync(file));
    } catch (e) {
      throw new GwctlError(EXIT.failure, `${file}: not a PEM certificate (${(e as Error).message}); remove it from ${dir}`);
    }
    // Only what this CA signed (a directory may outlive a re-created CA).
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) continue;
    out.push({ cert, serial: canonicalSerial(cert.serialNumber), file });
  }
  return out;
}

function sanIp(cert: X509Certificate): string | null {
  const ip = (cert.subjectAltName ?? '').split(', ').find((n) => n.startsWith('IP Address:'));
  return ip ? ip.slice('IP Address:'.length) : null;
}

function commonName(cert: X509Certificate): string | undefined {
  return cert.subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3);
}

/** The CA's current revocation list (empty when there is none yet); checks its signature. */
function currentRevocations(caDir: string, caCertPem: string): Map<string, Date> {
  const file = join(resolve(caDir), CRL_FILE);
  if (!existsSync(file)) return new Map();
  try {
    return new Map(readRevocationList(readFileSync(file, 'utf8'), caCertPem).revoked.map((r) => [r.serial, r.revokedAt]));
  } catch (e) {
    throw new GwctlError(EXIT.failure, `${file}: ${(e as Error).message}; restore it from a backup (it must be signed by this CA)`);
  }
}

const DAY_MS = 86_400_000;

export function listIssued(o: { caDir: string; now?: Date }): IssuedEntry[] {
  const ca = readCa(o.caDir);
  const revoked = currentRevocations(o.caDir, ca.certPem);
  const now = (o.now ?? new Date()).getTime();
  return issuedCertificates(o.caDir, ca.certPem)
    .map(({ cert, serial, file }) => {
      const notAfter = new Date(cert.validTo);
      const at = revoked.get(serial);
      return {
        serial,
        subject: cert.subject.split('\n').join(', '),
        memberIp: sanIp(cert),
        notAfter: notAfter.toISOString(),
        daysLeft: Math.floor((notAfter.getTime() - now) / DAY_MS),
        revoked: at !== undefined,
        ...(at ? { revokedAt: at.toISOString() } : {}),
        fingerprint: cert.fingerprint256,
        file,
      };
    })
    .sort((a, b) => (a.memberIp ?? '').localeCompare(b.memberIp ?? '', 'en', { numeric: true }) || a.notAfter.localeCompare(b.notAfter));
}

export function renderIssued(entries: readonly IssuedEntry[]): string {
  if (entries.length === 0) return 'no certificates recorded in this CA directory (issued/)';
  const rows = [['SERIAL', 'MEMBER IP', 'SUBJECT', 'NOT AFTER', 'DAYS LEFT', 'REVOKED']];
  for (const e of entries) rows.push([e.serial, e.memberIp ?? '-', e.subject, e.notAfter.replace('.000Z', 'Z'), String(e.daysLeft), e.revoked ? `yes (${e.revokedAt!.replace('.000Z', 'Z')})` : 'no']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** Which issued certificates a --serial / --member-ip selection names; refuses what is ambiguous or unknown. */
function select(o: { serials?: readonly string[]; memberIp?: string }, issued: readonly IssuedCert[], revoked: ReadonlyMap<string, Date>, what: string): IssuedCert[] {
  if (o.serials?.length) {
    return o.serials.map((text) => {
      let serial: string;
      try {
        serial = canonicalSerial(text);
      } catch {
        serial = '';
      }
      if (!/^[0-9a-f]+$/.test(serial)) throw new GwctlError(EXIT.badArguments, `--serial "${text}" is not a hexadecimal serial number (gwctl pki list shows them)`);
      const found = issued.find((c) => c.serial === serial);
      if (!found) throw new GwctlError(EXIT.badArguments, `no certificate with serial ${serial} in this CA directory (gwctl pki list shows them)`);
      return found;
    });
  }
  if (o.memberIp) {
    const live = issued.filter((c) => sanIp(c.cert) === o.memberIp && !revoked.has(c.serial));
    if (live.length === 0) throw new GwctlError(EXIT.badArguments, `no unrevoked certificate for ${o.memberIp} in this CA directory (gwctl pki list shows them)`);
    if (live.length > 1) {
      throw new GwctlError(EXIT.badArguments, `${live.length} unrevoked certificates for ${o.memberIp} (serials ${live.map((c) => c.serial).join(', ')}); name the one to ${what} with --serial`);
    }
    return live;
  }
  throw new GwctlError(EXIT.badArguments, `name the certificate to ${what}: --serial SERIAL or --member-ip IP`);
}

/** Writes the CRL atomically (mode 0644: it is public). */
function writeCrl(caDir: string, pem: string): string {
  const file = join(resolve(caDir), CRL_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, pem, { mode: 0o644 });
  renameSync(tmp, file);
  return file;
}

/**
 * Adds certificates to the CA's revocation list (crl.pem) and signs it again; earlier entries keep their
 * revocation dates. Revoking an already revoked certificate changes nothing but the list's dates.
 */
export async function revokeCertificates(o: { caDir: string; serials?: readonly string[]; memberIp?: string; days: number; now?: Date }): Promise<{ crlPath: string; revoked: string[]; total: number }> {
  const ca = readCa(o.caDir);
  const existing = currentRevocations(o.caDir, ca.certPem);
  const chosen = select(o, issuedCertificates(o.caDir, ca.certPem), existing, 'revoke');
  const now = o.now ?? new Date();
  const entries = new Map(existing);
  for (const c of chosen) if (!entries.has(c.serial)) entries.set(c.serial, now);
  const pem = await createRevocationList({
    ca,
    revokedSerials: [...entries].map(([serial, revokedAt]) => ({ serial, revokedAt })),
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + o.days * DAY_MS),
  });
  return { crlPath: writeCrl(o.caDir, pem), revoked: chosen.map((c) => c.serial), total: entries.size };
}

/**
 * A new certificate for the member of an issued one: same subject and subjectAltName IP, new serial and
 * dates, for the same public key (the member keeps its member.key) or, with newKey, a new key pair.
 * Writes OUT/member.crt (and OUT/member.key, 0600, with newKey). The old certificate stays valid until
 * it expires or is revoked.
 */
export async function renewCertificate(o: {
  caDir: string;
  serials?: readonly string[];
  memberIp?: string;
  out: string;
  newKey: boolean;
  days: number;
  force: boolean;
}): Promise<{ certPath: string; keyPath?: string; serial: string; replaces: string; memberIp: string; fingerprint: string; notAfter: string }> {
  const ca = readCa(o.caDir);
  const revoked = currentRevocations(o.caDir, ca.certPem);
  const chosen = select(o, issuedCertificates(o.caDir, ca.certPem), revoked, 'renew');
  if (chosen.length !== 1) throw new GwctlError(EXIT.badArguments, 'renew one certificate at a time');
  const old = chosen[0]!;
  const memberIp = sanIp(old.cert);
  if (!memberIp) throw new GwctlError(EXIT.badArguments, `certificate ${old.serial} has no IP address (subjectAltName); it is not a member certificate`);
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const certPath = join(out, 'member.crt');
  const keyPath = join(out, 'member.key');
  refuseOverwrite(o.newKey ? [certPath, keyPath] : [certPath], o.force);
  const notBefore = new Date(Date.now() - 5 * 60_000);
  let cert: IssuedCertificate;
  try {
    cert = await issueMemberCertificate({
      ca,
      memberIp,
      ...(commonName(old.cert) ? { commonName: commonName(old.cert)! } : {}),
      notBefore,
      notAfter: new Date(notBefore.getTime() + o.days * DAY_MS),
      ...(o.newKey ? {} : { publicKeySpkiDer: new Uint8Array(old.cert.publicKey.export({ type: 'spki', format: 'der' })) }),
    });
  } catch (e) {
    if (e instanceof SecurityConfigError) throw new GwctlError(EXIT.failure, `cannot renew ${old.serial}: ${e.message}`);
    throw e;
  }
  recordIssued(o.caDir, cert);
  if (o.newKey) writeSecret(keyPath, cert.keyPem);
  writeFileSync(certPath, cert.certPem, { mode: 0o644 });
  return {
    certPath,
    ...(o.newKey ? { keyPath } : {}),
    serial: cert.serial,
    replaces: old.serial,
    memberIp,
    fingerprint: cert.fingerprint,
    notAfter: new Date(new X509Certificate(cert.certPem).validTo).toISOString(),
  };
}
