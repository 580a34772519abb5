/**
 * What the admin API and the metrics read from the data plane and from state sync. Those parts are
 * built elsewhere; they implement these interfaces and hand them to buildAdminServer / runMember. Until
 * then the empty providers below answer: no sessions, no traffic counters, no sync backlog.
 *
 * Every method is called on the event loop from an admin request or a metrics scrape: it must answer
 * from memory, at once, and never throw (a failure is an empty answer).
 */
import type { MemberId, WorkUnit } from '@gwcluster/wire';
import type { TunnelsProvider } from '../tunnels/tunnels-view.js';

/** One session (a flow the cluster carries), as GET /v1/sessions shows it. */
export interface SessionRecord {
  /** Stable id within the owner, e.g. "tcp:192.0.2.50:40000>198.51.100.10:443". */
  readonly id: string;
  readonly protocol: string;
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly dstAddress: string;
  readonly dstPort: number;
  readonly unit: WorkUnit;
  /** Member that serves it. */
  readonly member: MemberId;
  /** ISO time of its first packet. */
  readonly since: string;
  readonly packets: number;
  readonly bytes: number;
}

export interface SessionFilter {
  /** Matches the source or the destination address. */
  readonly address?: string;
  /** Matches the source or the destination port. */
  readonly port?: number;
  readonly unit?: WorkUnit;
  readonly member?: MemberId;
}

export interface SessionPage {
  /** Sessions matching the filter in total (before paging). */
  readonly total: number;
  readonly sessions: readonly SessionRecord[];
}

export interface SessionProvider {
  /** Sessions matching `filter` in a stable order, from `offset`, at most `limit`. */
  list(filter: SessionFilter, offset: number, limit: number): SessionPage;
}

/** Cumulative traffic figures of this member's data plane (counters only ever grow, per process). */
export interface TrafficCounters {
  /** Per unit, index = unit (length 1024): packets, bytes and drops this member handled for it. */
  unitPackets(): ArrayLike<number>;
  unitBytes(): ArrayLike<number>;
  unitDrops(): ArrayLike<number>;
  /** Packets and bytes held for units being assigned (Figure 9) right now. */
  holdQueue(): { readonly packets: number; readonly bytes: number };
  /** Dropped packets by reason (e.g. truncated, malformed, hold-overflow). */
  drops(): Readonly<Record<string, number>>;
}

/** State synchronisation figures (the state-sync issue). */
export interface SyncCounters {
  /** Entries waiting to be sent to peers. */
  backlog(): number;
  /** Bytes of state sent since start. */
  bytesSent(): number;
  bytesReceived(): number;
}

/** What GET /v1/capture asks of the data plane: the frames of one work unit on one interface. */
export interface UnitCaptureRequest {
  readonly unit: WorkUnit;
  /** Default: the member's cluster interface. */
  readonly interface?: string;
  /** One Ethernet frame of the unit, with the time it was delivered (ms); return false to stop delivering this batch. */
  readonly onFrame: (frame: Uint8Array, atMs: number) => boolean;
  readonly onError: (err: Error) => void;
}

export interface UnitCaptureHandle {
  stop(): void;
}

export interface UnitCaptureSource {
  /** Interfaces a capture may open, the default first. */
  interfaces(): readonly string[];
  /** Starts capturing; throws (with a message for the operator) if the capture cannot open. */
  start(req: UnitCaptureRequest): UnitCaptureHandle;
}

export interface OperatorProviders {
  readonly sessions: SessionProvider;
  readonly traffic: TrafficCounters | null;
  readonly sync: SyncCounters | null;
  /** Packet capture per work unit (GET /v1/capture); absent: the route answers GW_REFUSED. */
  readonly capture?: UnitCaptureSource | null;
  /** The WireGuard endpoint (tunnels.wireguard); absent or null when not configured. */
  readonly tunnels?: TunnelsProvider | null;
}

export const NO_SESSIONS: SessionProvider = {
  list: () => ({ total: 0, sessions: [] }),
};

export const EMPTY_PROVIDERS: OperatorProviders = { sessions: NO_SESSIONS, traffic: null, sync: null };

/** A SessionProvider over an array (tests, and a starting point for the data plane's). */
export function arraySessions(all: () => readonly SessionRecord[]): SessionProvider {
  return {
    list(f, offset, limit) {
      const matching = all().filter(
        (s) =>
          (f.address === undefined || s.srcAddress === f.address || s.dstAddress === f.address) &&
          (f.port === undefined || s.srcPort === f.port || s.dstPort === f.port) &&
          (f.unit === undefined || s.unit === f.unit) &&
          (f.member === undefined || s.member === f.member),
      );
      return { total: matching.length, sessions: matching.slice(offset, offset + limit) };
    },
  };
}
