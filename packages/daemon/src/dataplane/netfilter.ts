/**
 * The kernel side of the data plane, set up inside the member's network namespace (docs/dataplane.md):
 *
 *   - every cluster IP on `lo`, so the member's stack accepts packets for it;
 *   - arp_ignore=1 / arp_announce=2, so the kernel never answers ARP for a cluster IP (only the master's
 *     packet engine does, and nobody once its process is gone);
 *   - rp_filter off (packets forwarded by the master arrive on the cluster interface);
 *   - ip_forward on when the cluster routes between its interfaces;
 *   - method 2 (unicast-mac): the interface is promiscuous; method 3 (multicast-mac): the multicast MAC is
 *     added to its filter; for both an nft netdev ingress rule marks frames to the cluster MAC as "to this
 *     host" (Linux drops other-host and multicast-MAC frames before TCP otherwise);
 *   - an iptables raw PREROUTING chain sends every IPv4 packet arriving on a data-plane interface that is
 *     not for one of the member's own addresses (nor broadcast/multicast) to NFQUEUE, without bypass: the
 *     packet engine decides, and with no engine (process dead) the packets are dropped, never answered;
 *     in method 1 with routeEstablishedWhenDead, routed packets (not for a cluster IP) are queued with
 *     bypass instead: with no engine they go on without the engine's accept mark, and the filter FORWARD
 *     chain GWCLUSTER-DEAD lets only those of connections the kernel tracked through (a dead master keeps routing established
 *     flows until the survivors take over, as a router whose VRRP daemon died does);
 *   - with the kernel path (plan.passMark), packets the BPF program passed carry that mark and return
 *     before the NFQUEUE rule; everything else still goes to the queue, so with no program attached (the
 *     process died and the kernel dropped its tcx link) the fail-safe above holds unchanged.
 *
 * Every step is idempotent; teardown() removes what setup() adds. Order matters (fail-safe first in,
 * last out): see setupNetfilter and teardownNetfilter. Commands run with execFile (no shell).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ipv4Broadcast } from '@gwcluster/wire';

const run = promisify(execFile);

export type DistributionMethod = 'master-forward' | 'unicast-mac' | 'multicast-mac';

export interface DataPlaneInterface {
  readonly name: string;
  /** Cluster IPs served on this interface. */
  readonly clusterIps: readonly string[];
}

export interface NetfilterPlan {
  readonly interfaces: readonly DataPlaneInterface[];
  readonly method: DistributionMethod;
  /** Cluster-wide MAC (methods 2 and 3). */
  readonly clusterMac?: string;
  /** The member's own addresses (never queued). */
  readonly ownAddresses: readonly string[];
  readonly queueNum: number;
  readonly forwarding: boolean;
  /** Kernel path: packets with all these mark bits were passed by the BPF program and skip the queue. */
  readonly passMark?: number;
  /**
   * Method 1 only: while no packet engine reads the queue (the daemon is dead), routed packets of
   * connections the kernel has seen go on (the queue's bypass, then the filter FORWARD guard), not dropped.
   */
  readonly routeEstablishedWhenDead?: boolean;
}

/** The mark the packet engine sets on every packet it accepts (native-addon engine kAcceptMark). */
export const ENGINE_ACCEPT_MARK = 0x20000000;
export const FORWARD_CHAIN = 'GWCLUSTER-DEAD';

export const CHAIN = 'GWCLUSTER';
export const NFT_TABLE = 'gwcluster';

export class NetfilterError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command} failed: ${stderr.trim() || 'no error text'}`);
    this.name = 'NetfilterError';
  }
}

async function attempt(argv: readonly string[]): Promise<boolean> {
  try {
    await run(argv[0]!, argv.slice(1), { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

async function cmd(argv: readonly string[], okIfFails = false): Promise<string> {
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 10_000 });
    return stdout;
  } catch (e) {
    if (okIfFails) return '';
    throw new NetfilterError(argv.join(' '), String((e as { stderr?: string }).stderr ?? (e as Error).message));
  }
}

async function sysctl(key: string, value: string): Promise<void> {
  await cmd(['sysctl', '-q', '-w', `${key}=${value}`]);
}

/** The rules as text, for logs and docs. */
export function iptablesRules(plan: NetfilterPlan): string[][] {
  const rules: string[][] = [];
  for (const own of plan.ownAddresses) rules.push(['-A', CHAIN, '-d', `${own}/32`, '-j', 'RETURN']);
  rules.push(['-A', CHAIN, '-m', 'addrtype', '--dst-type', 'BROADCAST', '-j', 'RETURN']);
  rules.push(['-A', CHAIN, '-m', 'addrtype', '--dst-type', 'MULTICAST', '-j', 'RETURN']);
  if (plan.passMark) {
    const mark = `0x${plan.passMark.toString(16)}`;
    rules.push(['-A', CHAIN, '-m', 'mark', '--mark', `${mark}/${mark}`, '-j', 'RETURN']);
  }
  if (!plan.routeEstablishedWhenDead) {
    rules.push(['-A', CHAIN, '-j', 'NFQUEUE', '--queue-num', String(plan.queueNum)]);
    return rules;
  }
  // A cluster IP's own traffic is never let through (a stack with no socket would answer it).
  for (const i of plan.interfaces) for (const ip of i.clusterIps) rules.push(['-A', CHAIN, '-d', `${ip}/32`, '-j', 'NFQUEUE', '--queue-num', String(plan.queueNum)]);
  // Routed traffic: queued while the engine reads the queue; with no reader it goes on unmarked, and the
  // FORWARD guard (forwardRules) decides.
  rules.push(['-A', CHAIN, '-j', 'NFQUEUE', '--queue-num', String(plan.queueNum), '--queue-bypass']);
  return rules;
}

/**
 * The filter table's FORWARD guard (method 1, routeEstablishedWhenDead), jumped to for packets that
 * arrived on a data-plane interface: a packet the engine accepted (its mark) or the kernel path passed
 * goes on; any other was let through by the queue with no engine reading it (the daemon is dead), and
 * goes on only when the kernel's connection tracking has seen its connection; a new or invalid one is
 * dropped. The conntrack match makes the kernel track connections in this namespace from the start, while
 * the daemon lives.
 */
export function forwardRules(plan: NetfilterPlan): string[][] {
  const hex = (m: number) => `0x${m.toString(16)}`;
  const rules: string[][] = [['-A', FORWARD_CHAIN, '-m', 'mark', '--mark', `${hex(ENGINE_ACCEPT_MARK)}/${hex(ENGINE_ACCEPT_MARK)}`, '-j', 'RETURN']];
  if (plan.passMark) rules.push(['-A', FORWARD_CHAIN, '-m', 'mark', '--mark', `${hex(plan.passMark)}/${hex(plan.passMark)}`, '-j', 'RETURN']);
  rules.push(['-A', FORWARD_CHAIN, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'RETURN']);
  rules.push(['-A', FORWARD_CHAIN, '-j', 'DROP']);
  return rules;
}

export function nftScript(plan: NetfilterPlan): string {
  if (plan.method === 'master-forward' || !plan.clusterMac) return '';
  const chains = plan.interfaces
    .map(
      (i, k) => `  chain ingress${k} {\n    type filter hook ingress device "${i.name}" priority -500;\n    ether daddr ${plan.clusterMac} meta pkttype set host\n  }`,
    )
    .join('\n');
  return `table netdev ${NFT_TABLE} {\n${chains}\n}\n`;
}

/**
 * The iptables-restore input that (re)creates the chain with its rules in one commit (--noflush: the
 * rest of the raw table is untouched; a declared chain that exists is flushed and refilled atomically,
 * so a chain left by a crashed run never passes a packet unqueued while it is replaced).
 */
export function iptablesRestoreInput(plan: NetfilterPlan): string {
  const raw = ['*raw', `:${CHAIN} - [0:0]`, ...iptablesRules(plan).map((r) => r.join(' ')), 'COMMIT'];
  // The FORWARD guard goes in with (and before any use of) the bypass: same commit.
  const filter = plan.routeEstablishedWhenDead ? ['*filter', `:${FORWARD_CHAIN} - [0:0]`, ...forwardRules(plan).map((r) => r.join(' ')), 'COMMIT'] : [];
  return [...filter, ...raw, ''].join('\n');
}

async function withInput(argv: readonly string[], input: string, what: string): Promise<void> {
  const child = run(argv[0]!, argv.slice(1), { timeout: 10_000 });
  child.child.stdin?.end(input);
  try {
    await child;
  } catch (e) {
    throw new NetfilterError(what, String((e as { stderr?: string }).stderr ?? (e as Error).message));
  }
}

/**
 * Sets the kernel up, fail-safe first (docs/dataplane.md, "When the daemon dies"): the queue rule goes in
 * before anything makes the stack accept the cluster's packets (cluster IPs on lo, promiscuous mode,
 * the pkttype rule), so at no moment does the kernel deliver or route a cluster packet nobody decided:
 * until the packet engine binds the queue, the queue drops. A chain and jumps left by a crashed run stay
 * in force while they are replaced (atomic restore; a jump is added only when missing).
 */
export async function setupNetfilter(plan: NetfilterPlan): Promise<void> {
  await withInput(['iptables-restore', '-w', '--noflush'], iptablesRestoreInput(plan), `iptables-restore (raw ${CHAIN} chain)`);
  if (plan.routeEstablishedWhenDead) {
    for (const i of plan.interfaces) {
      if (!(await attempt(['iptables', '-w', '-C', 'FORWARD', '-i', i.name, '-j', FORWARD_CHAIN]))) await cmd(['iptables', '-w', '-I', 'FORWARD', '1', '-i', i.name, '-j', FORWARD_CHAIN]);
    }
  }
  for (const i of plan.interfaces) {
    if (!(await attempt(['iptables', '-w', '-t', 'raw', '-C', 'PREROUTING', '-i', i.name, '-j', CHAIN]))) await cmd(['iptables', '-w', '-t', 'raw', '-A', 'PREROUTING', '-i', i.name, '-j', CHAIN]);
  }
  await sysctl('net.ipv4.conf.all.arp_ignore', '1');
  await sysctl('net.ipv4.conf.all.arp_announce', '2');
  await sysctl('net.ipv4.conf.all.rp_filter', '0');
  await sysctl('net.ipv4.conf.default.rp_filter', '0');
  await sysctl('net.ipv4.conf.lo.rp_filter', '0');
  for (const i of plan.interfaces) {
    await sysctl(`net.ipv4.conf.${i.name}.rp_filter`, '0');
    await sysctl(`net.ipv4.conf.${i.name}.arp_ignore`, '1');
  }
  if (plan.forwarding) await sysctl('net.ipv4.ip_forward', '1');
  for (const i of plan.interfaces) for (const ip of i.clusterIps) await cmd(['ip', 'addr', 'replace', `${ip}/32`, 'dev', 'lo']);
  if (plan.method === 'unicast-mac') for (const i of plan.interfaces) await cmd(['ip', 'link', 'set', 'dev', i.name, 'promisc', 'on']);
  if (plan.method === 'multicast-mac' && plan.clusterMac) for (const i of plan.interfaces) await cmd(['ip', 'maddr', 'add', plan.clusterMac, 'dev', i.name], true);
  const nft = nftScript(plan);
  // Replaced in one transaction (declare, delete, create): a table left by a crashed run never lapses.
  if (nft) await withInput(['nft', '-f', '-'], `add table netdev ${NFT_TABLE}\ndelete table netdev ${NFT_TABLE}\n${nft}`, 'nft -f (netdev ingress pkttype)');
}

/**
 * Removes everything setupNetfilter adds, the queue rule last: first the stack stops taking the
 * cluster's frames as its own (pkttype rule, promiscuous mode, multicast MAC) and stops owning the
 * cluster IPs, so no packet for a cluster IP reaches a socket-less stack (which would answer it with a
 * RST) in between. Never throws for what is already gone.
 */
export async function teardownNetfilter(plan: NetfilterPlan): Promise<void> {
  await cmd(['nft', 'delete', 'table', 'netdev', NFT_TABLE], true);
  if (plan.clusterMac) for (const i of plan.interfaces) await cmd(['ip', 'maddr', 'del', plan.clusterMac, 'dev', i.name], true);
  if (plan.method === 'unicast-mac') for (const i of plan.interfaces) await cmd(['ip', 'link', 'set', 'dev', i.name, 'promisc', 'off'], true);
  for (const i of plan.interfaces) for (const ip of i.clusterIps) await cmd(['ip', 'addr', 'del', `${ip}/32`, 'dev', 'lo'], true);
  for (const i of plan.interfaces) {
    // A crashed run may have left the jump more than once; remove every copy (bounded).
    for (let k = 0; k < 16 && (await attempt(['iptables', '-w', '-t', 'raw', '-D', 'PREROUTING', '-i', i.name, '-j', CHAIN])); k++);
  }
  await cmd(['iptables', '-w', '-t', 'raw', '-F', CHAIN], true);
  await cmd(['iptables', '-w', '-t', 'raw', '-X', CHAIN], true);
  for (const i of plan.interfaces) for (let k = 0; k < 16 && (await attempt(['iptables', '-w', '-D', 'FORWARD', '-i', i.name, '-j', FORWARD_CHAIN])); k++);
  await cmd(['iptables', '-w', '-F', FORWARD_CHAIN], true);
  await cmd(['iptables', '-w', '-X', FORWARD_CHAIN], true);
}

/** MAC address of an interface (from sysfs of this namespace). */
export async function interfaceMac(name: string): Promise<string> {
  const out = await cmd(['ip', '-j', 'link', 'show', 'dev', name]);
  const parsed = JSON.parse(out) as { address?: string }[];
  const mac = parsed[0]?.address;
  if (!mac) throw new NetfilterError(`ip link show dev ${name}`, 'no MAC address');
  return mac;
}

interface IpAddrLink {
  ifname: string;
  addr_info?: { local: string; prefixlen: number; broadcast?: string }[];
}

async function hostAddressList(): Promise<IpAddrLink[]> {
  return JSON.parse(await cmd(['ip', '-j', '-4', 'addr', 'show'])) as IpAddrLink[];
}

/** IPv4 addresses configured on the host (this namespace), excluding loopback. */
export async function ownAddresses(): Promise<string[]> {
  return (await hostAddressList()).filter((l) => l.ifname !== 'lo').flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
}

/**
 * The host's own IPv4 addresses (excluding loopback) and the broadcast addresses of their subnets: what
 * the kernel path must never decide (the control plane's keepalives go to the subnet broadcast).
 */
export async function ownAndBroadcastAddresses(): Promise<string[]> {
  const out = new Set<string>();
  for (const link of await hostAddressList()) {
    if (link.ifname === 'lo') continue;
    for (const a of link.addr_info ?? []) {
      out.add(a.local);
      if (a.prefixlen < 31) out.add(a.broadcast ?? ipv4Broadcast(a.local, a.prefixlen));
    }
  }
  return [...out];
}
