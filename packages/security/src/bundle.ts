/**
 * The signed software and configuration bundle (the digest's "signed kernel", for an appliance): a
 * manifest of SHA-256 digests of
 *   - the software gwclusterd runs: every file Node loads from the @gwcluster packages (.js, .mjs, .cjs,
 *     .json, .node, .proto and extension-less scripts under dist/, bin/, schema/, proto/, the native addon's
 *     build/Release/*.node, and each package.json; not type declarations or source maps), named
 *     "<package>/<path>";
 *   - the member's personality: its certificate, the CA, the CRL if any, and the configuration file without
 *     the live cluster fields and the configuration version (those change at run time through signed,
 *     versioned cluster configuration updates; CLUSTER_LIVE_FIELDS in @gwcluster/contracts),
 * signed with the cluster CA's key (ECDSA P-256, SHA-256). `gwctl bundle sign` writes it; gwclusterd checks
 * it at boot when pki.bundleSignature is set, and refuses to boot naming the first file that differs.
 *
 * Which software is meant is the caller's to say: both sides pass softwarePackageRoots(<gwclusterd's
 * package root>); gwclusterd finds its own root with packageRootOf(), gwctl finds the installed one with
 * installedPackageRoot('@gwcluster/daemon', import.meta.url).
 */
import { createHash, createPrivateKey, sign as signData, verify as verifyData, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { CLUSTER_LIVE_FIELDS } from '@gwcluster/contracts';

export const BUNDLE_FORMAT = 'gwcluster-bundle-1';

export interface BundleManifest {
  /** "<package name>/<path in package>" -> sha256 hex */
  readonly software: Readonly<Record<string, string>>;
  /** "certificate" | "ca" | "crl" | "config" -> sha256 hex */
  readonly personality: Readonly<Record<string, string>>;
}

export interface SignedBundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly createdAt: string;
  /** SHA-256 fingerprint of the CA certificate that signed. */
  readonly signer: string;
  readonly manifest: BundleManifest;
  /** base64 ECDSA signature (DER) over canonicalJson(manifest). */
  readonly signature: string;
}

export class BundleError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'BundleError';
  }
}

/** JSON with object keys sorted at every level: the bytes that are signed. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The directory of the nearest package.json above `file`. Throws when there is none. */
export function packageRootOf(file: string): string {
  let dir = dirname(file);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${file}`);
    dir = up;
  }
  return dir;
}

/** The root directory of package `name` as Node resolves it from the module at `fromUrl`. Throws when it is not installed. */
export function installedPackageRoot(name: string, fromUrl: string | URL): string {
  return packageRootOf(createRequire(fromUrl).resolve(name));
}

/** Root directories of the packages a program loads: its own (`programRoot`) and its @gwcluster dependencies. */
export function softwarePackageRoots(programRoot: string): string[] {
  const manifest = join(programRoot, 'package.json');
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string> };
  const roots = [programRoot];
  for (const name of Object.keys(pkg.dependencies ?? {}).filter((n) => n.startsWith('@gwcluster/')).sort()) {
    try {
      roots.push(installedPackageRoot(name, manifest));
    } catch {
      /* not installed: then it is not loaded either */
    }
  }
  return roots;
}

const SOFTWARE_DIRS = ['dist', 'bin', 'schema', 'proto', join('build', 'Release')];

function walk(dir: string, out: string[]): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'obj.target' || entry.name === '.deps') continue;
      walk(p, out);
    } else if (entry.isFile() && /\.(js|mjs|cjs|json|node|proto)$|^[^.]+$/.test(entry.name)) {
      out.push(p);
    }
  }
}

export function softwareManifest(roots: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const root of roots) {
    const name = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string }).name;
    const files: string[] = [join(root, 'package.json')];
    for (const d of SOFTWARE_DIRS) walk(join(root, d), files);
    for (const f of files) {
      if (f.includes(`${sep}build${sep}Release${sep}`) && !f.endsWith('.node')) continue;
      out[`${name}/${relative(root, f).split(sep).join('/')}`] = sha256(readFileSync(f));
    }
  }
  return out;
}

/** The configuration file without what changes at run time (live cluster fields, configVersion). */
export function staticConfigDigest(configFile: string): string {
  const raw = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  const cluster = { ...((raw.cluster ?? {}) as Record<string, unknown>) };
  for (const f of [...CLUSTER_LIVE_FIELDS, 'configVersion']) delete cluster[f];
  return sha256(canonicalJson({ ...raw, cluster }));
}

export interface PersonalityFiles {
  readonly config: string;
  readonly certificate: string;
  readonly ca: string;
  readonly crl?: string;
}

export function personalityManifest(files: PersonalityFiles): Record<string, string> {
  return {
    config: staticConfigDigest(files.config),
    certificate: sha256(readFileSync(files.certificate)),
    ca: sha256(readFileSync(files.ca)),
    ...(files.crl ? { crl: sha256(readFileSync(files.crl)) } : {}),
  };
}

/** Signs the software under `softwareRoots` (softwarePackageRoots()) and `files` with the CA key. */
export function signBundle(files: PersonalityFiles, softwareRoots: readonly string[], caCertPem: string, caKeyPem: string, now = new Date()): SignedBundle {
  const manifest: BundleManifest = { software: softwareManifest(softwareRoots), personality: personalityManifest(files) };
  const signature = signData('sha256', Buffer.from(canonicalJson(manifest)), createPrivateKey(caKeyPem)).toString('base64');
  return { format: BUNDLE_FORMAT, createdAt: now.toISOString(), signer: new X509Certificate(caCertPem).fingerprint256, manifest, signature };
}

/**
 * Checks `signatureFile` against the CA, the software under `softwareRoots` and the files as they are now. Throws BundleError naming the
 * file and the problem: unreadable or malformed signature file, bad signature, or a file that was
 * changed, added or removed since signing.
 */
export function verifyBundle(signatureFile: string, files: PersonalityFiles, caCertPem: string, softwareRoots: readonly string[]): SignedBundle {
  let bundle: SignedBundle;
  try {
    bundle = JSON.parse(readFileSync(signatureFile, 'utf8')) as SignedBundle;
  } catch (e) {
    throw new BundleError(signatureFile, `cannot read the bundle signature: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; sign the bundle with gwctl bundle sign`);
  }
  if (bundle?.format !== BUNDLE_FORMAT || typeof bundle.signature !== 'string' || !bundle.manifest?.software || !bundle.manifest?.personality) {
    throw new BundleError(signatureFile, `not a ${BUNDLE_FORMAT} bundle signature; sign the bundle again with gwctl bundle sign`);
  }
  const ca = new X509Certificate(caCertPem);
  if (!verifyData('sha256', Buffer.from(canonicalJson(bundle.manifest)), ca.publicKey, Buffer.from(bundle.signature, 'base64'))) {
    throw new BundleError(signatureFile, `the signature does not verify with the cluster CA (${ca.subject.replace(/\n/g, ', ')}); the manifest was altered or signed by another CA`);
  }
  const software = softwareManifest(softwareRoots);
  for (const [name, digest] of Object.entries(bundle.manifest.software)) {
    if (!(name in software)) throw new BundleError(name, 'is in the signed bundle but missing from the installed software; reinstall the signed release');
    if (software[name] !== digest) throw new BundleError(name, 'was changed since the bundle was signed; reinstall the signed release or sign the new one');
  }
  for (const name of Object.keys(software)) {
    if (!(name in bundle.manifest.software)) throw new BundleError(name, 'is not part of the signed bundle; remove it or sign the bundle again');
  }
  const personality = personalityManifest(files);
  const fileOf: Record<string, string> = { config: files.config, certificate: files.certificate, ca: files.ca, ...(files.crl ? { crl: files.crl } : {}) };
  for (const [k, digest] of Object.entries(personality)) {
    if (bundle.manifest.personality[k] !== digest) {
      throw new BundleError(fileOf[k]!, `${k === 'config' ? 'the configuration (apart from its live cluster fields)' : `the ${k}`} was changed since the bundle was signed; sign the bundle again (gwctl bundle sign)`);
    }
  }
  return bundle;
}

/** Whether `path` exists and is a regular file (for error messages). */
export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
