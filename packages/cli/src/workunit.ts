/**
 * `gwctl workunit`: which work unit a flow or a packet belongs to. The filtering function itself is the
 * native addon's TypeScript reference (classifyFlow / classifyPacket), the same code the C++ filter is
 * checked against, so gwctl and the data plane cannot disagree.
 */
import { classifyFlow, classifyPacket, type FlowSpec } from '@gwcluster/native-addon';
import { EXIT, GwctlError } from './client.js';

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
  if ('error' in r) throw new GwctlError(EXIT.refused, `the packet is dropped by the filter (${r.error}: ${r.reason}); it belongs to no unit`);
  const rule = r.kind === 'forwarded' || r.fragment || (r.proto !== 6 && r.proto !== 17) ? 'src^dst' : r.l2tp ? 'src^sport^tunnelId^sessionId' : 'src^sport';
  return { unit: r.unit, key: `0x${r.key.toString(16).padStart(8, '0')}`, rule, kind: r.kind };
}
