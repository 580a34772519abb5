/**
 * The transport seam: how a member's datagrams reach other members. Both paths are best-effort (UDP
 * semantics): a datagram may be lost, delayed or reordered, never altered; the protocol core retransmits
 * what must arrive. The daemon's UdpTransport is the real one; MemoryTransport (memory-network.ts) is the
 * simulated one; transportConformance() (conformance.ts) is what both must pass.
 */
export interface Transport {
  /** Sends one datagram to the member at `to` (its member IP). Best-effort; never throws, also after close(). */
  send(to: string, bytes: Uint8Array): void;
  /**
   * Sends one datagram to every other member (subnet broadcast). Best-effort; never throws. The sender may
   * receive its own broadcast back, with its own address as source (a subnet broadcast loops back on
   * Linux); drivers discard datagrams from their own address.
   */
  broadcast(bytes: Uint8Array): void;
  /**
   * Installs the receive handler, replacing any earlier one. It is called once per datagram, with the
   * sender's address, never concurrently and never re-entrantly; it must not block. No call after close().
   */
  onReceive(handler: (bytes: Uint8Array, fromIp: string) => void): void;
  /** Stops receiving; sends afterwards are dropped (and counted) without throwing. */
  close(): Promise<void>;
  /** At least `sent` (send and broadcast calls) and `received` (datagrams handed to the handler). */
  readonly counters: Readonly<Record<string, number>>;
}
