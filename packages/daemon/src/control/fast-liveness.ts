/**
 * Fast liveness on a member (docs/protocol.md, "Fast liveness"): the addon's heartbeat thread on UDP
 * cluster.port + 1 of the member address, linked to the MemberNode (which gives it the peers and their
 * keys, and hears its reports). Off when liveness.intervalMs is 0; when the addon was built without
 * libsodium the member runs without it and says so.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Liveness, livenessAvailable, type LivenessEvent } from '@gwcluster/native-addon';
import type { MemberConfig } from '../config/config.js';
import type { LivenessLink, MemberNode } from './member-node.js';

export interface FastLiveness extends LivenessLink {
  /** Attaches the node that hears the reports (reports before it are counted, not lost: the node asks again). */
  attach(node: MemberNode): void;
  stats(): Record<string, number>;
  close(opts?: { announceLeaving?: boolean }): void;
}

/** This process's RLIMIT_RTPRIO (soft), from /proc/self/limits; null where it cannot be read. */
export function realtimePriorityLimit(): number | null {
  try {
    const m = /^Max realtime priority\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return null;
    return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return null;
  }
}

/** The heartbeat port: the cluster protocol's port + 1 (the same on every member). */
export function livenessPort(config: MemberConfig): number {
  return config.cluster.port + 1;
}

export function openFastLiveness(config: MemberConfig, incarnation: number, logger: Logger): FastLiveness | null {
  const c = config.liveness;
  if (c.intervalMs === 0) {
    logger.info('fast liveness off (liveness.intervalMs 0): deaths are found by the keepalive watchdog');
    return null;
  }
  if (!livenessAvailable()) {
    logger.warn('fast liveness unavailable: the addon was built without libsodium (install libsodium-dev and rebuild); deaths are found by the keepalive watchdog');
    return null;
  }
  if (config.cluster.port >= 65535) throw new Error(`fast liveness: cluster.port ${config.cluster.port} leaves no port for heartbeats (cluster.port + 1)`);
  let node: MemberNode | null = null;
  let unattached = 0;
  const onEvent = (e: LivenessEvent) => {
    if (e.type === 'error') {
      if (e.error.syscall === 'pthread_setschedparam') {
        const limit = realtimePriorityLimit();
        logger.warn(
          { err: e.error.message, syscall: e.error.syscall, realtimePriority: c.realtimePriority, rlimitRtprio: limit },
          `fast liveness: real-time priority ${c.realtimePriority} refused (${e.error.message}); the heartbeat thread runs with normal scheduling (node counter liveness.realtime 0), so a busy host may delay heartbeats. ` +
            `Allow it with LimitRTPRIO=${c.realtimePriority} and RestrictRealtime=no in the unit (the packaged unit has both; this process's RLIMIT_RTPRIO is ${limit ?? 'unknown'}), or CAP_SYS_NICE; or set liveness.realtimePriority 0`,
        );
        return;
      }
      logger.warn({ err: e.error.message, syscall: e.error.syscall }, `fast liveness: ${e.error.message}`);
      return;
    }
    if (!node) {
      unattached++;
      return;
    }
    node.livenessReport(e);
  };
  const native = new Liveness({
    address: config.member.address,
    port: livenessPort(config),
    intervalMs: c.intervalMs,
    minPeriods: c.minPeriods,
    maxPeriods: Math.max(c.minPeriods, c.maxPeriods),
    lossToleranceK: config.cluster.lossToleranceK,
    incarnation,
    realtimePriority: c.realtimePriority,
    onEvent,
  });
  native.unref();
  logger.info({ port: livenessPort(config), intervalMs: c.intervalMs, minPeriods: c.minPeriods, realtimePriority: c.realtimePriority }, 'fast liveness on');
  return {
    attach(n) {
      node = n;
    },
    setPeers(peers) {
      native.setPeers(peers);
    },
    stats() {
      if (native.closed) return {};
      const s = native.stats();
      const peers = native.peers();
      return {
        ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'boolean' ? Number(v) : v])),
        peers: peers.length,
        armedPeers: peers.filter((p) => p.armed).length,
        downPeers: peers.filter((p) => p.down).length,
        // The longest silence any armed peer may keep before it is reported down (ms; grows with late heartbeats).
        limitMsMax: Math.round(Math.max(0, ...peers.filter((p) => p.armed).map((p) => p.limitMs))),
        unattachedReports: unattached,
      };
    },
    close(opts) {
      native.close(opts);
    },
  };
}
