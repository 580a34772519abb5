/**
 * A configuration with its secrets replaced, for GET /v1/member-config and `gwctl diagnose`: every
 * string under a key that names a secret (token, secret, password, passphrase, privateKey) becomes
 * "<redacted>". File paths (pki.key is the path of the key, not the key) are kept: they say where to look.
 */
export const REDACTED = '<redacted>';
const SECRET_KEY = /token|secret|password|passphrase|privatekey/i;

export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null ? REDACTED : redactSecrets(v);
  return out;
}
