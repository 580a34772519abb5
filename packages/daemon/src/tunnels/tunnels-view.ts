/**
 * What the operator plane reads of the tunnel plane (GET /v1/tunnels, gwctl peers list, metrics): types
 * only and the empty view, so that the admin API does not load the tunnel data path.
 */
import type { MemberId } from '@gwcluster/wire';

export interface TunnelPeerView {
  readonly publicKey: string;
  readonly name?: string;
  readonly allowedIps: readonly string[];
  /** The peer's latest authenticated outer address "a.b.c.d:port", as this member saw it; null when never heard. */
  readonly endpoint: string | null;
  /** The work unit of the peer's outer packets and its owner (the member that terminates the tunnel). */
  readonly unit: number | null;
  readonly owner: MemberId | null;
  /** ISO time of the latest handshake this member completed with the peer; null when none. */
  readonly latestHandshake: string | null;
  readonly rxBytes: number;
  readonly rxPackets: number;
  readonly txBytes: number;
  readonly txPackets: number;
}

export interface TunnelsView {
  readonly enabled: boolean;
  readonly running: boolean;
  /** The cluster's WireGuard public key (base64); null when the endpoint is not configured. */
  readonly publicKey: string | null;
  readonly listenAddress: string | null;
  readonly listenPort: number | null;
  readonly interface: string | null;
  readonly peers: readonly TunnelPeerView[];
  /** Packets this member dropped, by reason: the handshake core's and the data path's. */
  readonly drops: { readonly handshake: Readonly<Record<string, number>>; readonly transport: Readonly<Record<string, number>> };
}

export interface TunnelsProvider {
  view(): TunnelsView;
}

export const NO_TUNNELS: TunnelsView = { enabled: false, running: false, publicKey: null, listenAddress: null, listenPort: null, interface: null, peers: [], drops: { handshake: {}, transport: {} } };

