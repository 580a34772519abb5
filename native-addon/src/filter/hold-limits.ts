// The hold queue's bounds (hold_queue.h gives the reasons for the defaults), shared by the filter and
// the packet engine, which both hold a master's packets for units not yet acknowledged.

/** Hold queue limits. */
export interface HoldLimits {
  /** Packets one unit may hold. Default 64. */
  perUnitPackets: number;
  /** Packets all units may hold together. Default 4096. */
  totalPackets: number;
  /** Bytes all units may hold together. Default 4 MiB. */
  totalBytes: number;
}
export const DEFAULT_HOLD_LIMITS: Readonly<HoldLimits> = { perUnitPackets: 64, totalPackets: 4096, totalBytes: 4 << 20 };
