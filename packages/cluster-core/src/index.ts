export * from './config.js';
export * from './events.js';
export * from './adaptive.js';
export * from './balance.js';
export * from './ip.js';
export * from './member.js';
export type { ClusterStatus, CoreView, DataPlaneView, MemberView } from './view.js';
export * from './sim.js';
