// Address text <-> bytes (src/common/addresses.ts, through ipaddr.js): the forms node:net accepts, and
// the cases where ipaddr.js alone would differ.
import { describe, expect, it } from 'vitest';
import { addressValue, formatIpv4, formatIpv6, parseClusterIps, parseIpv4, parseIpv6 } from '../../src/index.js';

describe('addresses', () => {
  it('parses and formats IPv4 dotted quads only', () => {
    expect(parseIpv4('192.0.2.1')).toBe(0xc0000201);
    expect(formatIpv4(0xc6336407)).toBe('198.51.100.7');
    for (const bad of ['01.2.3.4', '1.2.3', '0x7f.0.0.1', '1.2.3.256', ' 1.2.3.4']) {
      expect(() => parseIpv4(bad, 'x')).toThrow(`x: expected a dotted-quad IPv4 address, got ${JSON.stringify(bad)}`);
    }
  });

  it('reads an embedded IPv4 tail as RFC 4291 does (::a.b.c.d is not the mapped ::ffff:a.b.c.d)', () => {
    expect(Buffer.from(parseIpv6('::1.2.3.4')).toString('hex')).toBe('00000000000000000000000001020304');
    expect(Buffer.from(parseIpv6('::ffff:1.2.3.4')).toString('hex')).toBe('00000000000000000000ffff01020304');
    expect(() => parseIpv6('::ffff:01.2.3.4', 'x')).toThrow('x: expected an IPv6 address without a zone, got "::ffff:01.2.3.4"');
    expect(() => parseIpv6('fe80::1%eth0', 'x')).toThrow('x: expected an IPv6 address without a zone, got "fe80::1%eth0"');
  });

  it('formats IPv6 per RFC 5952 (first longest zero run, lower case)', () => {
    expect(formatIpv6(parseIpv6('1:0:0:2:0:0:1:1'))).toBe('1::2:0:0:1:1');
    expect(formatIpv6(parseIpv6('2001:DB8:0:0:1::'))).toBe('2001:db8:0:0:1::');
    expect(formatIpv6(parseIpv6('0:0:1::'))).toBe('0:0:1::');
    expect(formatIpv6(Uint8Array.from([0, 0, ...parseIpv6('2001:db8::1')]), 2)).toBe('2001:db8::1');
  });

  it('keeps the cluster address forms and key contributions', () => {
    const c = parseClusterIps(['192.0.2.1', 0xc6336407, '2001:db8::1']);
    expect([...c.v4]).toEqual([0xc0000201, 0xc6336407]);
    expect(c.v6.length).toBe(16);
    expect(addressValue('2001:db8::1', 'a')).toEqual({ family: 6, value: (0x20010db8 ^ 1) >>> 0 });
    expect(() => parseClusterIps(['nope'], 'clusterIps')).toThrow('clusterIps entry: expected an IPv6 address without a zone, got "nope"');
  });
});
