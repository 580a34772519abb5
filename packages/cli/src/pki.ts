/**
 * Setting up members: a cluster CA, member certificates, and a member's personality directory
 * (configuration + certificate + key + CA), as docs/operator-guide.md describes.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { createClusterCa, installedPackageRoot, issueMemberCertificate, signBundle, softwarePackageRoots } from '@gwcluster/security';
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
