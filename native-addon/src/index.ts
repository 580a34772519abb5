// @gwcluster/native-addon: the packet filter of 003 Figure 9, the packet engine, the session table and
// the capture, each in C++ behind a typed wrapper, plus the pure TypeScript reference of the filter.
// Re-exports only: each component's folder holds its C++, its N-API glue and its TypeScript face.

// common/: the one binding loader, argument checks and native errors, cluster addresses.
export { loadBinding } from './common/binding.js';
export type {
  FilterBinding,
  NativeFilter,
  NativeFilterStats,
  NativeDetailedBatch,
  NativeCapture,
  NativeCaptureBatch,
  NativeCaptureStats,
  NativeCaptureConstructor,
  NativePacketEngine,
  NativePacketEngineConstructor,
  NativeEngineConfig,
  NativeEngineEvent,
  NativeEngineStats,
  NativeVerdictCounts,
  NativeFastPath,
  NativeFastPathConstants,
} from './common/binding.js';
export { NativeCallError } from './common/errors.js';
export * from './common/addresses.js';

// filter/: the reference, the native batch calls and WorkUnitFilter with its hold queue.
export * from './filter/reference.js';
export * from './filter/hold-limits.js';
export * from './filter/filter.js';

// engine/: the NFQUEUE packet engine.
export {
  PacketEngine,
  parseMac,
  type PacketEngineOptions,
  type PacketEngineEvent,
  type PacketEngineStats,
  type ArpInterfaceOptions,
  type DistributionMethod,
  type EngineCounters,
  type ReleaseResult,
  type VerdictCounts,
} from './engine/engine.js';

// sessions/: the session table and the layout of its replicated records.
export * from './sessions/record-layout.js';
export * from './sessions/sessions.js';

// capture/: libpcap capture classified by a WorkUnitFilter.
export { Capture, type CaptureOptions, type CaptureBatch, type CaptureStats } from './capture/capture.js';

// fastpath/: the kernel fast path (tc ingress BPF program and its maps); off unless someone makes one.
export {
  FastPath,
  fastPathAvailable,
  UnitAction,
  FASTPATH_STAT_NAMES,
  type FastPathOptions,
  type FastPathAttachMode,
  type FastPathStats,
  type FastPathStatName,
  type FlowSyncResult,
  type KernelDetailedBatch,
} from './fastpath/fastpath.js';

// testing/: seeded synthetic traffic for parity tests and benchmarks.
export {
  generateBatch,
  CLUSTER_V4 as SYNTHETIC_CLUSTER_V4,
  CLUSTER_V6 as SYNTHETIC_CLUSTER_V6,
  type GenOptions,
  type GeneratedBatch,
} from './testing/synthetic-traffic.js';

// tunnel/: the WireGuard data path (libsodium ChaCha20-Poly1305, replay window, TUN device I/O).
export * from './tunnel/tunnel.js';
export type {
  NativeTunnelTransport,
  NativeTunnelDevice,
  NativeTunnelKeypair,
  NativeTunnelActivity,
  NativeTunnelEndpoint,
  NativeTunnelDeviceEvent,
  NativeTunnelDeviceStats,
} from './common/binding.js';

// notify/: the service manager's readiness protocol (sd_notify), without libsystemd.
export * from './notify/notify.js';

// liveness/: fast liveness, the data-plane heartbeat on a native thread (libsodium HMAC).
export * from './liveness/liveness.js';
export type { NativeLiveness, NativeLivenessEvent, NativeLivenessPeer, NativeLivenessStats } from './common/binding.js';
