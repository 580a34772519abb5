/**
 * The member's credentials (the security part of its personality): certificate chain, private key,
 * cluster CA, revocation list, allow-list and bundle signature, read and checked. Used at boot and by
 * reload (the same checks, so that a reload adopts only what a boot would).
 */
import { readFileSync, statSync } from 'node:fs';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BundleError, TrustStore, certificateChainFromPem, packageRootOf, softwarePackageRoots, verifyBundle } from '@gwcluster/security';
import type { Credentials } from '../control/member-node.js';
import type { MemberConfig } from './config.js';

export class BootError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'BootError';
  }
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new BootError(file, `cannot read the ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** A directory anyone may write to lets anyone replace the personality's files (and the token with them). */
function refuseWorldWritableDirectory(file: string, what: string): void {
  const dir = dirname(file);
  let mode: number;
  try {
    mode = statSync(dir).mode;
  } catch (e) {
    throw new BootError(dir, `cannot stat the directory of the ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if ((mode & 0o002) !== 0) throw new BootError(dir, `the directory of the ${what} is writable by everyone (mode ${(mode & 0o7777).toString(8)}); chmod 700 it (or 755)`);
}

/** The private key must be the one the leaf certificate certifies; otherwise every signature is refused by the peers. */
function checkKeyMatchesCertificate(keyFile: string, keyPem: string, certFile: string, leafDer: Uint8Array): void {
  let publicOfKey: Buffer;
  try {
    publicOfKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  } catch (e) {
    throw new BootError(keyFile, `not a PEM private key: ${(e as Error).message}`);
  }
  const publicOfCert = new X509Certificate(leafDer).publicKey.export({ type: 'spki', format: 'der' });
  if (!publicOfKey.equals(publicOfCert)) throw new BootError(keyFile, `this private key does not belong to the member certificate ${certFile}; install the key issued with it (gwctl personality makes both)`);
}

/** Reads and checks the member's certificate, key, CA and CRL (the personality's security part). */
export function loadCredentialsAndTrust(config: MemberConfig, nowMs = Date.now()): { credentials: Credentials; trust: TrustStore } {
  refuseWorldWritableDirectory(config.source, 'configuration');
  refuseWorldWritableDirectory(config.pki.key, 'private key');
  const certPem = readText(config.pki.certificate, 'member certificate');
  const keyPem = readText(config.pki.key, 'member private key');
  const caPem = readText(config.pki.ca, 'cluster CA certificate');
  const crlPem = config.pki.crl ? readText(config.pki.crl, 'revocation list') : undefined;
  const mode = statSync(config.pki.key).mode & 0o077;
  if (mode !== 0) throw new BootError(config.pki.key, `private key is readable by group or others (mode ${(statSync(config.pki.key).mode & 0o777).toString(8)}); chmod 600 it`);
  let chain: Uint8Array[];
  try {
    chain = certificateChainFromPem(certPem);
  } catch (e) {
    throw new BootError(config.pki.certificate, `not a PEM certificate chain: ${(e as Error).message}`);
  }
  if (chain.length === 0) throw new BootError(config.pki.certificate, 'holds no certificate');
  let trust: TrustStore;
  try {
    trust = new TrustStore({ caCertPem: caPem, ...(crlPem ? { crlPem } : {}), ...(config.pki.allowedCertificates ? { allowedFingerprints: config.pki.allowedCertificates } : {}) });
  } catch (e) {
    throw new BootError(config.pki.ca, (e as Error).message);
  }
  checkKeyMatchesCertificate(config.pki.key, keyPem, config.pki.certificate, chain[0]!);
  const verdict = trust.verifyChain(chain, config.member.address, nowMs);
  if (!verdict.ok) throw new BootError(config.pki.certificate, `this member's own certificate is refused (${verdict.code}): ${verdict.reason}`);
  if (config.pki.bundleSignature) {
    try {
      const files = { config: config.source, certificate: config.pki.certificate, ca: config.pki.ca, ...(config.pki.crl ? { crl: config.pki.crl } : {}) };
      verifyBundle(config.pki.bundleSignature, files, caPem, softwarePackageRoots(packageRootOf(fileURLToPath(import.meta.url))));
    } catch (e) {
      if (e instanceof BundleError) throw new BootError(e.file, e.message.slice(e.file.length + 2));
      throw e;
    }
  }
  return { credentials: { certChainDer: chain, keyPem, caPem, ...(crlPem ? { crlPem } : {}) }, trust };
}

export function loadCredentials(config: MemberConfig, nowMs = Date.now()): Credentials {
  return loadCredentialsAndTrust(config, nowMs).credentials;
}
