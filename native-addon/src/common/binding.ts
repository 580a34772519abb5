// The one module that loads the compiled addon (build/Release/gwcluster_filter.node). Everything else
// sees it through the FilterBinding interface, so tests can pass a fake binding instead.
import { createRequire } from 'node:module';

/** Per-packet outcome arrays of classifyBatchDetailed (index i = packet i). */
export interface NativeDetailedBatch {
  units: Uint16Array;
  keys: Uint32Array;
  /** status (low 3 bits, STATUS) | FLAG_FRAGMENT | FLAG_L2TP | FLAG_L2TP_FALLBACK */
  codes: Uint8Array;
  protos: Uint8Array;
  /** DROP_REASONS index for dropped packets; L2TP_FALLBACK_REASONS index when FLAG_L2TP_FALLBACK */
  details: Uint8Array;
  /** tunnelId << 16 | sessionId when FLAG_L2TP */
  l2tpIds: Uint32Array;
}

/** Cumulative counters of one native filter; hold* are the hold queue's. */
export interface NativeFilterStats {
  cluster: number;
  forwarded: number;
  arp: number;
  unsupported: number;
  truncated: number;
  malformed: number;
  fragments: number;
  l2tp: number;
  l2tpFallback: number;
  heldPackets: number;
  heldBytes: number;
  holdDrops: number;
  holdDiscarded: number;
  holdReleased: number;
}

/** The native Filter object (src/filter/filter_wrap.cc FilterWrap). Arguments are checked again natively. */
export interface NativeFilter {
  setClusterIps(v4: Uint32Array, v6: Uint8Array): void;
  setOwner(unit: number, slot: number): void;
  setOwners(units: Uint16Array, slot: number): void;
  setTable(table: Uint16Array): void;
  owners(): Uint16Array;
  setRole(localSlot: number, master: boolean, method: number): void;
  classifyBatch(packets: Uint8Array, offsets: Uint32Array, frames: boolean): Uint16Array;
  verdictBatch(packets: Uint8Array, offsets: Uint32Array, frames: boolean): { verdicts: Uint8Array; units: Uint16Array };
  /** 2048 entries: packets of units 0..1023, then bytes of units 0..1023. */
  counters(reset: boolean): BigUint64Array;
  stats(): NativeFilterStats;
  hold(unit: number): void;
  isHeld(unit: number): boolean;
  release(unit: number): Buffer[];
  dropHeld(unit: number): number;
}

/** One delivery of the capture's poll callback: a batch of frames in one buffer. */
export interface NativeCaptureBatch {
  /** Frames concatenated; frame i is frames[offsets[i], offsets[i + 1]). */
  frames: Buffer;
  offsets: Uint32Array;
  verdicts: Uint8Array;
  units: Uint16Array;
}

export interface NativeCaptureStats {
  received: number;
  droppedByKernel: number;
  droppedByInterface: number;
  delivered: number;
  injected: number;
}

/**
 * The native Capture object (src/capture/capture.cc). Failures throw Error whose message names the call and
 * the failing libpcap/OS function, with properties `syscall`, and `errno` + `code` ('EPERM') or a
 * libpcap status name as `code` ('PCAP_ERROR_NO_SUCH_DEVICE').
 */
export interface NativeCapture {
  /** Starts polling; `onBatch` runs on the JS thread, `onError` once if the capture fails. */
  start(onBatch: (batch: NativeCaptureBatch) => void, onError: (err: Error) => void): void;
  /** Stops polling and closes the pcap handle. Idempotent. */
  close(): void;
  inject(frame: Uint8Array): number;
  stats(): NativeCaptureStats;
  readonly linkType: number;
}

export interface NativeCaptureConstructor {
  // (interface, filter object, BPF expression or '', snaplen, promiscuous, bufferBytes, maxBatch)
  new (
    device: string,
    filter: NativeFilter,
    bpf: string,
    snaplen: number,
    promiscuous: boolean,
    bufferBytes: number,
    maxBatch: number,
  ): NativeCapture;
}

/** The configuration object of `new PacketEngine` (src/engine/engine_wrap.cc); the wrapper (engine.ts) builds it. */
export interface NativeEngineConfig {
  queueNum: number;
  clusterV4: Uint32Array;
  clusterV6: Uint8Array;
  /** '' for none. */
  forwardInterface: string;
  /** mac: 6 bytes, or 0 bytes for the interface's own MAC. */
  arpInterfaces: { name: string; clusterV4: Uint32Array; mac: Uint8Array }[];
  localSlot: number;
  master: boolean;
  method: number;
  /** 6 bytes, or 0 bytes for none. */
  clusterMac: Uint8Array;
  perUnitPackets: number;
  totalPackets: number;
  totalBytes: number;
  queueMaxLen: number;
  announceRounds: number;
  announceIntervalMs: number;
}

/** Events of the engine thread, delivered on the JS thread (src/engine/engine_wrap.cc CallJs). */
export type NativeEngineEvent =
  | { type: 'unit-needs-owner'; unit: number; owner: number }
  | { type: 'announced'; frames: number }
  | { type: 'error'; error: Error };

export interface NativeVerdictCounts {
  accepted: number;
  forwarded: number;
  dropped: number;
  held: number;
  invalid: number;
}

export interface NativeEngineStats {
  received: number;
  verdicts: NativeVerdictCounts;
  verdictErrors: number;
  recvOverruns: number;
  kernelWaiting: number;
  kernelQueueDropped: number;
  kernelUserDropped: number;
  kernelStatsKnown: boolean;
  forwardErrors: number;
  forwardNoMac: number;
  reinjected: number;
  reinjectErrors: number;
  releasedForwarded: number;
  releasedDropped: number;
  needsOwnerEvents: number;
  eventDrops: number;
  arpRequests: number;
  arpAnswered: number;
  arpErrors: number;
  garpSent: number;
  cluster: number;
  forwardedTraffic: number;
  truncated: number;
  malformed: number;
  fragments: number;
  heldPackets: number;
  heldBytes: number;
  holdDrops: number;
  holdDiscarded: number;
  holdReleased: number;
}

/** The native PacketEngine object (src/engine/engine_wrap.cc). Every method but close/ref/unref throws once closed. */
export interface NativePacketEngine {
  setOwner(unit: number, slot: number): void;
  setOwners(units: Uint16Array, slot: number): void;
  setTable(table: Uint16Array): void;
  owners(): Uint16Array;
  setRole(localSlot: number, master: boolean, method: number): void;
  setSlotMac(slot: number, mac: Uint8Array): void;
  setClusterMac(mac: Uint8Array): void;
  setAnswering(on: boolean): void;
  hold(unit: number): void;
  isHeld(unit: number): boolean;
  release(unit: number): { reinjected: number; forwarded: number; dropped: number };
  dropHeld(unit: number): number;
  announce(): void;
  /** units: 2048 entries, packets of units 0..1023 then bytes. */
  counters(reset: boolean): { units: BigUint64Array; verdicts: NativeVerdictCounts };
  stats(): NativeEngineStats;
  ref(): void;
  unref(): void;
  /** Stateful mode: track owned packets in this native SessionTable (null: stateless). */
  attachSessions(table: object | null): void;
  attachFlowOffloads(fastPaths: object[]): void;
  close(): void;
}

export interface NativePacketEngineConstructor {
  new (config: NativeEngineConfig, onEvent: (event: NativeEngineEvent) => void): NativePacketEngine;
}

/** Outcome of one tracked packet (src/sessions/session_wrap.cc). verdict 0 ACCEPT / 1 DROP; reason: TRACK_REASONS index. */
export interface NativeTrackResult {
  verdict: number;
  reason: number;
  created: boolean;
  /** A session exists after the packet. */
  session: boolean;
  proto: number;
  state: number;
  unit: number;
}

/** Counters of one session table (src/sessions/session_wrap.cc Stats). */
export interface NativeSessionStats {
  sessions: number;
  maxSessions: number;
  tcp: number;
  udp: number;
  other: number;
  replicas: number;
  created: number;
  refused: number;
  installRefused: number;
  expired: number;
  removed: number;
  accepted: number;
  dropped: number;
  recordsCollected: number;
  removalsCollected: number;
  removalsDropped: number;
  installed: number;
  installStale: number;
  regained: number;
  /** FastPath.syncFlows refreshes that carried a kernel-passed packet. */
  offloadRefreshed: number;
  installInvalid: number;
  bytesPerSession: number;
  /** Packets per TRACK_REASONS name. */
  reasons: Record<string, number>;
}

/** The native SessionTable object (src/sessions/session_wrap.cc). Records/keys travel as concatenated fixed-size bytes. */
export interface NativeSessionTable {
  trackPacket(ipPacket: Uint8Array, nowMs: number, unit: number, unitGainedMs?: number): NativeTrackResult;
  trackBatch(packets: Uint8Array, offsets: Uint32Array, nowMs: number, units: Uint16Array | null): { verdicts: Uint8Array; reasons: Uint8Array };
  collectChanges(maxRecords: number, nowMs: number, lazy: boolean): { records: Buffer; removed: Buffer; pendingUrgent: number; pendingLazy: number; pendingRemoved: number };
  install(records: Uint8Array, nowMs: number): { installed: number; updated: number; stale: number; invalid: number; refused: number };
  remove(keys: Uint8Array): number;
  expire(nowMs: number): number;
  sessionsForUnits(unitBitmap: Uint8Array): Buffer;
  list(offset: number, limit: number, unit: number, proto: number, port: number, addr: Uint8Array): { records: Buffer; total: number };
  stats(): NativeSessionStats;
  size(): number;
  /** timeouts: Uint32Array(11), SESSION_TIMEOUT_KEYS order. */
  configure(maxSessions: number, loose: boolean, timeouts: Uint32Array): void;
}

export interface NativeSessionTableConstructor {
  new (maxSessions: number, loose: boolean, timeouts: Uint32Array): NativeSessionTable;
}

/** The native FastPath object (src/fastpath/fastpath_wrap.cc). Failures throw Error with syscall, errno, code. */
export interface NativeFastPath {
  /** mode 0: tcx (a bpf_link, detached when the process goes); 1: cls_bpf on the clsact qdisc. */
  attach(ifname: string, mode: number): void;
  detach(): void;
  attached(): boolean;
  setConfig(flags: number, l2Offset: number, userMark: number, passMark: number): void;
  setUnitPolicies(units: Uint16Array, action: number, ownerSlot: number): void;
  setClusterIps(v4: Uint32Array, v6: Uint8Array): void;
  setBypassIps(v4: Uint32Array, v6: Uint8Array): void;
  /** 2048 entries: packets of units 0..1023, then IP bytes. */
  unitCounters(reset: boolean): BigUint64Array;
  /** fastPathConstants.statCount entries, FASTPATH_STAT_NAMES order. */
  stats(): BigUint64Array;
  classifyInKernel(packets: Uint8Array, offsets: Uint32Array, frames: boolean): NativeDetailedBatch & { verdicts: Uint8Array };
  testRunDuration(packet: Uint8Array, frames: boolean, repeat: number): number;
  syncFlows(table: object): { entries: number; refreshed: number; removed: number; errors: number };
  flowStats(): { offloaded: number; offloadErrors: number };
  offloadPacket(ipPacket: Uint8Array, unit: number): void;
  setForwardInterface(ifname: string): void;
  setSlotMac(slot: number, mac: Uint8Array | null): void;
  runOnce(packet: Uint8Array, frames: boolean): { verdict: number; mark: number };
  close(): void;
}

/** Values of src/fastpath/fastpath_consts.h the TypeScript face relies on (checked by its tests). */
export interface NativeFastPathConstants {
  actionToUser: number;
  actionPass: number;
  actionDrop: number;
  actionPassTracked: number;
  actionRedirect: number;
  configFrames: number;
  configDecideIpv6: number;
  configTestResult: number;
  statCount: number;
  testCarrierBytes: number;
}

/** What build/Release/gwcluster_filter.node exports (src/common/addon.cc Init). */
/** A WireGuard endpoint as the tunnel data path reports it. */
export interface NativeTunnelEndpoint {
  address: string;
  port: number;
}

export interface NativeTunnelKeypair {
  localIndex: number;
  remoteIndex: number;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  canSend: boolean;
  /** No counter at or beyond this is used to send (the replicated counter reservation). Default: none. */
  sendLimit?: bigint | number;
  /** A replica's state, applied when the keypair is installed: the send counter moves up to this. */
  seedSendCounter?: bigint | number;
  /** A replica's state: every receive counter below this counts as seen. */
  seedReceiveNext?: bigint | number;
}

export interface NativeTunnelActivity {
  localIndex: number;
  peer: number;
  received: number;
  receivedData: number;
  sent: number;
  sentData: number;
  sendCounter: bigint;
  /** The counter after the greatest accepted on this keypair (0n: none). */
  receiveNext: bigint;
  from?: NativeTunnelEndpoint;
}

/** The native TunnelTransport (src/tunnel/tunnel_wrap.cc over transport.h). */
export interface NativeTunnelTransport {
  setKeypairs(peer: number, keypairs: NativeTunnelKeypair[]): void;
  /** 18-byte records: family (4|6), prefix bits, 16 address bytes (IPv4 in the first 4). */
  setAllowedIps(peer: number, prefixes: Uint8Array): void;
  setEndpoint(peer: number, address: string, port: number): void;
  removePeer(peer: number): void;
  setForward(peer: number, address?: string, port?: number): void;
  setForwarders(addresses: string[]): void;
  decryptBatch(datagrams: Uint8Array, offsets: Uint32Array, address?: string, port?: number): {
    status: Uint8Array; peers: Uint32Array; plaintext: Buffer; offsets: Uint32Array;
  };
  encryptBatch(peer: number, packets: Uint8Array, offsets: Uint32Array): {
    status: Uint8Array; peers: Uint32Array; datagrams: Buffer; offsets: Uint32Array; endpoints: (NativeTunnelEndpoint | null)[];
  };
  activity(): NativeTunnelActivity[];
  peerStats(peer: number): { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; endpoint?: NativeTunnelEndpoint };
  /** Counts per DecryptStatus / EncryptStatus index. */
  stats(): { decrypt: number[]; encrypt: number[] };
}

export type NativeTunnelDeviceEvent =
  | { type: 'handshake'; bytes: Buffer; from: NativeTunnelEndpoint }
  | { type: 'need-keypair'; peer: number }
  | { type: 'error'; error: Error };

export interface NativeTunnelDeviceStats {
  udpReceived: number; udpBatches: number; handshakeMessages: number; truncated: number;
  tunWritten: number; tunWriteErrors: number; tunRead: number; tunBatches: number;
  udpSent: number; sendErrors: number; needKeypairEvents: number; eventDrops: number;
  forwarded: number; forwardReceived: number; forwardRefused: number; forwardLoops: number;
}

/** The native TunnelDevice (src/tunnel/tunnel_device.h). */
export interface NativeTunnelDevice {
  sendDatagram(bytes: Uint8Array, address: string, port: number): void;
  /** EncryptStatus index. */
  sendKeepalive(peer: number): number;
  stats(): NativeTunnelDeviceStats;
  boundPort(): number;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface FilterBinding {
  workUnitOfKey(key: number): number;
  classifyBatch(packets: Uint8Array, offsets: Uint32Array, clusterV4: Uint32Array, clusterV6: Uint8Array, frames: boolean): Uint16Array;
  classifyBatchDetailed(
    packets: Uint8Array,
    offsets: Uint32Array,
    clusterV4: Uint32Array,
    clusterV6: Uint8Array,
    frames: boolean,
  ): NativeDetailedBatch;
  Filter: new (perUnitPackets: number, totalPackets: number, totalBytes: number) => NativeFilter;
  /** False when the addon was built without libpcap (no pcap-config at build time). */
  hasPcap: boolean;
  Capture?: NativeCaptureConstructor;
  /** False when the addon was built without libnetfilter_queue. */
  hasEngine: boolean;
  PacketEngine?: NativePacketEngineConstructor;
  /** The session table (src/sessions/session_wrap.cc); optional so fake bindings need not provide it. */
  SessionTable?: NativeSessionTableConstructor;
  sessionRecordSize?: number;
  sessionKeySize?: number;
  /** False when the addon was built without clang/libbpf (no kernel fast path). */
  hasFastPath?: boolean;
  FastPath?: new (objectPath: string) => NativeFastPath;
  fastPathConstants?: NativeFastPathConstants;
  /** False when the addon was built without libsodium (no WireGuard data path). */
  hasTunnel?: boolean;
  TunnelTransport?: new () => NativeTunnelTransport;
  TunnelDevice?: new (
    transport: NativeTunnelTransport,
    config: { tunName: string; mtu: number; listenAddress: string; listenPort: number; forwardAddress?: string; forwardPort?: number },
    onEvent: (e: NativeTunnelDeviceEvent) => void,
  ) => NativeTunnelDevice;
  /** False when the addon was built without libsodium (no fast liveness). */
  hasLiveness?: boolean;
  Liveness?: new (config: NativeLivenessConfig, onEvent: (e: NativeLivenessEvent) => void) => NativeLiveness;
  sealLivenessDatagram?: (state: number, intervalMs: number, from: string, to: string, incarnation: number, seq: number, key: Uint8Array) => Buffer;
  /** One sd_notify(3) datagram to an AF_UNIX socket (src/notify/notify_wrap.cc); optional so fake bindings need not provide it. */
  sdNotify?: (address: string, state: string) => void;
}

/** new Liveness(config): src/liveness/liveness_wrap.cc. */
export interface NativeLivenessConfig {
  address: string;
  port: number;
  intervalMs: number;
  minPeriods: number;
  maxPeriods: number;
  lossToleranceK: number;
  incarnation: number;
  realtimePriority: number;
}

export type NativeLivenessEvent =
  | { type: 'down'; peer: string; silentMs: number; periods: number }
  | { type: 'up'; peer: string }
  | { type: 'error'; error: Error & { syscall?: string; errno?: number; code?: string } };

export interface NativeLivenessPeer {
  address: string;
  armed: boolean;
  down: boolean;
  /** ms since its last accepted heartbeat; null: never heard. */
  silentMs: number | null;
  loss: number;
  periods: number;
  intervalMs: number;
  /** The silence reported as down now, ms: max((periods + 0.5) x interval, 2 x gapMaxMs), capped at maxPeriods. */
  limitMs: number;
  /** The longest recent gap between two of its heartbeats, ms, decaying with a 10 s half-life. */
  gapMaxMs: number;
  incarnation: number;
  seq: number;
}

export interface NativeLivenessStats {
  sent: number;
  sendErrors: number;
  received: number;
  accepted: number;
  malformed: number;
  wrongAddress: number;
  unknownPeer: number;
  badMac: number;
  replay: number;
  leaving: number;
  downEvents: number;
  upEvents: number;
  eventDrops: number;
  realtime: boolean;
}

export interface NativeLiveness {
  setPeers(peers: { address: string; txKey: Uint8Array; rxKey: Uint8Array }[]): void;
  peers(): NativeLivenessPeer[];
  stats(): NativeLivenessStats;
  boundPort(): number;
  unref(): void;
  close(opts?: { announceLeaving?: boolean }): void;
}

export const ADDON_PATH = '../../build/Release/gwcluster_filter.node';
/** The fast path's BPF object, built beside the addon (binding.gyp target gwcluster_fastpath_bpf). */
export const FASTPATH_OBJECT_URL = new URL('../../build/Release/gwcluster_fastpath.bpf.o', import.meta.url);

let loaded: FilterBinding | undefined;

/**
 * Loads the addon once (from src/common/ under vitest, from dist/common/ in processes: both sit two levels below the
 * package root). Throws an Error with code GWC_ADDON_NOT_BUILT when the .node file is missing.
 */
export function loadBinding(): FilterBinding {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  try {
    loaded = require(ADDON_PATH) as FilterBinding;
  } catch (cause) {
    const err = new Error(
      `@gwcluster/native-addon: cannot load ${ADDON_PATH} (${(cause as Error).message}); ` +
        'build it with `npm install` at the repository root or `npx node-gyp rebuild` in native-addon/',
      { cause },
    );
    (err as Error & { code: string }).code = 'GWC_ADDON_NOT_BUILT';
    throw err;
  }
  return loaded;
}
