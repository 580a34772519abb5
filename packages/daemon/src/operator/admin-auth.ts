/**
 * Who may call what on the admin API, as a pure decision on one request (docs/operator-guide.md,
 * "Authentication"). The admin API's front (admin-front.ts, in its own thread) and the in-process server
 * (server.ts, for tests and tools that inject requests) both decide with this, so they refuse the same
 * requests with the same codes and messages.
 */
import type { ApiErrorCode } from '@gwcluster/contracts';

/** Routes anyone may call: probes, the API description, the dashboard page (which holds no data). */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/livez', '/readyz', '/openapi.json', '/dashboard']);
/** Read routes that need the admin token even so (logs, the member's own configuration, packet capture). */
export const ADMIN_ONLY_READS: ReadonlySet<string> = new Set(['/v1/logs', '/v1/member-config', '/v1/capture']);

export interface AuthRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  readonly authorization: string | undefined;
  /** With mutual TLS: the client presented a certificate the cluster CA issued. */
  readonly certified: boolean;
  /** With mutual TLS and no accepted certificate: why (the TLS socket's authorizationError). */
  readonly certificateError?: string;
}

export interface AuthSettings {
  readonly token: string | undefined;
  readonly metricsToken: string | undefined;
  /** admin.tls.requireClientCertificate. */
  readonly mtls: boolean;
}

export type AuthDecision =
  | { readonly allowed: true; readonly authenticated: boolean }
  | { readonly allowed: false; readonly authenticated: false; readonly status: number; readonly code: ApiErrorCode; readonly message: string };

export function authorize(req: AuthRequest, s: AuthSettings): AuthDecision {
  const { token, metricsToken, mtls } = s;
  const authenticated = token ? req.authorization === `Bearer ${token}` && (!mtls || req.certified) : mtls && req.certified;
  if (PUBLIC_ROUTES.has(req.path)) return { allowed: true, authenticated };
  const refuse = (status: number, code: ApiErrorCode, message: string): AuthDecision => ({ allowed: false, authenticated: false, status, code, message });
  if (mtls && !req.certified) {
    return refuse(403, 'GW_FORBIDDEN', `client certificate refused (${req.certificateError ?? 'no client certificate'}); present a certificate issued by the cluster CA (gwctl --cert FILE --key FILE --cacert FILE)`);
  }
  if (metricsToken && req.authorization === `Bearer ${metricsToken}`) {
    if ((req.method === 'GET' || req.method === 'HEAD') && !ADMIN_ONLY_READS.has(req.path)) return { allowed: true, authenticated };
    return refuse(
      403,
      'GW_FORBIDDEN',
      `the metrics token (admin.metricsToken) is read-only: it may GET /metrics and the read routes, not ${req.method} ${req.path}; use the admin token (admin.token)`,
    );
  }
  if (token) {
    if (req.authorization !== `Bearer ${token}`) {
      return refuse(
        401,
        'GW_UNAUTHORIZED',
        `${req.authorization ? 'wrong' : 'missing'} bearer token; pass the token from the member configuration (admin.token) as "Authorization: Bearer TOKEN" or gwctl --token`,
      );
    }
  } else if (!mtls && req.method !== 'GET' && req.method !== 'HEAD') {
    return refuse(
      403,
      'GW_FORBIDDEN',
      'this member has no admin.token, so its admin API is read-only; set admin.token in its personality and reload it (systemctl reload gwclusterd), or use admin.tls with client certificates (a restart)',
    );
  }
  return { allowed: true, authenticated };
}
