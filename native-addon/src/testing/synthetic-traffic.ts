// Synthetic traffic for the parity tests and the benchmark: a seeded generator of plausible and
// broken packets (IPv4/IPv6, extension headers, TCP/UDP/ICMP/L2TP/GRE/ESP/SCTP, fragments, VLAN tags,
// ARP, truncations, byte mutations), written straight into one batch buffer. Same seed, same batch.
// Destinations are mostly the TEST-NET cluster IPs below.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { skipN } from 'pure-rand/utils/skipN';
import { parseIpv4, parseIpv6 } from '../common/addresses.js';

/**
 * The generator's random source: xoroshiro128+ from `seed`. Its first outputs after seeding are close
 * to 1 for small seeds, so the first 32 are discarded. `float()` is in [0, 1); `int(n)` in 0..n-1, n >= 1.
 */
function randomSource(seed: number): { float: () => number; int: (n: number) => number } {
  const rng = xoroshiro128plus(seed);
  skipN(rng, 32);
  return { float: () => uniformFloat64(rng), int: (n) => uniformInt(rng, 0, n - 1) };
}

export const CLUSTER_V4 = ['192.0.2.1', '198.51.100.7'];
export const CLUSTER_V6 = ['2001:db8::1', '2001:db8:0:1::80'];
const V4_WORDS = CLUSTER_V4.map((a) => parseIpv4(a));
const V6_BYTES = CLUSTER_V6.map((a) => parseIpv6(a));

export interface GeneratedBatch {
  packets: Buffer;
  offsets: Uint32Array;
  count: number;
}

export interface GenOptions {
  /** Ethernet II frames instead of raw IP packets */
  frames: boolean;
  /** probability that a packet is cut short at a random length */
  truncate: number;
  /** probability that 1..4 random bytes are overwritten */
  mutate: number;
}

/** Generates `count` packets (raw IP, or Ethernet frames when opts.frames) from `seed`. */
export function generateBatch(seed: number, count: number, opts: GenOptions): GeneratedBatch {
  const { float: rnd, int } = randomSource(seed);
  const chance = (p: number): boolean => rnd() < p;
  const buf = Buffer.alloc(count * 400 + 1024); // the largest packet written is under 400 bytes
  const offsets = new Uint32Array(count + 1);
  let at = 0;
  const u8 = (v: number): void => {
    buf[at++] = v & 0xff;
  };
  const u16 = (v: number): void => {
    buf[at++] = (v >>> 8) & 0xff;
    buf[at++] = v & 0xff;
  };
  const u32 = (v: number): void => {
    u16(v >>> 16);
    u16(v & 0xffff);
  };
  const put16 = (pos: number, v: number): void => {
    buf[pos] = (v >>> 8) & 0xff;
    buf[pos + 1] = v & 0xff;
  };
  const randomBytes = (n: number): void => {
    for (let i = 0; i < n; i++) u8(int(256));
  };
  // Interesting ports and protocols come up often; anything else sometimes.
  const port = (): number => (chance(0.3) ? [1701, 53, 443, 80, 0, 65535][int(6)]! : int(65536));

  // Writes a transport header + payload for `proto` at `at`; returns nothing (at advances).
  const transport = (proto: number): void => {
    if (proto === 6) {
      u16(port());
      u16(port());
      u32(int(2 ** 32));
      u32(int(2 ** 32));
      const doff = chance(0.8) ? 5 + int(3) : int(16);
      u8(doff << 4);
      u8(0x12);
      u16(65535);
      u32(0);
      for (let i = 20; i < doff * 4; i++) u8(1);
      randomBytes(int(24));
    } else if (proto === 17) {
      const start = at;
      const sport = port();
      const dport = chance(0.35) ? 1701 : port();
      u16(sport);
      u16(dport);
      u16(0);
      u16(0);
      if (dport === 1701 && chance(0.85)) {
        const l = chance(0.5), s = chance(0.3), o = chance(0.2);
        const version = chance(0.9) ? 2 : int(16);
        u16((chance(0.5) ? 0x8000 : 0) | (l ? 0x4000 : 0) | (s ? 0x0800 : 0) | (o ? 0x0200 : 0) | version);
        const lenPos = at;
        if (l) u16(0);
        u16(int(65536));
        u16(chance(0.5) ? int(16) : int(65536));
        if (s) u32(int(2 ** 32));
        const pad = int(6);
        if (o) u16(chance(0.85) ? pad : int(65536));
        if (o) randomBytes(pad);
        randomBytes(int(12));
        if (l) put16(lenPos, chance(0.85) ? at - (start + 8) : int(200));
      } else {
        randomBytes(int(32));
      }
      put16(start + 4, chance(0.9) ? at - start : int(120));
    } else {
      randomBytes(int(40));
    }
  };
  const protocol = (): number => [6, 6, 17, 17, 17, 1, 58, 47, 50, 132][int(10)]!;

  const writeIpv4 = (): void => {
    const start = at;
    const ihl = chance(0.85) ? 5 : 5 + int(11);
    const proto = protocol();
    u8(0x40 | ihl);
    u8(0);
    u16(0); // total length, patched below
    u16(int(65536));
    const frag = chance(0.15);
    u16(frag ? (chance(0.5) ? 0x2000 : 0) | (chance(0.6) ? 1 + int(8191) : 0) : chance(0.3) ? 0x4000 : 0);
    u8(64);
    u8(proto);
    u16(0);
    u32(chance(0.5) ? 0xc6336400 + int(256) : int(2 ** 32));
    u32(chance(0.7) ? V4_WORDS[int(2)]! : int(2 ** 32));
    for (let i = 20; i < ihl * 4; i++) u8(1);
    transport(proto);
    put16(start + 2, chance(0.92) ? at - start : int(200));
  };

  const writeIpv6 = (): void => {
    const start = at;
    u32(0x60000000 | int(1 << 20));
    u16(0); // payload length, patched below
    const nhPos = at;
    u8(0);
    u8(64);
    for (let i = 0; i < 16; i++) u8(i < 4 ? [0x20, 0x01, 0x0d, 0xb8][i]! : chance(0.7) ? 0 : int(256));
    const dst = chance(0.7) ? V6_BYTES[int(2)]! : null;
    for (let i = 0; i < 16; i++) u8(dst ? dst[i]! : int(256));
    // extension headers: a chain of 0..3 (sometimes up to 10) headers
    const nExt = chance(0.6) ? 0 : chance(0.9) ? 1 + int(3) : 4 + int(7);
    let prevNext = nhPos;
    for (let e = 0; e < nExt; e++) {
      const type = [0, 43, 60, 51, 44, 44][int(6)]!;
      buf[prevNext] = type;
      prevNext = at;
      u8(0);
      if (type === 44) {
        u8(0);
        u16(chance(0.5) ? 0 : (int(8191) << 3) | int(2));
        u32(int(2 ** 32));
      } else if (type === 51) {
        const units = int(4); // (units + 2) * 4 bytes
        u8(units);
        for (let i = 2; i < (units + 2) * 4; i++) u8(0);
      } else {
        const units = int(3); // (units + 1) * 8 bytes
        u8(units);
        for (let i = 2; i < (units + 1) * 8; i++) u8(1);
      }
    }
    const proto = chance(0.05) ? 59 : protocol();
    buf[prevNext] = proto;
    transport(proto);
    put16(start + 4, chance(0.92) ? at - start - 40 : int(200));
  };

  for (let i = 0; i < count; i++) {
    const start = at;
    const v6 = chance(0.4);
    if (opts.frames) {
      for (let j = 0; j < 12; j++) u8(j);
      const tags = chance(0.7) ? 0 : chance(0.9) ? 1 + int(2) : 3;
      for (let t = 0; t < tags; t++) {
        u16(chance(0.5) ? 0x8100 : 0x88a8);
        u16(int(4096));
      }
      const r = rnd();
      if (r < 0.06) {
        u16(0x0806);
        u16(1); u16(0x0800); u8(6); u8(4); u16(1);
        randomBytes(20);
        offsets[i + 1] = at;
        continue;
      } else if (r < 0.09) {
        u16([0x88cc, 0x8847, 0x0842][int(3)]!);
        randomBytes(int(40));
        offsets[i + 1] = at;
        continue;
      }
      u16(chance(0.97) ? (v6 ? 0x86dd : 0x0800) : v6 ? 0x0800 : 0x86dd);
    }
    if (chance(0.01)) randomBytes(int(80));
    else if (v6) writeIpv6();
    else writeIpv4();
    if (opts.frames && chance(0.2)) for (let j = int(20); j > 0; j--) u8(0); // Ethernet padding
    let end = at;
    if (chance(opts.mutate)) {
      const n = 1 + int(4);
      for (let j = 0; j < n; j++) {
        const span = Math.min(end - start, chance(0.8) ? 80 : end - start);
        if (span > 0) buf[start + int(span)] = int(256);
      }
    }
    if (chance(opts.truncate)) end = start + int(end - start + 1);
    at = end;
    offsets[i + 1] = at;
  }
  return { packets: buf.subarray(0, at), offsets, count };
}
