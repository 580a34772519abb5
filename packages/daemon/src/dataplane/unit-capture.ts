/**
 * The packets of one work unit on one of this member's interfaces, for GET /v1/capture and
 * `gwctl capture`: a libpcap capture (the addon's Capture) whose frames are classified by a fresh
 * WorkUnitFilter with the cluster IPs, keeping the frames whose unit is the one asked for. Passive: the
 * member's own packet path is not touched. The caller bounds it in count and time and stops it.
 */
import { Capture, WorkUnitFilter } from '@gwcluster/native-addon';
import type { UnitCaptureHandle, UnitCaptureRequest, UnitCaptureSource } from '../operator/providers.js';

export interface UnitCaptureConfig {
  /** Interfaces a capture may open (the cluster interface first: the default). */
  readonly interfaces: readonly string[];
  /** Every cluster IP the member answers for (the work-unit hash is taken relative to them). */
  readonly clusterIps: readonly string[];
}

export function unitCaptureSource(cfg: UnitCaptureConfig): UnitCaptureSource {
  const interfaces = [...new Set(cfg.interfaces)];
  return {
    interfaces: () => interfaces,
    start(req: UnitCaptureRequest): UnitCaptureHandle {
      const device = req.interface ?? interfaces[0]!;
      if (!interfaces.includes(device)) throw new Error(`interface ${device} is not one of this member's interfaces (${interfaces.join(', ')})`);
      const filter = new WorkUnitFilter({ clusterIps: [...cfg.clusterIps], frames: true });
      // Only IPv4/IPv6 frames can carry a unit; the kernel drops the rest before they are copied.
      const capture = Capture.open({ device, filter, bpf: 'ip or ip6 or (vlan and (ip or ip6))', promiscuous: false, bufferBytes: 1 << 20, maxBatch: 256 });
      capture.on('batch', (b) => {
        const now = Date.now();
        for (let i = 0; i < b.units.length; i++) {
          if (b.units[i] !== req.unit) continue;
          if (!req.onFrame(b.frames.subarray(b.offsets[i]!, b.offsets[i + 1]!), now)) break;
        }
      });
      capture.on('error', (e) => req.onError(e));
      capture.start();
      return { stop: () => capture.close() };
    },
  };
}
