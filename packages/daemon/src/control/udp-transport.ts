/**
 * The transport seam: how a member's datagrams reach other members. Best-effort both ways (UDP
 * semantics): the protocol core retransmits what must arrive. UdpTransport is the real one; tests may
 * pass any object with this shape.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface Transport {
  /** Sends one datagram to a member. Best-effort; never throws (failures are counted). */
  send(to: string, bytes: Uint8Array): void;
  /** Sends one datagram to every member (subnet broadcast). Best-effort; never throws. */
  broadcast(bytes: Uint8Array): void;
  /** Installs the receive handler; called once per datagram, never concurrently. */
  onReceive(handler: (bytes: Uint8Array, fromIp: string) => void): void;
  close(): Promise<void>;
  readonly counters: Readonly<Record<string, number>>;
}

export interface UdpTransportOptions {
  readonly port: number;
  readonly broadcastAddress: string;
  /** Local address to send from; members talk from their member IP. */
  readonly localAddress: string;
}

/**
 * UDP on the cluster interface. Binds 0.0.0.0:port (Linux delivers subnet broadcasts only to sockets bound
 * to the wildcard address) and sends from the member address, so receivers can check the source.
 */
export class UdpTransport implements Transport {
  private readonly socket: Socket;
  readonly counters: Record<string, number> = { sent: 0, received: 0, sendErrors: 0 };
  private handler: (bytes: Uint8Array, fromIp: string) => void = () => {};

  private constructor(
    private readonly opts: UdpTransportOptions,
    socket: Socket,
  ) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.counters.received!++;
      this.handler(msg, rinfo.address);
    });
    socket.on('error', () => {
      this.counters.sendErrors!++;
    });
  }

  static async open(opts: UdpTransportOptions): Promise<UdpTransport> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolvePromise, reject) => {
      socket.once('error', reject);
      socket.bind({ port: opts.port, address: '0.0.0.0', exclusive: false }, () => {
        socket.off('error', reject);
        resolvePromise();
      });
    });
    socket.setBroadcast(true);
    return new UdpTransport(opts, socket);
  }

  send(to: string, bytes: Uint8Array): void {
    this.counters.sent!++;
    this.socket.send(bytes, this.opts.port, to, (err) => {
      if (err) this.counters.sendErrors!++;
    });
  }

  broadcast(bytes: Uint8Array): void {
    this.send(this.opts.broadcastAddress, bytes);
  }

  onReceive(handler: (bytes: Uint8Array, fromIp: string) => void): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}
