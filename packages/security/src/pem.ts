/**
 * PEM <-> DER (RFC 7468). Pure and synchronous. Certificates use the label CERTIFICATE, private keys
 * PRIVATE KEY (PKCS#8), revocation lists X509 CRL (the label OpenSSL reads; "CRL" is accepted on input).
 */
import { SecurityConfigError } from './errors.js';

export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block in `text`, in order. Text outside blocks (comments, `openssl x509 -text` output) is ignored. */
export function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new SecurityConfigError('bad-option', `PEM block "${m[1]}" is not valid base64`);
    blocks.push({ label: m[1]!, der: new Uint8Array(Buffer.from(body, 'base64')) });
  }
  return blocks;
}

/**
 * DER of the first block whose label is one of `labels`. Throws SecurityConfigError('bad-option') naming
 * the wanted labels when there is none.
 */
export function pemToDer(text: string, labels: string | readonly string[]): Uint8Array {
  const wanted = typeof labels === 'string' ? [labels] : labels;
  const block = pemBlocks(text).find((b) => wanted.includes(b.label));
  if (!block) throw new SecurityConfigError('bad-option', `no "-----BEGIN ${wanted.join('" or "')}-----" block found in the PEM text`);
  return block.der;
}

/** PEM text for `der`, base64 wrapped at 64 columns, ending with a newline. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** All CERTIFICATE blocks of a chain file, in file order (leaf first by convention). */
export function certificateChainFromPem(text: string): Uint8Array[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}
