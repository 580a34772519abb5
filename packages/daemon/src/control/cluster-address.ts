/**
 * Taking and releasing the cluster IP on the master (digest: Figure 6 step 4, Figure 8A). The data plane
 * (native addon) will take this over for the three distribution methods; until it is configured the
 * member binds the address to its interface and announces it with gratuitous ARP.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ClusterAddress {
  /** Start answering for the cluster IP and announce it (gratuitous ARP). Idempotent. */
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
        await run('arping', ['-U', '-c', '2', '-w', '1', '-I', this.iface, this.clusterIp], { timeout: 3000 });
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
