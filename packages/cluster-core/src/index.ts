export * from './config.js';
export * from './events.js';
export * from './adaptive.js';
export * from './balance.js';
export * from './member.js';
export type { AddressesView, ClusterStatus, CoreView, DataPlaneView, MemberView } from './view.js';
export * from './sim.js';
export type { Transport } from './transport/transport.js';
export { MemoryNetwork, MemoryTransport, type Datagram, type MemoryNetworkOptions, type UnitRandom } from './transport/memory-network.js';
