/**
 * The admin API's one catalogue of coded errors, with each code's HTTP status. Every error body is
 * `{code, message}`; the message says what was wrong, with which input, and what to do. gwctl maps the
 * HTTP status to its exit code (401/403 -> 4, 400 -> 2, other 4xx/5xx -> 5) and prints the message.
 * docs/operator-guide.md lists them.
 */
import { Type, type Static } from '@sinclair/typebox';

export const API_ERRORS = {
  /** A parameter, query or body failed its schema; the message names the field. */
  GW_BAD_REQUEST: 400,
  /** No or wrong bearer token. */
  GW_UNAUTHORIZED: 401,
  /** TLS client certificate missing or not from the cluster CA (mutual TLS). */
  GW_FORBIDDEN: 403,
  /** No such route, or the member named in the path is not in the cluster. */
  GW_NOT_FOUND: 404,
  /** The action cannot be done in the cluster's present state (e.g. draining the last member). */
  GW_REFUSED: 409,
  /** A configuration change was based on another version than the cluster's (someone changed it first). */
  GW_CONFIG_CONFLICT: 409,
  /** A configuration change failed validation; the message names the field. */
  GW_CONFIG_INVALID: 422,
  /** The request body is larger than the admin API accepts (admin bodies are small JSON documents). */
  GW_TOO_LARGE: 413,
  /**
   * The master made and adopted a configuration change, but one or more members did not adopt it (could
   * not write their configuration file and left the cluster, or did not confirm in time); the message
   * names each member and why.
   */
  GW_CONFIG_NOT_ADOPTED: 502,
  /** The cluster has no master right now (election in progress, or this member is not in a cluster). */
  GW_NO_MASTER: 503,
  /**
   * The admin API has as many requests in progress and waiting as it takes (or as many streams open); the
   * member's cluster work goes first. Retry after the Retry-After header's seconds.
   */
  GW_BUSY: 503,
  /** The member the action was forwarded to did not answer in time. */
  GW_FORWARD_TIMEOUT: 504,
  /** A bug: the message and the daemon log (same correlation id) say more. */
  GW_INTERNAL: 500,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

export function isApiErrorCode(code: string): code is ApiErrorCode {
  return Object.hasOwn(API_ERRORS, code);
}

export const ErrorSchema = Type.Object(
  {
    code: Type.String({ description: `one of ${Object.keys(API_ERRORS).join(', ')}` }),
    message: Type.String({ description: 'what was wrong, with which input, and what to do' }),
  },
  { $id: 'Error', title: 'Error' },
);
/** The body of every error answer. */
export type ApiErrorBody = Static<typeof ErrorSchema>;
