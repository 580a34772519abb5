/**
 * The messages between the member's thread and the admin API's front thread (admin-front.ts), and what
 * the front is started with. Plain data: they cross a worker MessagePort by structured clone.
 */

/**
 * The header by which a request injected from the front carries the front's authentication: "SECRET 1"
 * (authenticated) or "SECRET 0". SECRET is random per process and never leaves it; the front drops the
 * header from what clients send.
 */
export const BRIDGE_HEADER = 'x-gwcluster-front';

/**
 * Limits that keep the admin API from holding the member's event loop or sockets for a slow or greedy
 * client (fastify server options; node:http semantics).
 */
export interface AdminLimits {
  readonly bodyLimit: number;
  readonly maxConnections: number;
  /** Open connections from one client address at most (the front; admin-front.ts). */
  readonly maxConnectionsPerAddress: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly connectionTimeoutMs: number;
  /** How often node:http looks for connections past headersTimeoutMs / requestTimeoutMs, ms. */
  readonly checkEveryMs: number;
  /** Requests the front hands to the member's thread at a time at most (admin-front.ts). */
  readonly maxBridged: number;
  /** Requests waiting in the front for their turn at most; beyond, 503 GW_BUSY. */
  readonly maxQueued: number;
  /** Open streams (/v1/stream, /v1/capture) at most; beyond, 503 GW_BUSY. */
  readonly maxStreams: number;
}

export interface FrontCredentials {
  readonly token: string | undefined;
  readonly metricsToken: string | undefined;
}

export interface FrontTls {
  readonly cert: Uint8Array;
  readonly key: Uint8Array;
  readonly ca: Uint8Array;
}

export interface FrontInit {
  readonly host: string;
  readonly port: number;
  readonly limits: AdminLimits;
  readonly credentials: FrontCredentials;
  readonly tls?: FrontTls & { readonly requireClientCertificate: boolean };
  /** The member's thread's nice value: the front runs at a lower priority (admin-front.ts FRONT_NICE). */
  readonly basePriority: number;
  /** The header every answer carries (the contracts' API_VERSION_HEADER and ADMIN_API_VERSION; the front loads no schemas). */
  readonly apiVersion: { readonly header: string; readonly value: string };
  /** GET /openapi.json, serialized once on the member's thread. */
  readonly openapi: string;
}

export type FrontToMain =
  | { readonly t: 'listening'; readonly port: number }
  | { readonly t: 'listen-error'; readonly code: string; readonly message: string }
  | {
      readonly t: 'request';
      readonly id: number;
      readonly method: string;
      readonly url: string;
      readonly headers: Record<string, string | string[]>;
      readonly body?: Uint8Array;
      readonly authenticated: boolean;
      readonly remoteAddress: string;
    }
  | { readonly t: 'abort'; readonly id: number }
  | { readonly t: 'log'; readonly level: 'warn' | 'error'; readonly message: string }
  | { readonly t: 'closed'; readonly dropped: number };

export type MainToFront =
  | { readonly t: 'head'; readonly id: number; readonly status: number; readonly headers: Record<string, string | string[]> }
  | { readonly t: 'data'; readonly id: number; readonly chunk: Uint8Array }
  | { readonly t: 'end'; readonly id: number }
  | { readonly t: 'fail'; readonly id: number; readonly message: string }
  | { readonly t: 'credentials'; readonly credentials: FrontCredentials; readonly tls?: FrontTls }
  | { readonly t: 'close' };
