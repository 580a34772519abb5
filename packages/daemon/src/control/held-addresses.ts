/**
 * The addresses a member answers for besides its own (the core's `addresses` effect): pool addresses it
 * owns and, with `cluster.memberAddressTakeover`, dead members' own addresses (docs/operator-guide.md,
 * "Address pool"; docs/decisions.md, "Address pool: the owner's kernel answers, held by a lease").
 *
 * The holder adds ADDR/32 to the interface (its kernel answers ARP for it with the interface's MAC and
 * accepts its traffic) and announces it with gratuitous ARP; members that do not own it do not configure
 * it at all, so nobody else answers. Each address is held by a lease: a child shell that adds the address,
 * waits for end-of-file on a pipe from this process and then removes it. The pipe closes when the daemon
 * ends in any way (a clean stop, a crash, kill -9), so an address never outlives the daemon that was
 * given it and a killed member does not keep answering for its pool addresses. The child ignores
 * SIGTERM/SIGINT/SIGHUP (a stop signal to the whole group must not kill it before it removed the address).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { HeldAddress, PoolMove } from '@gwcluster/cluster-core';
import { CLUSTER_IP_ANNOUNCEMENT } from './timing.js';

const run = promisify(execFile);

export interface AddressHolder {
  /**
   * Stops answering for `lost` (asynchronously, within milliseconds) and starts answering for `gained`;
   * `moves`: the pool addresses among them that move between live members (affinity, pool-affinity.ts).
   */
  change(gained: readonly HeldAddress[], lost: readonly HeldAddress[], moves?: readonly PoolMove[]): void;
  /** Stops answering for every address. */
  releaseAll(): Promise<void>;
  /** Addresses held now, by address -> interface. */
  held(): ReadonlyMap<string, string>;
}

export class NoAddressHolder implements AddressHolder {
  change(): void {}
  async releaseAll(): Promise<void> {}
  held(): ReadonlyMap<string, string> {
    return new Map();
  }
}

// Gratuitous ARP for $1 on $2: $3 rounds $4 s apart, one arping per round (arping's own -i takes whole
// seconds only), in the background.
const ANNOUNCE = '( k=0; while [ $k -lt "$3" ]; do arping -q -U -c 1 -w 1 -I "$2" "$1" </dev/null >/dev/null 2>&1 & k=$((k+1)); sleep "$4"; done ) &';

// $1 address, $2 interface, $3 gratuitous ARP rounds, $4 interval (s), $5 'takeover' or 'pool'.
// A taken-over address is another member's own: accept_local on the interface, so that packets from that
// member (its JOIN REQUEST when it comes back) are not dropped as martians (a local source address).
const LEASE_SCRIPT = [
  "trap '' TERM INT HUP",
  '[ "$5" = takeover ] && sysctl -q -w "net.ipv4.conf.$2.accept_local=1"',
  'ip addr replace "$1/32" dev "$2" || exit 1',
  ANNOUNCE,
  'cat >/dev/null',
  'ip addr del "$1/32" dev "$2" 2>/dev/null',
  'exit 0',
].join('\n');

interface Lease {
  readonly iface: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** Holds each address by a lease child (see the file comment). */
export class InterfaceAddressHolder implements AddressHolder {
  private readonly leases = new Map<string, Lease>();

  constructor(
    /** The interface of a takeover address (the member interface). */
    private readonly memberInterface: string,
    private readonly onError: (what: string, detail: string) => void,
  ) {}

  held(): ReadonlyMap<string, string> {
    return new Map([...this.leases].map(([a, l]) => [a, l.iface]));
  }

  change(gained: readonly HeldAddress[], lost: readonly HeldAddress[]): void {
    // Never blocks the event loop (a blocked loop delays keepalives): the lease removes the address a
    // few ms later, asynchronously.
    for (const h of lost) void this.release(h.address);
    for (const h of gained) this.take(h.address, h.interface ?? this.memberInterface, h.kind);
  }

  async releaseAll(): Promise<void> {
    await Promise.all([...this.leases.keys()].map((a) => this.release(a)));
  }

  private take(address: string, iface: string, kind: HeldAddress['kind']): void {
    if (this.leases.has(address)) return;
    const { rounds, intervalMs } = CLUSTER_IP_ANNOUNCEMENT;
    const child = spawn('sh', ['-c', LEASE_SCRIPT, 'gwcluster-address-lease', address, iface, String(rounds), String(intervalMs / 1000), kind], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 1000) stderr += b.toString();
    });
    child.stdin?.on('error', () => {});
    const exited = new Promise<void>((resolve) => {
      child.on('error', (e) => {
        this.onError(`holding ${address} on ${iface}`, e.message);
        resolve();
      });
      child.on('exit', (code) => {
        if (code !== 0) this.onError(`ip addr replace ${address}/32 dev ${iface}`, stderr.trim() || `exit code ${code}`);
        if (this.leases.get(address)?.child === child) this.leases.delete(address);
        resolve();
      });
    });
    // Neither the lease nor its pipe keeps the daemon's event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    this.leases.set(address, { iface, child, exited });
  }

  private async release(address: string): Promise<void> {
    const lease = this.leases.get(address);
    if (!lease) return;
    this.leases.delete(address);
    lease.child.stdin?.end();
    await lease.exited;
  }
}

/**
 * At boot: removes the pool's addresses from their interfaces (left by a previous run whose lease
 * children were killed with it), so this member starts answering for none of them.
 */
export async function removeStaleAddresses(pool: readonly { address: string; interface: string }[]): Promise<void> {
  await Promise.all(pool.map((p) => run('ip', ['addr', 'del', `${p.address}/32`, 'dev', p.interface]).catch(() => {})));
}

/**
 * Gratuitous ARP for an address this member now answers for (its own address after a takeover, the
 * cluster IP when it takes office): neighbours rebind it to this member's MAC at once.
 */
export async function announceAddress(address: string, iface: string): Promise<void> {
  const { rounds, intervalMs } = CLUSTER_IP_ANNOUNCEMENT;
  await run('sh', ['-c', `${ANNOUNCE}\nwait`, 'gwcluster-announce', address, iface, String(rounds), String(intervalMs / 1000)], { timeout: (rounds * intervalMs) + 5000 });
}
