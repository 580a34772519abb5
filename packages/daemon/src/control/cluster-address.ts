/**
 * Taking and releasing the cluster IP on the master (digest: Figure 6 step 4, Figure 8A). The data plane
 * (native addon) will take this over for the three distribution methods; until it is configured the
 * member binds the address to its interface and announces it with gratuitous ARP.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLUSTER_IP_ANNOUNCEMENT } from './timing.js';

const run = promisify(execFile);

export interface ClusterAddress {
  /**
   * Start answering for the cluster IP and announce it (gratuitous ARP, CLUSTER_IP_ANNOUNCEMENT). Called
   * again while answering, it announces again (after a tie-break win or a join). Idempotent otherwise.
   */
  take(): Promise<void>;
  /** Stop answering for it. Idempotent. */
  release(): Promise<void>;
}

export class NoClusterAddress implements ClusterAddress {
  async take(): Promise<void> {}
  async release(): Promise<void> {}
}

/** Adds clusterIp/32 to the interface and sends gratuitous ARP with arping (iputils). */
export class InterfaceClusterAddress implements ClusterAddress {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly clusterIp: string,
    private readonly iface: string,
    private readonly onError: (what: string, err: Error) => void,
  ) {}

  private serial(fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(fn, fn);
    return this.chain;
  }

  take(): Promise<void> {
    return this.serial(async () => {
      try {
        await run('ip', ['addr', 'replace', `${this.clusterIp}/32`, 'dev', this.iface]);
      } catch (e) {
        this.onError(`ip addr replace ${this.clusterIp}/32 dev ${this.iface}`, e as Error);
        return;
      }
      try {
        // -U: unsolicited ARP (gratuitous), so neighbours rebind the cluster IP to this member at once.
        const { rounds, intervalMs } = CLUSTER_IP_ANNOUNCEMENT;
        const spanS = Math.ceil((rounds * intervalMs) / 1000) + 1;
        await run('arping', ['-U', '-c', String(rounds), '-i', String(intervalMs / 1000), '-w', String(spanS), '-I', this.iface, this.clusterIp], { timeout: spanS * 1000 + 2000 });
      } catch (e) {
        this.onError(`arping -U -I ${this.iface} ${this.clusterIp}`, e as Error);
      }
    });
  }

  release(): Promise<void> {
    return this.serial(async () => {
      try {
        await run('ip', ['addr', 'del', `${this.clusterIp}/32`, 'dev', this.iface]);
      } catch (e) {
        const msg = String((e as { stderr?: string }).stderr ?? (e as Error).message);
        if (!/Cannot assign requested address|not found/i.test(msg)) this.onError(`ip addr del ${this.clusterIp}/32 dev ${this.iface}`, e as Error);
      }
    });
  }
}
