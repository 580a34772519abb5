/**
 * UDP on the cluster interface: the appliances' Transport (the seam and its guarantees are in
 * @gwcluster/cluster-core, transport/transport.ts).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { Transport } from '@gwcluster/cluster-core';
import { ipv4ToNumber } from '@gwcluster/wire';

export type { Transport } from '@gwcluster/cluster-core';

export interface UdpTransportOptions {
  readonly port: number;
  readonly broadcastAddress: string;
  /** Local address to send from; members talk from their member IP. */
  readonly localAddress: string;
  /**
   * true (default): bind localAddress, and receive broadcasts on a second socket bound to broadcastAddress
   * (Linux delivers a directed broadcast to a socket bound to that broadcast address), so the port is not
   * open on any other address of the host (outside addresses, cluster IPs). false: one wildcard socket
   * (0.0.0.0), for hosts whose broadcasts arrive on another address.
   */
  readonly bindLocalAddress?: boolean;
  /**
   * The cluster subnet: a datagram whose source is outside it is dropped and counted
   * (`drop.outside-subnet`) before the receive handler sees a byte of it. Unset: every source is passed.
   */
  readonly sourceSubnet?: { readonly address: string; readonly prefixLength: number };
}

/** True when `ip` (a dotted quad as the kernel reports it) lies in `network`/`prefixLength`. */
export function inSubnet(ip: string, network: number, mask: number): boolean {
  try {
    return ((ipv4ToNumber(ip) & mask) >>> 0) === network;
  } catch {
    return false;
  }
}

/**
 * UDP on the cluster interface. Binds the member address and the subnet broadcast address (see
 * bindLocalAddress) and sends from the member address, so receivers can check the source.
 */
/** Receive buffer asked for each control socket (the kernel caps it at net.core.rmem_max). */
export const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

export class UdpTransport implements Transport {
  private readonly socket: Socket;
  private readonly sockets: readonly Socket[];
  readonly counters: Record<string, number> = { sent: 0, received: 0, sendErrors: 0, 'drop.outside-subnet': 0 };
  private handler: (bytes: Uint8Array, fromIp: string) => void = () => {};

  private constructor(
    private readonly opts: UdpTransportOptions,
    sockets: readonly Socket[],
  ) {
    this.socket = sockets[0]!;
    this.sockets = sockets;
    const subnet = opts.sourceSubnet;
    const mask = subnet ? (subnet.prefixLength === 0 ? 0 : (0xffffffff << (32 - subnet.prefixLength)) >>> 0) : 0;
    const network = subnet ? (ipv4ToNumber(subnet.address) & mask) >>> 0 : 0;
    for (const socket of sockets) {
      socket.on('message', (msg, rinfo) => {
        if (subnet && !inSubnet(rinfo.address, network, mask)) {
          this.counters['drop.outside-subnet']!++;
          return;
        }
        this.counters.received!++;
        this.handler(msg, rinfo.address);
      });
      socket.on('error', () => {
        this.counters.sendErrors!++;
      });
    }
  }

  static async open(opts: UdpTransportOptions): Promise<UdpTransport> {
    const bind = async (address: string): Promise<Socket> => {
      const socket = createSocket({ type: 'udp4', reuseAddr: true });
      try {
        await new Promise<void>((resolvePromise, reject) => {
          socket.once('error', reject);
          socket.bind({ port: opts.port, address, exclusive: false }, () => {
            socket.off('error', reject);
            resolvePromise();
          });
        });
      } catch (e) {
        // Closed so that a retried bind (bind-retry.ts) leaks no socket.
        try {
          socket.close();
        } catch {
          /* already closed */
        }
        throw e;
      }
      // A receive buffer that holds a burst of state-sync messages while the event loop is busy: the
      // kernel's default (about 200 KiB, some 90 such datagrams) overflowed under load and dropped the
      // keepalives behind them (docs/operator-guide.md: the kernel caps it at net.core.rmem_max).
      try {
        socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
      } catch {
        /* capped or refused: the kernel's default stays */
      }
      return socket;
    };
    const perAddress = opts.bindLocalAddress ?? true;
    const socket = await bind(perAddress ? opts.localAddress : '0.0.0.0');
    socket.setBroadcast(true);
    if (!perAddress) return new UdpTransport(opts, [socket]);
    let broadcastSocket: Socket;
    try {
      broadcastSocket = await bind(opts.broadcastAddress);
    } catch (e) {
      await new Promise<void>((r) => socket.close(() => r()));
      throw e;
    }
    return new UdpTransport(opts, [socket, broadcastSocket]);
  }

  send(to: string, bytes: Uint8Array): void {
    this.counters.sent!++;
    try {
      this.socket.send(bytes, this.opts.port, to, (err) => {
        if (err) this.counters.sendErrors!++;
      });
    } catch {
      // A closed socket throws at once; the contract is best-effort and never throwing.
      this.counters.sendErrors!++;
    }
  }

  broadcast(bytes: Uint8Array): void {
    this.send(this.opts.broadcastAddress, bytes);
  }

  onReceive(handler: (bytes: Uint8Array, fromIp: string) => void): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    return Promise.all(this.sockets.map((socket) => new Promise<void>((r) => socket.close(() => r())))).then(() => undefined);
  }
}
