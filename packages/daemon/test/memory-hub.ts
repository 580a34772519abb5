import type { Transport } from '../src/control/udp-transport.js';

/** An in-memory broadcast medium for MemberNode tests: datagrams queue until flush(). */
export class MemoryHub {
  private readonly ports = new Map<string, MemoryTransport>();
  readonly queue: { from: string; to: string; bytes: Uint8Array }[] = [];
  /** Every datagram ever sent, for replay and tampering tests. */
  readonly wire: { from: string; to: string; bytes: Uint8Array }[] = [];
  drop: (d: { from: string; to: string; bytes: Uint8Array }) => boolean = () => false;

  attach(ip: string): MemoryTransport {
    const t = new MemoryTransport(this, ip);
    this.ports.set(ip, t);
    return t;
  }

  detach(ip: string): void {
    this.ports.delete(ip);
  }

  post(from: string, to: string, bytes: Uint8Array): void {
    const targets = to === 'broadcast' ? [...this.ports.keys()].filter((ip) => ip !== from) : [to];
    for (const t of targets) {
      const d = { from, to: t, bytes };
      this.wire.push(d);
      if (!this.drop(d)) this.queue.push(d);
    }
  }

  /** Injects a datagram as if `from` had sent it to `to`. */
  inject(from: string, to: string, bytes: Uint8Array): void {
    this.queue.push({ from, to, bytes });
  }

  flush(): void {
    for (let i = 0; i < 10_000 && this.queue.length > 0; i++) {
      const d = this.queue.shift()!;
      this.ports.get(d.to)?.deliver(d.bytes, d.from);
    }
  }
}

export class MemoryTransport implements Transport {
  readonly counters = { sent: 0, received: 0 };
  private handler: (bytes: Uint8Array, from: string) => void = () => {};
  constructor(
    private readonly hub: MemoryHub,
    readonly ip: string,
  ) {}
  send(to: string, bytes: Uint8Array): void {
    this.counters.sent++;
    this.hub.post(this.ip, to, bytes);
  }
  broadcast(bytes: Uint8Array): void {
    this.counters.sent++;
    this.hub.post(this.ip, 'broadcast', bytes);
  }
  onReceive(handler: (bytes: Uint8Array, from: string) => void): void {
    this.handler = handler;
  }
  deliver(bytes: Uint8Array, from: string): void {
    this.counters.received++;
    this.handler(bytes, from);
  }
  async close(): Promise<void> {}
}
