/**
 * UDP on the cluster interface: the appliances' Transport (the seam and its guarantees are in
 * @gwcluster/cluster-core, transport/transport.ts).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { Transport } from '@gwcluster/cluster-core';

export type { Transport } from '@gwcluster/cluster-core';

export interface UdpTransportOptions {
  readonly port: number;
  readonly broadcastAddress: string;
  /** Local address to send from; members talk from their member IP. */
  readonly localAddress: string;
  /**
   * Several members on one host (tests on 127.0.0.x): bind localAddress instead of the wildcard, and
   * receive broadcasts on a second socket bound to broadcastAddress. Default false (one wildcard socket).
   */
  readonly bindLocalAddress?: boolean;
}

/**
 * UDP on the cluster interface. Binds 0.0.0.0:port (Linux delivers subnet broadcasts only to sockets bound
 * to the wildcard address) and sends from the member address, so receivers can check the source.
 */
export class UdpTransport implements Transport {
  private readonly socket: Socket;
  private readonly sockets: readonly Socket[];
  readonly counters: Record<string, number> = { sent: 0, received: 0, sendErrors: 0 };
  private handler: (bytes: Uint8Array, fromIp: string) => void = () => {};

  private constructor(
    private readonly opts: UdpTransportOptions,
    sockets: readonly Socket[],
  ) {
    this.socket = sockets[0]!;
    this.sockets = sockets;
    for (const socket of sockets) {
      socket.on('message', (msg, rinfo) => {
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
      await new Promise<void>((resolvePromise, reject) => {
        socket.once('error', reject);
        socket.bind({ port: opts.port, address, exclusive: false }, () => {
          socket.off('error', reject);
          resolvePromise();
        });
      });
      return socket;
    };
    const socket = await bind(opts.bindLocalAddress ? opts.localAddress : '0.0.0.0');
    socket.setBroadcast(true);
    return new UdpTransport(opts, opts.bindLocalAddress ? [socket, await bind(opts.broadcastAddress)] : [socket]);
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
