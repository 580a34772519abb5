// Packet builders for the tests: explicit header fields in, bytes out. No checksums (the filter
// does not read them).
import { parseIpv4, parseIpv6 } from '../src/common/addresses.js';

export function ipv4(o: {
  src: string;
  dst: string;
  proto: number;
  payload?: Uint8Array;
  /** MF flag */
  moreFragments?: boolean;
  /** fragment offset in 8-byte units */
  fragOffset?: number;
  /** IHL in 4-byte words (default 5); options are zero bytes */
  ihl?: number;
  totalLength?: number;
}): Uint8Array {
  const ihl = o.ihl ?? 5;
  const payload = o.payload ?? new Uint8Array(0);
  const p = new Uint8Array(ihl * 4 + payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x40 | ihl;
  dv.setUint16(2, o.totalLength ?? p.length);
  dv.setUint16(4, 0x1234);
  dv.setUint16(6, (o.moreFragments ? 0x2000 : 0) | (o.fragOffset ?? 0));
  p[8] = 64;
  p[9] = o.proto;
  dv.setUint32(12, parseIpv4(o.src));
  dv.setUint32(16, parseIpv4(o.dst));
  p.set(payload, ihl * 4);
  return p;
}

export interface Ext {
  type: number;
  /** total length in bytes (multiple of 8 for 0/43/60; multiple of 4 for AH; 8 for fragment) */
  length?: number;
  fragOffset?: number;
  more?: boolean;
}

export function ipv6(o: { src: string; dst: string; nextHeader: number; ext?: Ext[]; payload?: Uint8Array; payloadLength?: number }): Uint8Array {
  const ext = o.ext ?? [];
  const payload = o.payload ?? new Uint8Array(0);
  const extBytes = ext.map((e) => (e.type === 44 ? 8 : (e.length ?? 8)));
  const extTotal = extBytes.reduce((a, b) => a + b, 0);
  const p = new Uint8Array(40 + extTotal + payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x60;
  dv.setUint16(4, o.payloadLength ?? extTotal + payload.length);
  p[6] = ext.length > 0 ? ext[0]!.type : o.nextHeader;
  p[7] = 64;
  p.set(parseIpv6(o.src), 8);
  p.set(parseIpv6(o.dst), 24);
  let off = 40;
  ext.forEach((e, i) => {
    const next = i + 1 < ext.length ? ext[i + 1]!.type : o.nextHeader;
    const len = extBytes[i]!;
    p[off] = next;
    if (e.type === 44) {
      dv.setUint16(off + 2, ((e.fragOffset ?? 0) << 3) | (e.more ? 1 : 0));
      dv.setUint32(off + 4, 0xabcd);
    } else if (e.type === 51) {
      p[off + 1] = len / 4 - 2;
    } else {
      p[off + 1] = len / 8 - 1;
    }
    off += len;
  });
  p.set(payload, off);
  return p;
}

export function tcp(o: { sport: number; dport: number; dataOffset?: number; payload?: Uint8Array }): Uint8Array {
  const doff = o.dataOffset ?? 5;
  const payload = o.payload ?? new Uint8Array(0);
  const p = new Uint8Array(Math.max(20, doff * 4) + payload.length);
  const dv = new DataView(p.buffer);
  dv.setUint16(0, o.sport);
  dv.setUint16(2, o.dport);
  dv.setUint32(4, 1000);
  p[12] = doff << 4;
  p[13] = 0x02; // SYN
  dv.setUint16(14, 65535);
  p.set(payload, Math.max(20, doff * 4));
  return p;
}

export function udp(o: { sport: number; dport: number; payload?: Uint8Array; length?: number }): Uint8Array {
  const payload = o.payload ?? new Uint8Array(0);
  const p = new Uint8Array(8 + payload.length);
  const dv = new DataView(p.buffer);
  dv.setUint16(0, o.sport);
  dv.setUint16(2, o.dport);
  dv.setUint16(4, o.length ?? p.length);
  p.set(payload, 8);
  return p;
}

/** An L2TPv2 data or control message header (RFC 2661 section 3.1) plus payload. */
export function l2tp(o: {
  tunnelId: number;
  sessionId: number;
  lengthBit?: boolean;
  sequence?: boolean;
  offset?: number;
  control?: boolean;
  version?: number;
  lengthField?: number;
  payload?: Uint8Array;
}): Uint8Array {
  const payload = o.payload ?? new Uint8Array(0);
  const hdr = 6 + (o.lengthBit ? 2 : 0) + (o.sequence ? 4 : 0) + (o.offset !== undefined ? 2 : 0);
  const pad = o.offset ?? 0;
  const p = new Uint8Array(hdr + pad + payload.length);
  const dv = new DataView(p.buffer);
  const flags =
    (o.control ? 0x8000 : 0) | (o.lengthBit ? 0x4000 : 0) | (o.sequence ? 0x0800 : 0) | (o.offset !== undefined ? 0x0200 : 0) | (o.version ?? 2);
  dv.setUint16(0, flags);
  let at = 2;
  if (o.lengthBit) {
    dv.setUint16(2, o.lengthField ?? p.length);
    at = 4;
  }
  dv.setUint16(at, o.tunnelId);
  dv.setUint16(at + 2, o.sessionId);
  at += 4;
  if (o.sequence) {
    dv.setUint16(at, 7);
    dv.setUint16(at + 2, 9);
    at += 4;
  }
  if (o.offset !== undefined) {
    dv.setUint16(at, o.offset);
    at += 2;
  }
  p.set(payload, hdr + pad);
  return p;
}

export function ether(o: { type: number; vlans?: number[]; payload: Uint8Array; vlanTpid?: number[] }): Uint8Array {
  const vlans = o.vlans ?? [];
  const p = new Uint8Array(14 + 4 * vlans.length + o.payload.length);
  const dv = new DataView(p.buffer);
  p.set([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2], 0);
  let at = 12;
  vlans.forEach((vid, i) => {
    dv.setUint16(at, o.vlanTpid?.[i] ?? (i === 0 && vlans.length === 2 ? 0x88a8 : 0x8100));
    dv.setUint16(at + 2, vid);
    at += 4;
  });
  dv.setUint16(at, o.type);
  p.set(o.payload, at + 2);
  return p;
}

export function arp(): Uint8Array {
  const p = new Uint8Array(28);
  p.set([0, 1, 0x08, 0x00, 6, 4, 0, 1]);
  return p;
}

export function bytes(...xs: number[]): Uint8Array {
  return Uint8Array.from(xs);
}

/** A TCP segment with flags and SYN options (MSS, SACK permitted, timestamps, window scale). */
export interface Seg {
  sport: number;
  dport: number;
  seq: number;
  ack?: number;
  flags: number;
  win?: number;
  payload?: number;
  mss?: number;
  wscale?: number;
  sack?: boolean;
  ts?: [number, number];
}

export function tcpSeg(o: Seg): Uint8Array {
  const opts: number[] = [];
  if (o.mss !== undefined) opts.push(2, 4, o.mss >> 8, o.mss & 0xff);
  if (o.sack) opts.push(4, 2);
  if (o.ts) {
    const [v, e] = o.ts;
    opts.push(8, 10, (v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff, (e >>> 24) & 0xff, (e >>> 16) & 0xff, (e >>> 8) & 0xff, e & 0xff);
  }
  if (o.wscale !== undefined) opts.push(1, 3, 3, o.wscale);
  while (opts.length % 4) opts.push(0);
  const hl = 20 + opts.length;
  const p = new Uint8Array(hl + (o.payload ?? 0));
  const dv = new DataView(p.buffer);
  dv.setUint16(0, o.sport);
  dv.setUint16(2, o.dport);
  dv.setUint32(4, o.seq >>> 0);
  dv.setUint32(8, (o.ack ?? 0) >>> 0);
  p[12] = (hl / 4) << 4;
  p[13] = o.flags;
  dv.setUint16(14, o.win ?? 65535);
  p.set(opts, 20);
  p.fill(0x61, hl);
  return p;
}
