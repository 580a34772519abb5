/**
 * Taking and releasing the cluster IP on the master (digest: Figure 6 step 4, Figure 8A). The data plane
 * (native addon) will take this over for the three distribution methods; until it is configured the
 * member binds the address to its interface and announces it with gratuitous ARP.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { announceAddress } from './held-addresses.js';

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
      // Unsolicited ARP rounds (CLUSTER_IP_ANNOUNCEMENT), so neighbours rebind the cluster IP to this
      // member at once; not awaited, so that a release right after is not held up by the rounds.
      void announceAddress(this.clusterIp, this.iface).catch((e: Error) => this.onError(`gratuitous ARP for ${this.clusterIp} on ${this.iface}`, e));
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
