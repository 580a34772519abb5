/** The NFQUEUE packet path: the native packet engine (native-addon PacketEngine) behind the PacketPath seam. */
import { PacketEngine } from '@gwcluster/native-addon';
import type { PacketPath, PacketPathFactory } from './packet-path.js';

export const nfqueuePacketPath: PacketPathFactory = (opts) => {
  const engine = PacketEngine.open({
    queueNum: opts.queueNum,
    clusterIps: [...opts.clusterIps],
    method: opts.method,
    localSlot: opts.localSlot,
    master: false,
    forwardInterface: opts.forwardInterface,
    arpInterfaces: opts.arpInterfaces.map((i) => ({ name: i.name, clusterIps: [...i.clusterIps] })),
    ...(opts.clusterMac ? { clusterMac: opts.clusterMac } : {}),
    announceRounds: opts.announcement.rounds,
    announceIntervalMs: opts.announcement.intervalMs,
    hold: { ...opts.hold },
    onEvent: (e) => {
      if (e.type === 'unit-needs-owner') opts.onUnitNeedsOwner(e.unit);
      else if (e.type === 'error') opts.onError(e.error);
    },
  });
  const path: PacketPath = {
    setRole: (r) => engine.setRole(r),
    setOwner: (u, s) => engine.setOwner(u, s),
    setSlotMac: (s, mac) => engine.setSlotMac(s, mac),
    hold: (u) => engine.hold(u),
    release: (u) => void engine.release(u),
    setArpAnswering: (on) => engine.setArpAnswering(on),
    announce: () => engine.announce(),
    counters: (o) => engine.counters(o),
    stats: () => engine.stats() as unknown as Record<string, number | bigint>,
    close: () => engine.close(),
    attachSessions: (table) => engine.attachSessions(table),
    attachFlowOffloads: (fastPaths) => engine.attachFlowOffloads(fastPaths),
  };
  return path;
};
