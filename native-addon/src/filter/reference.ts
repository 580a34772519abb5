// The filtering function (003, Figure 9 and its sample code) in pure TypeScript: the reference the
// C++ filter (filter.cc) is checked against, and what gwctl uses to answer "which unit?".
// It must stay byte-for-byte equal to filter.cc in every outcome, drop reason included.
import {
  addressValue,
  parseClusterIps,
  type ClusterAddresses,
  type ClusterIpsInput,
} from '../common/addresses.js';
import { checkOffsets } from '../common/errors.js';

export const WORK_UNITS = 1024;
/** The unit value of a packet that has none (dropped, or ARP) in batch results. */
export const NO_UNIT = 0xffff;
export const L2TP_PORT = 1701;
export const MAX_IPV6_EXT_HEADERS = 8;
export const MAX_VLAN_TAGS = 2;

/** A work unit, 0..1023. */
export type WorkUnit = number;

/** Why a packet was dropped. Index = the native `Reason` value (filter.h). */
export const DROP_REASONS = [
  'none',
  'ethernet', // truncated: fewer than 14 bytes
  'vlan', // truncated: a VLAN tag past the end
  'arp-header', // truncated: ARP shorter than 8 + 2 * (hlen + plen)
  'ip-header', // truncated: shorter than the fixed IP header or IHL * 4
  'ip-length', // truncated: IPv4 total length / 40 + IPv6 payload length > captured bytes
  'ext-header', // truncated: an IPv6 extension header past the end of the payload
  'l4-header', // truncated: TCP header (20, data offset * 4) or UDP header/length past the end
  'ip-version', // malformed: version nibble not 4/6, or not the one the EtherType promised
  'ip-ihl', // malformed: IHL < 5
  'ip-total-length', // malformed: IPv4 total length < IHL * 4
  'ext-header-limit', // malformed: more than 8 IPv6 extension headers
  'tcp-data-offset', // malformed: TCP data offset < 5
  'udp-length', // malformed: UDP length < 8
  'vlan-limit', // malformed: more than 2 VLAN tags
  'ethertype', // unsupported: not IPv4, IPv6 or ARP
] as const;
export type DropReason = Exclude<(typeof DROP_REASONS)[number], 'none'>;

/** Why a UDP packet to port 1701 was keyed as plain UDP. Index = native `L2tpFallback`. */
export const L2TP_FALLBACK_REASONS = ['none', 'truncated', 'version', 'length'] as const;
export type L2tpFallbackReason = Exclude<(typeof L2TP_FALLBACK_REASONS)[number], 'none'>;

/** Status values (low 3 bits of a code) and flag bits, as in filter.h. */
export const STATUS = { cluster: 0, forwarded: 1, arp: 2, unsupported: 3, truncated: 4, malformed: 5 } as const;
export const FLAG_FRAGMENT = 0x08;
export const FLAG_L2TP = 0x10;
export const FLAG_L2TP_FALLBACK = 0x20;

export interface PacketClassification {
  /** 'cluster': to a cluster IP (work-set filter); 'forwarded': routed through the cluster. */
  kind: 'cluster' | 'forwarded';
  unit: WorkUnit;
  /** The filter key, unsigned 32-bit. */
  key: number;
  ipVersion: 4 | 6;
  /** IPv4 protocol or IPv6 upper-layer next header (ESP 50 and no-next-header 59 included). */
  proto: number;
  fragment: boolean;
  /** IPv4 total length or 40 + IPv6 payload length: what per-unit byte counters add. */
  ipLength: number;
  /** Set when the L2TPv2 tunnel and session IDs were XORed into the key. */
  l2tp?: { tunnelId: number; sessionId: number };
  /** Set when a UDP packet to port 1701 had no usable L2TPv2 header and was keyed as plain UDP. */
  l2tpFallback?: L2tpFallbackReason;
}
export interface ArpFrame {
  kind: 'arp';
}
export interface DroppedPacket {
  error: 'truncated' | 'malformed' | 'unsupported';
  reason: DropReason;
}
export type PacketResult = PacketClassification | DroppedPacket;
export type FrameResult = PacketClassification | ArpFrame | DroppedPacket;

export interface ClassifyOptions {
  clusterIps: ClusterIpsInput;
}

/** Figure 9's "collapse" of a key into a work unit (the source leaves IP_CLUSTER_HASH out). */
export function workUnitOfKey(k: number): WorkUnit {
  k >>>= 0;
  return (k ^ (k >>> 10) ^ (k >>> 20) ^ (k >>> 30)) & 1023;
}

export interface FilterKeyFields {
  /** Source address: an IPv4 value, or the XOR of an IPv6 address's four words. */
  src: number;
  /** Destination address, in the same form. */
  dst: number;
  /** IP protocol: 6 TCP, 17 UDP, anything else "other". */
  proto: number;
  /** Source port; needed for TCP and UDP to a cluster IP. */
  sport?: number;
  /** The cluster routes this packet (destination not a cluster IP). */
  forwarding?: boolean;
  /** A fragment of a fragmented datagram. */
  fragment?: boolean;
  /** L2TPv2 header IDs, for UDP to port 1701 with a usable header. */
  l2tp?: { tunnelId: number; sessionId: number };
}

/** The key of Figure 9's filtering function, from already extracted header fields. */
export function filterKey(f: FilterKeyFields): number {
  const src = f.src >>> 0;
  const dst = f.dst >>> 0;
  if (f.forwarding || f.fragment || (f.proto !== 6 && f.proto !== 17)) return (src ^ dst) >>> 0;
  if (f.sport === undefined || !Number.isInteger(f.sport) || f.sport < 0 || f.sport > 0xffff) {
    throw new TypeError(`filterKey: sport must be a port 0..65535 for TCP/UDP to a cluster IP, got ${f.sport}`);
  }
  let k = src ^ f.sport;
  if (f.l2tp) k ^= (f.l2tp.tunnelId & 0xffff) ^ (f.l2tp.sessionId & 0xffff);
  return k >>> 0;
}

// ---- The parser. One mutable scratch record, so batch classification allocates nothing per packet.

/** The outcome of one packet in the flat form the C++ filter reports (see classifyBatchDetailed). */
export interface RawClassification {
  status: number;
  flags: number;
  ipVersion: number;
  proto: number;
  detail: number;
  unit: number;
  tunnelId: number;
  sessionId: number;
  key: number;
  ipLength: number;
}

export function newRawClassification(): RawClassification {
  return { status: 0, flags: 0, ipVersion: 0, proto: 0, detail: 0, unit: NO_UNIT, tunnelId: 0, sessionId: 0, key: 0, ipLength: 0 };
}

// Reason indexes (DROP_REASONS).
const R_ETHERNET = 1, R_VLAN = 2, R_ARP = 3, R_IP_HEADER = 4, R_IP_LENGTH = 5, R_EXT_HEADER = 6, R_L4 = 7;
const R_IP_VERSION = 8, R_IP_IHL = 9, R_IP_TOTAL = 10, R_EXT_LIMIT = 11, R_TCP_DOFF = 12, R_UDP_LEN = 13;
const R_VLAN_LIMIT = 14, R_ETHERTYPE = 15;

function reset(o: RawClassification): void {
  o.status = STATUS.truncated;
  o.flags = 0;
  o.ipVersion = 0;
  o.proto = 0;
  o.detail = 0;
  o.unit = NO_UNIT;
  o.tunnelId = 0;
  o.sessionId = 0;
  o.key = 0;
  o.ipLength = 0;
}

function drop(o: RawClassification, status: number, reason: number, version: number): void {
  reset(o);
  o.status = status;
  o.detail = reason;
  o.ipVersion = version;
}

const be16 = (p: Uint8Array, i: number): number => (p[i]! << 8) | p[i + 1]!;
const be32 = (p: Uint8Array, i: number): number => ((p[i]! << 24) | (p[i + 1]! << 16) | (p[i + 2]! << 8) | p[i + 3]!) >>> 0;

function hasV4(c: ClusterAddresses, a: number): boolean {
  const v4 = c.v4;
  for (let i = 0; i < v4.length; i++) if (v4[i] === a) return true;
  return false;
}

function hasV6(c: ClusterAddresses, p: Uint8Array, at: number): boolean {
  const v6 = c.v6;
  outer: for (let j = 0; j < v6.length; j += 16) {
    for (let b = 0; b < 16; b++) if (v6[j + b] !== p[at + b]) continue outer;
    return true;
  }
  return false;
}

/** L2TPv2 (RFC 2661 section 3.1) in p[q, q + m): 0 and the IDs set on `o`, or a fallback reason index. */
function parseL2tp(p: Uint8Array, q: number, m: number, o: RawClassification): number {
  if (m < 2) return 1;
  const flags = be16(p, q);
  if ((flags & 0x000f) !== 2) return 2;
  const l = (flags & 0x4000) !== 0, s = (flags & 0x0800) !== 0, off = (flags & 0x0200) !== 0;
  const hdr = 6 + (l ? 2 : 0) + (s ? 4 : 0) + (off ? 2 : 0);
  if (m < hdr) return 1;
  let at = 2;
  let msgLen = m;
  if (l) {
    msgLen = be16(p, q + 2);
    if (msgLen < hdr || msgLen > m) return 3;
    at = 4;
  }
  if (off && hdr + be16(p, q + hdr - 2) > msgLen) return 1;
  o.tunnelId = be16(p, q + at);
  o.sessionId = be16(p, q + at + 2);
  return 0;
}

// Mirrors finish() in filter.cc. `s` is the IP header's offset, l4/end absolute offsets in p.
function finish(o: RawClassification, p: Uint8Array, s: number, l4: number, end: number, src: number, dst: number, toCluster: boolean): void {
  o.ipLength = end - s;
  if (!toCluster || (o.flags & FLAG_FRAGMENT) !== 0) {
    o.status = toCluster ? STATUS.cluster : STATUS.forwarded;
    o.key = (src ^ dst) >>> 0;
    o.unit = workUnitOfKey(o.key);
    return;
  }
  o.status = STATUS.cluster;
  const l4len = end - l4;
  const v = o.ipVersion;
  if (o.proto === 6) {
    if (l4len < 20) return drop(o, STATUS.truncated, R_L4, v);
    const doff = p[l4 + 12]! >> 4;
    if (doff < 5) return drop(o, STATUS.malformed, R_TCP_DOFF, v);
    if (doff * 4 > l4len) return drop(o, STATUS.truncated, R_L4, v);
    o.key = (src ^ be16(p, l4)) >>> 0;
  } else if (o.proto === 17) {
    if (l4len < 8) return drop(o, STATUS.truncated, R_L4, v);
    const ulen = be16(p, l4 + 4);
    if (ulen < 8) return drop(o, STATUS.malformed, R_UDP_LEN, v);
    if (ulen > l4len) return drop(o, STATUS.truncated, R_L4, v);
    const sport = be16(p, l4);
    o.key = (src ^ sport) >>> 0;
    if (be16(p, l4 + 2) === L2TP_PORT) {
      const fb = parseL2tp(p, l4 + 8, ulen - 8, o);
      if (fb === 0) {
        o.flags |= FLAG_L2TP;
        o.key = (src ^ sport ^ o.tunnelId ^ o.sessionId) >>> 0;
      } else {
        o.flags |= FLAG_L2TP_FALLBACK;
        o.detail = fb;
      }
    }
  } else {
    o.key = (src ^ dst) >>> 0;
  }
  o.unit = workUnitOfKey(o.key);
}

function classifyIpv4At(o: RawClassification, p: Uint8Array, s: number, len: number, c: ClusterAddresses): void {
  if (len < 20) return drop(o, STATUS.truncated, R_IP_HEADER, 4);
  const hl = (p[s]! & 0x0f) * 4;
  if (hl < 20) return drop(o, STATUS.malformed, R_IP_IHL, 4);
  if (hl > len) return drop(o, STATUS.truncated, R_IP_HEADER, 4);
  const tot = be16(p, s + 2);
  if (tot < hl) return drop(o, STATUS.malformed, R_IP_TOTAL, 4);
  if (tot > len) return drop(o, STATUS.truncated, R_IP_LENGTH, 4);
  reset(o);
  o.ipVersion = 4;
  o.proto = p[s + 9]!;
  if ((be16(p, s + 6) & 0x3fff) !== 0) o.flags |= FLAG_FRAGMENT;
  const dst = be32(p, s + 16);
  finish(o, p, s, s + hl, s + tot, be32(p, s + 12), dst, hasV4(c, dst));
}

function fold(p: Uint8Array, at: number): number {
  return (be32(p, at) ^ be32(p, at + 4) ^ be32(p, at + 8) ^ be32(p, at + 12)) >>> 0;
}

function classifyIpv6At(o: RawClassification, p: Uint8Array, s: number, len: number, c: ClusterAddresses): void {
  if (len < 40) return drop(o, STATUS.truncated, R_IP_HEADER, 6);
  const end = s + 40 + be16(p, s + 4);
  if (end > s + len) return drop(o, STATUS.truncated, R_IP_LENGTH, 6);
  reset(o);
  o.ipVersion = 6;
  let nh = p[s + 6]!;
  let off = s + 40;
  let walked = 0;
  for (;;) {
    let hlen: number;
    if (nh === 0 || nh === 43 || nh === 60) {
      if (walked === MAX_IPV6_EXT_HEADERS) return drop(o, STATUS.malformed, R_EXT_LIMIT, 6);
      if (off + 2 > end) return drop(o, STATUS.truncated, R_EXT_HEADER, 6);
      hlen = (p[off + 1]! + 1) * 8;
    } else if (nh === 51) {
      if (walked === MAX_IPV6_EXT_HEADERS) return drop(o, STATUS.malformed, R_EXT_LIMIT, 6);
      if (off + 2 > end) return drop(o, STATUS.truncated, R_EXT_HEADER, 6);
      hlen = (p[off + 1]! + 2) * 4;
    } else if (nh === 44) {
      if (walked === MAX_IPV6_EXT_HEADERS) return drop(o, STATUS.malformed, R_EXT_LIMIT, 6);
      if (off + 8 > end) return drop(o, STATUS.truncated, R_EXT_HEADER, 6);
      o.flags |= FLAG_FRAGMENT;
      nh = p[off]!;
      off += 8;
      break;
    } else {
      break;
    }
    if (off + hlen > end) return drop(o, STATUS.truncated, R_EXT_HEADER, 6);
    nh = p[off]!;
    off += hlen;
    walked++;
  }
  o.proto = nh;
  finish(o, p, s, off, end, fold(p, s + 8), fold(p, s + 24), hasV6(c, p, s + 24));
}

function classifyIpVersionAt(o: RawClassification, p: Uint8Array, s: number, len: number, c: ClusterAddresses, expected: number): void {
  if (len < 1) return drop(o, STATUS.truncated, R_IP_HEADER, expected);
  const version = p[s]! >> 4;
  if (expected !== 0 && version !== expected) return drop(o, STATUS.malformed, R_IP_VERSION, expected);
  if (version === 4) return classifyIpv4At(o, p, s, len, c);
  if (version === 6) return classifyIpv6At(o, p, s, len, c);
  drop(o, STATUS.malformed, R_IP_VERSION, 0);
}

/** Classifies the raw IP packet p[start, start + len) into `o` (no allocation). */
export function classifyIpInto(o: RawClassification, p: Uint8Array, start: number, len: number, c: ClusterAddresses): void {
  classifyIpVersionAt(o, p, start, len, c, 0);
}

/** Classifies the Ethernet II frame p[start, start + len) into `o` (no allocation). */
export function classifyFrameInto(o: RawClassification, p: Uint8Array, start: number, len: number, c: ClusterAddresses): void {
  if (len < 14) return drop(o, STATUS.truncated, R_ETHERNET, 0);
  let type = be16(p, start + 12);
  let off = 14;
  let tags = 0;
  while (type === 0x8100 || type === 0x88a8) {
    if (tags === MAX_VLAN_TAGS) return drop(o, STATUS.malformed, R_VLAN_LIMIT, 0);
    if (off + 4 > len) return drop(o, STATUS.truncated, R_VLAN, 0);
    type = be16(p, start + off + 2);
    off += 4;
    tags++;
  }
  const l3 = start + off;
  const l3len = len - off;
  if (type === 0x0800) return classifyIpVersionAt(o, p, l3, l3len, c, 4);
  if (type === 0x86dd) return classifyIpVersionAt(o, p, l3, l3len, c, 6);
  if (type === 0x0806) {
    if (l3len < 8) return drop(o, STATUS.truncated, R_ARP, 0);
    if (8 + 2 * (p[l3 + 4]! + p[l3 + 5]!) > l3len) return drop(o, STATUS.truncated, R_ARP, 0);
    reset(o);
    o.status = STATUS.arp;
    return;
  }
  drop(o, STATUS.unsupported, R_ETHERTYPE, 0);
}

/** The code byte the C++ filter reports: status | flags. */
export function codeOf(o: RawClassification): number {
  return o.status | o.flags;
}

function toResult(o: RawClassification): FrameResult {
  if (o.status === STATUS.arp) return { kind: 'arp' };
  if (o.status >= STATUS.unsupported) {
    const error = o.status === STATUS.unsupported ? 'unsupported' : o.status === STATUS.truncated ? 'truncated' : 'malformed';
    return { error, reason: DROP_REASONS[o.detail] as DropReason };
  }
  const r: PacketClassification = {
    kind: o.status === STATUS.cluster ? 'cluster' : 'forwarded',
    unit: o.unit,
    key: o.key,
    ipVersion: o.ipVersion as 4 | 6,
    proto: o.proto,
    fragment: (o.flags & FLAG_FRAGMENT) !== 0,
    ipLength: o.ipLength,
  };
  if (o.flags & FLAG_L2TP) r.l2tp = { tunnelId: o.tunnelId, sessionId: o.sessionId };
  if (o.flags & FLAG_L2TP_FALLBACK) r.l2tpFallback = L2TP_FALLBACK_REASONS[o.detail] as L2tpFallbackReason;
  return r;
}

function checkBytes(x: unknown, call: string, name: string): asserts x is Uint8Array {
  if (!(x instanceof Uint8Array)) throw new TypeError(`${call}: ${name} must be a Buffer or Uint8Array, got ${typeof x}`);
}

/** Classifies one raw IP packet (IPv4 or IPv6, starting at the IP header). */
export function classifyPacket(ipPacket: Uint8Array, opts: ClassifyOptions): PacketResult {
  checkBytes(ipPacket, 'classifyPacket', 'ipPacket');
  const o = newRawClassification();
  classifyIpInto(o, ipPacket, 0, ipPacket.length, parseClusterIps(opts?.clusterIps, 'classifyPacket: opts.clusterIps'));
  return toResult(o) as PacketResult;
}

/** Classifies one Ethernet II frame (up to two VLAN tags; IPv4, IPv6 or ARP). */
export function classifyFrame(frame: Uint8Array, opts: ClassifyOptions): FrameResult {
  checkBytes(frame, 'classifyFrame', 'frame');
  const o = newRawClassification();
  classifyFrameInto(o, frame, 0, frame.length, parseClusterIps(opts?.clusterIps, 'classifyFrame: opts.clusterIps'));
  return toResult(o);
}

/**
 * The reference twin of the native classifyBatch: packet i is packets[offsets[i], offsets[i + 1]);
 * returns its unit, or NO_UNIT (0xFFFF) for a dropped packet or ARP.
 */
export function classifyBatchReference(packets: Uint8Array, offsets: Uint32Array, clusterIps: ClusterIpsInput, opts: { frames?: boolean } = {}): Uint16Array {
  checkOffsets(packets, offsets, 'classifyBatchReference');
  const c = parseClusterIps(clusterIps, 'classifyBatchReference: clusterIps');
  const n = Math.max(0, offsets.length - 1);
  const units = new Uint16Array(n);
  const o = newRawClassification();
  const classify = opts.frames ? classifyFrameInto : classifyIpInto;
  for (let i = 0; i < n; i++) {
    const s = offsets[i]!;
    classify(o, packets, s, offsets[i + 1]! - s, c);
    units[i] = o.unit;
  }
  return units;
}

// ---- gwctl workunit: the unit of a flow described by its header fields.

export type FlowProtocol = 'tcp' | 'udp' | 'icmp' | 'l2tp' | number;

export interface FlowSpec {
  proto: FlowProtocol;
  /** Source address: IPv4/IPv6 text, or an IPv4 number. */
  src: string | number;
  /** Destination address; needed for ICMP/other protocols and forwarded flows. */
  dst?: string | number;
  sport?: number;
  dport?: number;
  /** The cluster routes this flow (its destination is not a cluster IP). */
  forwarding?: boolean;
  /** The packet is a fragment of a fragmented datagram. */
  fragment?: boolean;
  /** L2TPv2 tunnel and session IDs (proto 'l2tp', or UDP to port 1701). */
  tunnelId?: number;
  sessionId?: number;
}

export interface FlowClassification {
  unit: WorkUnit;
  key: number;
  /** Which rule of the filtering function produced the key. */
  rule: 'src^sport' | 'src^sport^tunnelId^sessionId' | 'src^dst';
}

function port(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new TypeError(`classifyFlow: ${name} must be an integer 0..65535, got ${String(v)}`);
  }
  return v;
}

/** The unit of a flow, from its addresses, ports and protocol (e.g. for `gwctl workunit`). */
export function classifyFlow(spec: FlowSpec): FlowClassification {
  if (typeof spec !== 'object' || spec === null) throw new TypeError('classifyFlow: spec must be an object { proto, src, ... }');
  const protoNames: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, l2tp: 17 };
  let proto: number;
  if (typeof spec.proto === 'string' && spec.proto in protoNames) proto = protoNames[spec.proto]!;
  else if (typeof spec.proto === 'number' && Number.isInteger(spec.proto) && spec.proto >= 0 && spec.proto <= 255) proto = spec.proto;
  else throw new TypeError(`classifyFlow: proto must be 'tcp', 'udp', 'icmp', 'l2tp' or an IP protocol number 0..255, got ${String(spec.proto)}`);
  const src = addressValue(spec.src, 'classifyFlow: src');
  const dst = spec.dst === undefined ? undefined : addressValue(spec.dst, 'classifyFlow: dst');
  if (dst && dst.family !== src.family) throw new TypeError('classifyFlow: src and dst must be of the same address family');
  const bySrcDst = spec.forwarding === true || spec.fragment === true || (proto !== 6 && proto !== 17);
  if (bySrcDst) {
    if (!dst) throw new TypeError('classifyFlow: dst is needed for forwarded flows, fragments and protocols other than TCP/UDP');
    const key = (src.value ^ dst.value) >>> 0;
    return { unit: workUnitOfKey(key), key, rule: 'src^dst' };
  }
  const sport = port(spec.sport, 'sport');
  const l2tp = spec.proto === 'l2tp' || (proto === 17 && spec.dport === L2TP_PORT && spec.tunnelId !== undefined && spec.sessionId !== undefined);
  if (l2tp) {
    const tunnelId = port(spec.tunnelId, 'tunnelId');
    const sessionId = port(spec.sessionId, 'sessionId');
    const key = (src.value ^ sport ^ tunnelId ^ sessionId) >>> 0;
    return { unit: workUnitOfKey(key), key, rule: 'src^sport^tunnelId^sessionId' };
  }
  const key = (src.value ^ sport) >>> 0;
  return { unit: workUnitOfKey(key), key, rule: 'src^sport' };
}
