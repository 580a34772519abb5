/**
 * The UDP transport passes the transport conformance suite on loopback: three members on 127.0.0.2-4,
 * each bound to its own address, broadcasts on 127.255.255.255 (lo's broadcast address on Linux), on a
 * port chosen per run.
 */
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { transportConformance, type TransportFixture } from '@gwcluster/cluster-core/testing';
import { UdpTransport } from '../../src/control/udp-transport.js';

const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const BROADCAST = '127.255.255.255';

/** A UDP port free on the loopback addresses now (the kernel's choice for an ephemeral bind). */
async function freePort(): Promise<number> {
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind({ port: 0, address: ADDRESSES[0] }, () => r()));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

async function fixture(): Promise<TransportFixture> {
  const port = await freePort();
  const transports = await Promise.all(ADDRESSES.map((a) => UdpTransport.open({ port, broadcastAddress: BROADCAST, localAddress: a, bindLocalAddress: true })));
  const closed = new Set<UdpTransport>();
  for (const t of transports) {
    const close = t.close.bind(t);
    t.close = () => {
      closed.add(t);
      return close();
    };
  }
  return {
    transports,
    addresses: ADDRESSES,
    settle: async (done) => {
      // Loopback delivers within a millisecond; wait a little longer so late or doubled datagrams show.
      const deadline = Date.now() + 1000;
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 30));
    },
    dispose: async () => {
      await Promise.all(transports.filter((t) => !closed.has(t)).map((t) => t.close()));
    },
  };
}

transportConformance('UdpTransport on loopback', fixture, { describe, it });

describe('UdpTransport source filter', () => {
  it('drops and counts datagrams from outside the cluster subnet before the receive handler', async () => {
    const port = await freePort();
    // Subnet 127.0.0.0/30: 127.0.0.3 is inside, 127.0.0.5 outside.
    const receiver = await UdpTransport.open({ port, broadcastAddress: BROADCAST, localAddress: '127.0.0.2', sourceSubnet: { address: '127.0.0.2', prefixLength: 30 } });
    const heard: string[] = [];
    receiver.onReceive((_bytes, from) => heard.push(from));
    const senders = await Promise.all(['127.0.0.3', '127.0.0.5'].map(async (address) => {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind({ port: 0, address }, () => r()));
      return s;
    }));
    try {
      for (const s of senders) for (let i = 0; i < 5; i++) s.send(Buffer.from('not a message'), port, '127.0.0.2');
      const deadline = Date.now() + 2000;
      while ((heard.length < 5 || receiver.counters['drop.outside-subnet']! < 5) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(heard).toEqual(Array(5).fill('127.0.0.3'));
      expect(receiver.counters['drop.outside-subnet']).toBe(5);
      expect(receiver.counters.received).toBe(5);
    } finally {
      for (const s of senders) s.close();
      await receiver.close();
    }
  });
});
