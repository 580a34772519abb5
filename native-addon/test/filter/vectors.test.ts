// Known vectors, computed by hand here, checked against the TypeScript reference AND the C++ filter.
import { describe, expect, it } from 'vitest';
import {
  classifyBatchDetailed,
  classifyFlow,
  classifyFrame,
  classifyPacket,
  filterKey,
  FLAG_FRAGMENT,
  FLAG_L2TP,
  FLAG_L2TP_FALLBACK,
  loadBinding,
  packBatch,
  parseClusterIps,
  parseIpv6,
  STATUS,
  workUnitOfKey,
  type FrameResult,
  type PacketClassification,
} from '../../src/index.js';
import { arp, bytes, ether, ipv4, ipv6, l2tp, tcp, udp } from '../packets.js';

const CLUSTER = new Set(['192.0.2.1', '2001:db8::1']);

/** The work-unit formula, written out again so the test does not trust the code under test. */
const unitOf = (k: number): number => {
  k >>>= 0;
  return (k ^ (k >>> 10) ^ (k >>> 20) ^ (k >>> 30)) & 1023;
};

/** Classifies with the reference and the C++ filter; asserts they agree; returns the reference's result. */
function both(p: Uint8Array, frames = false): FrameResult {
  const ref = frames ? classifyFrame(p, { clusterIps: CLUSTER }) : classifyPacket(p, { clusterIps: CLUSTER });
  const { packets, offsets } = packBatch([p]);
  const nat = classifyBatchDetailed(packets, offsets, CLUSTER, { frames });
  if ('unit' in ref) {
    expect(nat.units[0]).toBe(ref.unit);
    expect(nat.keys[0]).toBe(ref.key);
    expect(nat.protos[0]).toBe(ref.proto);
    expect(nat.codes[0]! & FLAG_FRAGMENT ? true : false).toBe(ref.fragment);
    expect(nat.codes[0]! & 7).toBe(ref.kind === 'cluster' ? STATUS.cluster : STATUS.forwarded);
    expect(Boolean(nat.codes[0]! & FLAG_L2TP)).toBe(ref.l2tp !== undefined);
    expect(Boolean(nat.codes[0]! & FLAG_L2TP_FALLBACK)).toBe(ref.l2tpFallback !== undefined);
    if (ref.l2tp) expect(nat.l2tpIds[0]).toBe(((ref.l2tp.tunnelId << 16) | ref.l2tp.sessionId) >>> 0);
  } else {
    expect(nat.units[0]).toBe(0xffff);
    if ('error' in ref) expect(nat.codes[0]! & 7).toBe(STATUS[ref.error]);
    else expect(nat.codes[0]! & 7).toBe(STATUS.arp);
  }
  return ref;
}

function ok(r: FrameResult): PacketClassification {
  if (!('unit' in r)) throw new Error(`expected a classified packet, got ${JSON.stringify(r)}`);
  return r;
}

describe('work unit formula', () => {
  it('TCP 192.0.2.10:40000 -> cluster: key = 0xC000020A ^ 40000 = 0xC0009E4A, unit 622', () => {
    const k = (0xc000020a ^ 40000) >>> 0;
    expect(k).toBe(0xc0009e4a);
    // k & 1023 = 0x24A, k>>>10 & 1023 = 0x027, k>>>20 & 1023 = 0, k>>>30 = 3: 0x24A ^ 0x027 ^ 3 = 0x26E
    expect(unitOf(k)).toBe(0x26e);
    expect(workUnitOfKey(k)).toBe(622);
    expect(loadBinding().workUnitOfKey(k)).toBe(622);
    const r = ok(both(ipv4({ src: '192.0.2.10', dst: '192.0.2.1', proto: 6, payload: tcp({ sport: 40000, dport: 443 }) })));
    expect(r).toMatchObject({ kind: 'cluster', key: 0xc0009e4a, unit: 622, proto: 6, fragment: false, ipVersion: 4, ipLength: 40 });
  });

  it('agrees with the native formula on edge keys', () => {
    const b = loadBinding();
    for (const k of [0, 1, 1023, 1024, 0x3ff003ff, 0x40000000, 0x7fffffff, 0x80000000, 0xffffffff, 0xdeadbeef]) {
      expect(workUnitOfKey(k)).toBe(unitOf(k));
      expect(b.workUnitOfKey(k)).toBe(unitOf(k));
    }
  });
});

describe('filter keys', () => {
  it('UDP to the cluster IP: src ^ sport', () => {
    const r = ok(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 17, payload: udp({ sport: 5353, dport: 53 }) })));
    const k = ((198 << 24) | (51 << 16) | (100 << 8) | 20) ^ 5353;
    expect(r.key).toBe(k >>> 0);
    expect(r.unit).toBe(unitOf(k));
  });

  it('ICMP to the cluster IP: src ^ dst', () => {
    const r = ok(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 1, payload: bytes(8, 0, 0, 0, 0, 1, 0, 1) })));
    expect(r.key).toBe((0xc6336414 ^ 0xc0000201) >>> 0);
    expect(r.unit).toBe(unitOf(0xc6336414 ^ 0xc0000201));
  });

  it('a forwarded packet and its reply land on the same unit (src ^ dst is symmetric)', () => {
    const there = ok(both(ipv4({ src: '198.51.100.20', dst: '203.0.113.9', proto: 6, payload: tcp({ sport: 1234, dport: 80 }) })));
    const back = ok(both(ipv4({ src: '203.0.113.9', dst: '198.51.100.20', proto: 6, payload: tcp({ sport: 80, dport: 1234 }) })));
    expect(there.kind).toBe('forwarded');
    expect(back.kind).toBe('forwarded');
    expect(there.key).toBe((0xc6336414 ^ 0xcb007109) >>> 0);
    expect(back.unit).toBe(there.unit);
  });

  it('L2TP without the Length bit: src ^ sport ^ tunnelId ^ sessionId', () => {
    const payload = udp({ sport: 1701, dport: 1701, payload: l2tp({ tunnelId: 0x1234, sessionId: 0x0042, payload: bytes(0xff, 3) }) });
    const r = ok(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 17, payload })));
    const k = (0xc6336414 ^ 1701 ^ 0x1234 ^ 0x0042) >>> 0;
    expect(r).toMatchObject({ key: k, unit: unitOf(k), l2tp: { tunnelId: 0x1234, sessionId: 0x42 } });
  });

  it('L2TP with the Length bit (and Ns/Nr, Offset) reads the IDs after the Length field', () => {
    const msg = l2tp({ tunnelId: 7, sessionId: 9, lengthBit: true, sequence: true, offset: 2, control: true, payload: bytes(1, 2, 3) });
    const r = ok(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 17, payload: udp({ sport: 40001, dport: 1701, payload: msg }) })));
    const k = (0xc6336414 ^ 40001 ^ 7 ^ 9) >>> 0;
    expect(r).toMatchObject({ key: k, unit: unitOf(k), l2tp: { tunnelId: 7, sessionId: 9 } });
  });

  it('L2TP that is truncated, not version 2, or with a bad Length falls back to plain UDP', () => {
    const src = '198.51.100.20';
    const plain = (0xc6336414 ^ 1701) >>> 0;
    const cases: [Uint8Array, string][] = [
      [bytes(0x00, 0x02, 0x00), 'truncated'], // 3 bytes, header needs 6
      [l2tp({ tunnelId: 1, sessionId: 2, version: 3 }), 'version'],
      [l2tp({ tunnelId: 1, sessionId: 2, lengthBit: true, lengthField: 4 }), 'length'], // < header size 8
      [l2tp({ tunnelId: 1, sessionId: 2, lengthBit: true, lengthField: 200 }), 'length'], // > UDP payload
      [l2tp({ tunnelId: 1, sessionId: 2, sequence: true }).subarray(0, 8), 'truncated'], // S: needs 10
      [(() => { const m = l2tp({ tunnelId: 1, sessionId: 2, offset: 0 }); m[7] = 50; return m; })(), 'truncated'], // offset pad past end
    ];
    for (const [msg, reason] of cases) {
      const r = ok(both(ipv4({ src, dst: '192.0.2.1', proto: 17, payload: udp({ sport: 1701, dport: 1701, payload: msg }) })));
      expect(r.l2tpFallback, reason).toBe(reason);
      expect(r.l2tp).toBeUndefined();
      expect(r.key).toBe(plain);
    }
    // UDP *from* port 1701 to another port is plain UDP, no fallback
    const r = ok(both(ipv4({ src, dst: '192.0.2.1', proto: 17, payload: udp({ sport: 1701, dport: 5000, payload: bytes(0, 2, 0, 1, 0, 2) }) })));
    expect(r.l2tpFallback).toBeUndefined();
  });

  it('the first and a later IPv4 fragment of one datagram land on the same unit (src ^ dst)', () => {
    const first = ok(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 17, moreFragments: true, payload: udp({ sport: 999, dport: 53, payload: new Uint8Array(64) }) })));
    const later = ok(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 17, fragOffset: 9, payload: new Uint8Array(40) })));
    expect(first.fragment).toBe(true);
    expect(later.fragment).toBe(true);
    expect(first.key).toBe((0xc6336414 ^ 0xc0000201) >>> 0);
    expect(later.unit).toBe(first.unit);
    // the unfragmented datagram would have been keyed by src ^ sport
    const whole = ok(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 17, payload: udp({ sport: 999, dport: 53 }) })));
    expect(whole.key).toBe((0xc6336414 ^ 999) >>> 0);
  });

  it('IPv6 keys use the XOR of the four address words', () => {
    const src = '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff';
    const srcFold = (0x20010db8 ^ 0xaaaabbbb ^ 0xccccdddd ^ 0xeeeeffff) >>> 0;
    const r = ok(both(ipv6({ src, dst: '2001:db8::1', nextHeader: 6, payload: tcp({ sport: 50000, dport: 22 }) })));
    expect(r).toMatchObject({ kind: 'cluster', ipVersion: 6, proto: 6, key: (srcFold ^ 50000) >>> 0, unit: unitOf(srcFold ^ 50000) });
    const icmp = ok(both(ipv6({ src, dst: '2001:db8::1', nextHeader: 58, payload: bytes(128, 0, 0, 0) })));
    expect(icmp.key).toBe((srcFold ^ 0x20010db8 ^ 1) >>> 0);
  });

  it('IPv6 with a Fragment header is keyed src ^ dst; extension headers are walked', () => {
    const src = '2001:db8::99';
    const fold = (a: string): number => {
      const b = parseIpv6(a);
      const dv = new DataView(b.buffer);
      return (dv.getUint32(0) ^ dv.getUint32(4) ^ dv.getUint32(8) ^ dv.getUint32(12)) >>> 0;
    };
    const frag = ok(both(ipv6({ src, dst: '2001:db8::1', nextHeader: 17, ext: [{ type: 0, length: 8 }, { type: 44, more: true }], payload: udp({ sport: 7, dport: 7, payload: new Uint8Array(16) }) })));
    expect(frag).toMatchObject({ fragment: true, proto: 17, key: (fold(src) ^ fold('2001:db8::1')) >>> 0 });
    const routed = ok(both(ipv6({ src, dst: '2001:db8::1', nextHeader: 6, ext: [{ type: 0, length: 16 }, { type: 43, length: 24 }, { type: 51, length: 12 }, { type: 60, length: 8 }], payload: tcp({ sport: 8080, dport: 80 }) })));
    expect(routed).toMatchObject({ fragment: false, proto: 6, key: (fold(src) ^ 8080) >>> 0 });
    const esp = ok(both(ipv6({ src, dst: '2001:db8::1', nextHeader: 50, payload: new Uint8Array(24) })));
    expect(esp).toMatchObject({ proto: 50, key: (fold(src) ^ fold('2001:db8::1')) >>> 0 });
  });

  it('filterKey and classifyFlow follow the same rules', () => {
    expect(filterKey({ src: 0xc000020a, dst: 0xc0000201, proto: 6, sport: 40000 })).toBe(0xc0009e4a);
    expect(filterKey({ src: 1, dst: 2, proto: 6, sport: 40000, forwarding: true })).toBe(3);
    expect(filterKey({ src: 1, dst: 2, proto: 17, sport: 1701, l2tp: { tunnelId: 4, sessionId: 8 } })).toBe(1 ^ 1701 ^ 4 ^ 8);
    expect(classifyFlow({ proto: 'tcp', src: '192.0.2.10', sport: 40000 })).toEqual({ unit: 622, key: 0xc0009e4a, rule: 'src^sport' });
    expect(classifyFlow({ proto: 'l2tp', src: '198.51.100.20', sport: 40001, tunnelId: 7, sessionId: 9 }).key).toBe((0xc6336414 ^ 40001 ^ 7 ^ 9) >>> 0);
    expect(classifyFlow({ proto: 'icmp', src: '198.51.100.20', dst: '192.0.2.1' }).key).toBe((0xc6336414 ^ 0xc0000201) >>> 0);
    const f = classifyFlow({ proto: 6, src: '198.51.100.20', dst: '203.0.113.9', sport: 1, dport: 2, forwarding: true });
    expect(f.unit).toBe(classifyFlow({ proto: 6, src: '203.0.113.9', dst: '198.51.100.20', sport: 2, dport: 1, forwarding: true }).unit);
    expect(() => classifyFlow({ proto: 'tcp', src: '192.0.2.10' })).toThrow(/sport must be an integer 0\.\.65535/);
    expect(() => classifyFlow({ proto: 'icmp', src: '192.0.2.10' })).toThrow(/dst is needed/);
    expect(() => classifyFlow({ proto: 'sctp' as 'tcp', src: '192.0.2.10' })).toThrow(TypeError);
  });
});

describe('drops', () => {
  it('truncated and malformed packets are reported with a reason', () => {
    const good = ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 6, payload: tcp({ sport: 1, dport: 2 }) });
    expect(both(good.subarray(0, 10))).toEqual({ error: 'truncated', reason: 'ip-header' });
    expect(both(good.subarray(0, 30))).toEqual({ error: 'truncated', reason: 'ip-length' });
    expect(both(new Uint8Array(0))).toEqual({ error: 'truncated', reason: 'ip-header' });
    expect(both(bytes(0x50, ...new Uint8Array(30)))).toEqual({ error: 'malformed', reason: 'ip-version' });
    const ihl = good.slice(); ihl[0] = 0x44;
    expect(both(ihl)).toEqual({ error: 'malformed', reason: 'ip-ihl' });
    const tot = good.slice(); tot[2] = 0; tot[3] = 10;
    expect(both(tot)).toEqual({ error: 'malformed', reason: 'ip-total-length' });
    expect(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 6, payload: tcp({ sport: 1, dport: 2 }).subarray(0, 12) }))).toEqual({ error: 'truncated', reason: 'l4-header' });
    expect(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 6, payload: tcp({ sport: 1, dport: 2, dataOffset: 4 }) }))).toEqual({ error: 'malformed', reason: 'tcp-data-offset' });
    expect(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 6, payload: tcp({ sport: 1, dport: 2, dataOffset: 15 }).subarray(0, 40) }))).toEqual({ error: 'truncated', reason: 'l4-header' });
    expect(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 17, payload: udp({ sport: 1, dport: 2, length: 4 }) }))).toEqual({ error: 'malformed', reason: 'udp-length' });
    expect(both(ipv4({ src: '198.51.100.20', dst: '192.0.2.1', proto: 17, payload: udp({ sport: 1, dport: 2, length: 90 }) }))).toEqual({ error: 'truncated', reason: 'l4-header' });
    const nine = Array.from({ length: 9 }, () => ({ type: 60, length: 8 }));
    expect(both(ipv6({ src: '2001:db8::2', dst: '2001:db8::1', nextHeader: 6, ext: nine, payload: tcp({ sport: 1, dport: 2 }) }))).toEqual({ error: 'malformed', reason: 'ext-header-limit' });
    const eight = Array.from({ length: 8 }, () => ({ type: 60, length: 8 }));
    expect(ok(both(ipv6({ src: '2001:db8::2', dst: '2001:db8::1', nextHeader: 6, ext: eight, payload: tcp({ sport: 1, dport: 2 }) }))).proto).toBe(6);
    expect(both(ipv6({ src: '2001:db8::2', dst: '2001:db8::1', nextHeader: 6, ext: [{ type: 0, length: 64 }], payloadLength: 40 }).subarray(0, 80))).toEqual({ error: 'truncated', reason: 'ext-header' });
  });

  it('forwarded packets and fragments are not parsed past the network layer', () => {
    // A forwarded TCP packet with a broken TCP header is still classified (src ^ dst).
    const r = both(ipv4({ src: '198.51.100.20', dst: '203.0.113.9', proto: 6, payload: bytes(1, 2) }));
    expect(ok(r).kind).toBe('forwarded');
  });
});

describe('Ethernet frames', () => {
  const ip = ipv4({ src: '192.0.2.10', dst: '192.0.2.1', proto: 6, payload: tcp({ sport: 40000, dport: 443 }) });
  it('untagged, one and two VLAN tags give the same unit; three tags are malformed', () => {
    expect(ok(both(ether({ type: 0x0800, payload: ip }), true)).unit).toBe(622);
    expect(ok(both(ether({ type: 0x0800, vlans: [10], payload: ip }), true)).unit).toBe(622);
    expect(ok(both(ether({ type: 0x0800, vlans: [10, 20], payload: ip }), true)).unit).toBe(622);
    expect(both(ether({ type: 0x0800, vlans: [10, 20, 30], payload: ip }), true)).toEqual({ error: 'malformed', reason: 'vlan-limit' });
    expect(both(ether({ type: 0x0800, vlans: [10], payload: ip }).subarray(0, 16), true)).toEqual({ error: 'truncated', reason: 'vlan' });
  });
  it('Ethernet padding after the IP datagram is ignored', () => {
    const padded = new Uint8Array(ip.length + 6);
    padded.set(ip);
    expect(ok(both(ether({ type: 0x0800, payload: padded }), true))).toMatchObject({ unit: 622, ipLength: 40 });
  });
  it('ARP has no unit; other EtherTypes are unsupported; a mismatched IP version is malformed', () => {
    expect(both(ether({ type: 0x0806, payload: arp() }), true)).toEqual({ kind: 'arp' });
    expect(both(ether({ type: 0x0806, payload: arp().subarray(0, 20) }), true)).toEqual({ error: 'truncated', reason: 'arp-header' });
    expect(both(ether({ type: 0x88cc, payload: new Uint8Array(30) }), true)).toEqual({ error: 'unsupported', reason: 'ethertype' });
    expect(both(ether({ type: 0x86dd, payload: ip }), true)).toEqual({ error: 'malformed', reason: 'ip-version' });
    expect(both(new Uint8Array(13), true)).toEqual({ error: 'truncated', reason: 'ethernet' });
  });
});

describe('cluster IPs', () => {
  it('accepts strings, IPv4 numbers, embedded-IPv4 IPv6 and the parsed form', () => {
    const c = parseClusterIps(['192.0.2.1', 0xc6336407, '::ffff:203.0.113.5', '2001:db8::1']);
    expect(Array.from(c.v4)).toEqual([0xc0000201, 0xc6336407]);
    expect(c.v6.length).toBe(32);
    expect(Array.from(c.v6.subarray(10, 16))).toEqual([0xff, 0xff, 203, 0, 113, 5]);
    expect(parseClusterIps(c)).toBe(c);
    expect(() => parseClusterIps(['192.0.2.300'])).toThrow(/clusterIps entry: expected an IPv6 address/);
    expect(() => parseClusterIps('192.0.2.1' as unknown as string[])).toThrow(TypeError);
  });
});
