/**
 * `gwctl workunit`: which work unit a flow or a packet belongs to. The filtering function itself is the
 * native addon's TypeScript reference (classifyFlow / classifyPacket), the same code the C++ filter is
 * checked against, so gwctl and the data plane cannot disagree.
 */
import { classifyFlow, classifyPacket, type DropReason, type FlowSpec } from '@gwcluster/native-addon';
import { EXIT, GwctlError } from './client.js';

/** What each of the filter's drop reasons means, for the operator. */
const DROP_REASON_TEXT: Record<DropReason, string> = {
  ethernet: 'fewer than 14 bytes of Ethernet header',
  vlan: 'a VLAN tag runs past the end',
  'arp-header': 'the ARP header runs past the end',
  'ip-header': 'shorter than its IP header (20 bytes for IPv4, or IHL * 4; 40 for IPv6)',
  'ip-length': 'shorter than the length its IP header announces',
  'ext-header': 'an IPv6 extension header runs past the end',
  'l4-header': 'its TCP or UDP header runs past the end',
  'ip-version': 'the version nibble is neither 4 nor 6',
  'ip-ihl': 'IPv4 header length (IHL) below 5',
  'ip-total-length': 'IPv4 total length smaller than its header',
  'ext-header-limit': 'more than 8 IPv6 extension headers',
  'tcp-data-offset': 'TCP data offset below 5',
  'udp-length': 'UDP length below 8',
  'vlan-limit': 'more than 2 VLAN tags',
  ethertype: 'not IPv4, IPv6 or ARP',
};

export interface WorkUnitAnswer {
  readonly unit: number;
  /** The filter key, unsigned 32-bit, hex. */
  readonly key: string;
  readonly rule: string;
  readonly kind?: 'cluster' | 'forwarded';
}

export function workUnitOfFlow(spec: FlowSpec): WorkUnitAnswer {
  try {
    const r = classifyFlow(spec);
    return { unit: r.unit, key: `0x${r.key.toString(16).padStart(8, '0')}`, rule: r.rule };
  } catch (e) {
    throw new GwctlError(EXIT.badArguments, (e as Error).message.replace(/^classifyFlow: /, ''));
  }
}

export function workUnitOfPacket(hex: string, clusterIps: readonly string[]): WorkUnitAnswer {
  const clean = hex.replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw new GwctlError(EXIT.badArguments, '--packet must be the IP packet as hex bytes (e.g. 4500003c...), optionally separated by spaces or colons');
  let r;
  try {
    r = classifyPacket(Buffer.from(clean, 'hex'), { clusterIps: [...clusterIps] });
  } catch (e) {
    throw new GwctlError(EXIT.badArguments, `--packet: ${(e as Error).message}`);
  }
  // A packet the filter cannot read is the argument's fault (exit 2), not the daemon's: none is asked.
  if ('error' in r) throw new GwctlError(EXIT.badArguments, `--packet is ${r.error === 'unsupported' ? 'not' : r.error === 'truncated' ? 'a truncated' : 'a malformed'} ${r.error === 'unsupported' ? 'an IPv4 or IPv6 packet' : 'IP packet'}: ${DROP_REASON_TEXT[r.reason]} (the data plane drops it: ${r.error}/${r.reason}); give the whole IP packet from its first byte`);
  const rule = r.kind === 'forwarded' || r.fragment || (r.proto !== 6 && r.proto !== 17) ? 'src^dst' : r.l2tp ? 'src^sport^tunnelId^sessionId' : 'src^sport';
  return { unit: r.unit, key: `0x${r.key.toString(16).padStart(8, '0')}`, rule, kind: r.kind };
}
