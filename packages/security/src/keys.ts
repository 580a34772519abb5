/** Loading operator-supplied keys and certificates into node:crypto objects, with coded errors. */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { SecurityConfigError } from './errors.js';
import { pemToDer } from './pem.js';

/** Parses a PKCS#8 PEM ECDSA P-256 private key into a node KeyObject (for signing with node:crypto). */
export function loadPrivateKey(keyPem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(pemToDer(keyPem, 'PRIVATE KEY')), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new SecurityConfigError('bad-private-key', `private key is not PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"): ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new SecurityConfigError('bad-private-key', `private key is ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ''}; the cluster uses ECDSA P-256`);
  }
  return key;
}

/** Parses a PEM (or DER) certificate with node:crypto; throws SecurityConfigError(code) when it does not parse. */
export function loadCertificate(cert: string | Uint8Array, code: 'bad-certificate' | 'bad-ca-certificate' = 'bad-certificate'): X509Certificate {
  try {
    return new X509Certificate(typeof cert === 'string' ? Buffer.from(pemToDer(cert, 'CERTIFICATE')) : Buffer.from(cert));
  } catch (e) {
    throw new SecurityConfigError(code, `certificate does not parse: ${(e as Error).message}`);
  }
}

