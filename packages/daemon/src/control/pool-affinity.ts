/**
 * Affinity for the address pool (docs/operator-guide.md, "Affinity"): when a pool address moves between
 * two live members (a failback, a rebalance), the connections that began on the old owner stay on it
 * until they end, and new ones go to the new owner.
 *
 * - The old owner ("server") keeps the address configured but stops answering ARP for it and drops new
 *   connections' SYNs to it (they are retransmitted to the new owner once its gratuitous ARP moved the
 *   clients), reads the connections it still serves on the address from its kernel (/proc/net/tcp), and
 *   sends them to every member (PoolAffinity, unicast, every second and on each change). When none are
 *   left it removes the address and sends an empty list.
 * - Every member keeps the latest list per (address, server): the record is replicated, so whichever
 *   member owns the address forwards the listed connections' packets to the server by MAC rewrite in
 *   its kernel (an nft netdev ingress map: address . client . client port . port -> the server's MAC,
 *   `fwd` out of the same interface), as the master of method 1 forwards units to their owners.
 * - The new owner configures and announces the address only once it has the previous owner's list (or
 *   after AFFINITY_WAIT_MS when it cannot have it), so no packet of an old connection reaches a kernel
 *   without its socket (which would answer with a RST).
 *
 * Only TCP over IPv4 to the member itself (a service on the pool address) is kept; other traffic to a
 * moved address goes to the new owner.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { HeldAddress, PoolMove } from '@gwcluster/cluster-core';
import type { AffinityFlow, MemberId, PoolAffinity } from '@gwcluster/wire';
import { LIMITS } from '@gwcluster/wire';
import { announceAddress, type AddressHolder } from './held-addresses.js';

const run = promisify(execFile);

/** How long a new owner waits for the previous owner's connections before it answers anyway, ms. */
export const AFFINITY_WAIT_MS = 1000;
/** How often a server re-reads its connections on a moved address, ms. */
export const AFFINITY_POLL_MS = 250;
/** How often a server re-sends its list (the messages are not acknowledged), ms. */
export const AFFINITY_RESEND_MS = 1000;

/** What affinity needs from the kernel; the real one is nft + /proc, tests use a fake. */
export interface AffinityKernel {
  /** The tables, once at start (replacing what a previous run left). */
  setup(): Promise<void>;
  /** The forwarding hook on `iface` (idempotent). */
  ensureInterface(iface: string): Promise<void>;
  /** Stop answering ARP for `address` and refuse new connections to it (true), or undo that (false). */
  draining(address: string, on: boolean): Promise<void>;
  /** The TCP connections to `address` this member's kernel holds (listeners and TIME-WAIT excluded). */
  connections(address: string): Promise<AffinityFlow[]>;
  /** Forward exactly `flows` of `address` to `mac` (replacing what was forwarded to that MAC for it). */
  forward(address: string, flows: readonly AffinityFlow[], mac: string | null, previous: readonly AffinityFlow[], previousMac: string | null): Promise<void>;
  macOf(member: MemberId): Promise<string | null>;
  teardown(): Promise<void>;
}

export interface AffinityDeps {
  readonly self: MemberId;
  readonly inner: AddressHolder;
  readonly kernel: AffinityKernel;
  readonly send: (to: MemberId, message: PoolAffinity) => void;
  /** Live members now (this one included). */
  readonly members: () => readonly MemberId[];
  readonly log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
  readonly now?: () => number;
}

interface Record_ {
  serial: number;
  receivedAt: number;
  flows: AffinityFlow[];
  /** What this member forwards for it now (it owns the address), and to which MAC. */
  installed: AffinityFlow[];
  installedMac: string | null;
}

interface Draining {
  readonly iface: string;
  flows: AffinityFlow[];
  lastSentAt: number;
}

interface Pending {
  readonly held: HeldAddress;
  readonly from: MemberId | 'unknown';
  readonly timer: NodeJS.Timeout;
}

const key = (f: AffinityFlow) => `${f.client}:${f.clientPort}:${f.port}`;
const sameFlows = (a: readonly AffinityFlow[], b: readonly AffinityFlow[]) => a.length === b.length && a.every((f, i) => key(f) === key(b[i]!));

/** An AddressHolder that keeps old connections on their member when a pool address moves. */
export class AffinityAddressHolder implements AddressHolder {
  /** address -> server -> its latest list. */
  private readonly records = new Map<string, Map<MemberId, Record_>>();
  private readonly draining = new Map<string, Draining>();
  private readonly pending = new Map<string, Pending>();
  /** Pool addresses this member answers for (owner, configured). */
  private readonly owned = new Set<string>();
  private serial: number;
  private tablesReady = false;
  private timer: NodeJS.Timeout | null = null;
  /** Serialises kernel work, so element adds and deletes keep their order. */
  private queue: Promise<void> = Promise.resolve();
  readonly counters = { sent: 0, received: 0, forwardedConnections: 0, keptConnections: 0, waitsTimedOut: 0 };

  constructor(private readonly d: AffinityDeps) {
    this.serial = (d.now ?? Date.now)();
  }

  /**
   * Removes what a previous run left; the tables themselves are made when the first pool address is
   * gained, so a member without a pool has no nft hook on its packets.
   */
  async start(): Promise<void> {
    await this.d.kernel.teardown().catch(() => {});
    this.timer = setInterval(() => this.enqueue(() => this.tick()), AFFINITY_POLL_MS);
    this.timer.unref();
  }

  held(): ReadonlyMap<string, string> {
    return this.d.inner.held();
  }

  change(gained: readonly HeldAddress[], lost: readonly HeldAddress[], moves: readonly PoolMove[] = []): void {
    const moveOf = new Map(moves.map((m) => [m.address, m]));
    const passLost: HeldAddress[] = [];
    for (const h of lost) {
      this.owned.delete(h.address);
      const p = this.pending.get(h.address);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(h.address);
        continue; // never configured
      }
      const to = moveOf.get(h.address)?.to;
      if (h.kind === 'pool' && to && to !== this.d.self && this.d.inner.held().has(h.address)) {
        this.draining.set(h.address, { iface: h.interface ?? '', flows: [], lastSentAt: 0 });
        this.enqueue(() => this.startDraining(h.address));
      } else passLost.push(h);
      this.enqueue(() => this.unforward(h.address));
    }
    const passGained: HeldAddress[] = [];
    for (const h of gained) {
      if (h.kind !== 'pool') {
        passGained.push(h);
        continue;
      }
      this.owned.add(h.address);
      if (this.draining.has(h.address)) {
        // It came back while this member still served old connections on it: they are local again.
        this.draining.delete(h.address);
        this.enqueue(async () => {
          await this.d.kernel.draining(h.address, false);
          this.broadcast(h.address, []);
          await this.refreshForwarding(h.address);
          await announceAddress(h.address, h.interface ?? '').catch(() => {});
        });
        continue;
      }
      const from = moveOf.get(h.address)?.from ?? null;
      if (from !== null && from !== this.d.self && !this.freshRecord(h.address, from)) {
        // Wait for the previous owner's list (it sends one, empty or not, as soon as it lets go).
        const timer = setTimeout(() => {
          if (this.pending.get(h.address)?.timer !== timer) return;
          this.counters.waitsTimedOut++;
          this.d.log('warn', 'address pool: no connection list from the previous owner in time; answering anyway', { address: h.address, from });
          this.takeNow(h.address);
        }, AFFINITY_WAIT_MS);
        timer.unref();
        this.pending.set(h.address, { held: h, from, timer });
        continue;
      }
      if (![...(this.records.get(h.address)?.values() ?? [])].some((r) => r.flows.length > 0)) {
        // Nothing to forward (the usual case, and a failover from a dead owner): answer at once.
        passGained.push(h);
        this.enqueue(() => this.ensureInterface(h.interface ?? ''));
        continue;
      }
      this.enqueue(async () => {
        await this.ensureInterface(h.interface ?? '');
        await this.refreshForwarding(h.address);
        if (this.owned.has(h.address)) this.d.inner.change([h], []);
      });
    }
    if (passGained.length > 0 || passLost.length > 0) this.d.inner.change(passGained, passLost);
  }

  /** A PoolAffinity from `from`. */
  onMessage(from: MemberId, m: PoolAffinity): void {
    if (from === this.d.self) return;
    // Bounded: at most a pool's worth of addresses are remembered (a list for an unknown one is dropped).
    if (!this.records.has(m.address) && this.records.size >= LIMITS.maxPoolAddresses) return;
    this.counters.received++;
    const bySrv = this.records.get(m.address) ?? new Map<MemberId, Record_>();
    this.records.set(m.address, bySrv);
    const r = bySrv.get(from);
    if (r && m.serial <= r.serial) return;
    bySrv.set(from, { serial: m.serial, receivedAt: (this.d.now ?? Date.now)(), flows: [...m.flows].sort((a, b) => key(a).localeCompare(key(b))), installed: r?.installed ?? [], installedMac: r?.installedMac ?? null });
    const p = this.pending.get(m.address);
    if (p && (p.from === from || p.from === 'unknown')) {
      this.takeNow(m.address);
      return;
    }
    if (this.owned.has(m.address) && !this.pending.has(m.address)) this.enqueue(() => this.refreshForwarding(m.address));
  }

  async releaseAll(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.draining.clear();
    await this.queue.catch(() => {});
    await this.d.inner.releaseAll();
    await this.d.kernel.teardown().catch(() => {});
  }

  /** The forwarding hook on `iface`; a failure is logged, and the address is answered for all the same. */
  private async ensureInterface(iface: string): Promise<void> {
    if (!this.tablesReady) {
      try {
        await this.d.kernel.setup();
        this.tablesReady = true;
      } catch (e) {
        this.d.log('warn', `address pool affinity: cannot set up nft (connections are not kept when an address moves): ${(e as Error).message}`);
        return;
      }
    }
    await this.d.kernel.ensureInterface(iface).catch((e: Error) => this.d.log('warn', `address pool affinity: cannot forward on ${iface}: ${e.message}`));
  }

  /** A list for `address` from `from` (any member for 'unknown') received lately, i.e. for this move. */
  private freshRecord(address: string, from: MemberId | 'unknown'): boolean {
    const since = (this.d.now ?? Date.now)() - 2 * AFFINITY_WAIT_MS;
    const bySrv = this.records.get(address);
    if (!bySrv) return false;
    return from === 'unknown' ? [...bySrv.values()].some((r) => r.receivedAt >= since) : (bySrv.get(from)?.receivedAt ?? 0) >= since;
  }

  private takeNow(address: string): void {
    const p = this.pending.get(address);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(address);
    this.enqueue(async () => {
      await this.ensureInterface(p.held.interface ?? '');
      await this.refreshForwarding(address);
      if (this.owned.has(address)) this.d.inner.change([p.held], []);
    });
  }

  private enqueue(work: () => Promise<void>): void {
    this.queue = this.queue.then(work).catch((e: Error) => this.d.log('warn', `address pool affinity: ${e.message}`));
  }

  private broadcast(address: string, flows: readonly AffinityFlow[]): void {
    this.serial = Math.max(this.serial + 1, (this.d.now ?? Date.now)());
    const m: PoolAffinity = { type: 'pool-affinity', address, serial: this.serial, flows: flows.slice(0, LIMITS.maxAffinityFlows) };
    for (const to of this.d.members()) if (to !== this.d.self) this.d.send(to, m);
    this.counters.sent++;
  }

  private async startDraining(address: string): Promise<void> {
    const s = this.draining.get(address);
    if (!s) return;
    // First no new connection, then the list: nothing opens between the read and the move.
    try {
      await this.d.kernel.draining(address, true);
      s.flows = await this.d.kernel.connections(address);
    } catch (e) {
      // Cannot keep them: let the address go as without affinity.
      this.d.log('warn', `address pool affinity: cannot keep the connections on ${address}: ${(e as Error).message}`);
      s.flows = [];
    }
    s.lastSentAt = (this.d.now ?? Date.now)();
    this.broadcast(address, s.flows);
    this.counters.keptConnections += s.flows.length;
    this.d.log('info', 'address pool: address moved; this member keeps serving its connections on it until they end', { address, connections: s.flows.length });
    if (s.flows.length === 0) await this.stopDraining(address, false);
  }

  private async stopDraining(address: string, announce = true): Promise<void> {
    const s = this.draining.get(address);
    if (!s) return;
    this.draining.delete(address);
    this.d.inner.change([], [{ address, kind: 'pool', interface: s.iface }]);
    await this.d.kernel.draining(address, false);
    if (announce) this.broadcast(address, []);
    this.d.log('info', 'address pool: the last connection on a moved address ended; address removed', { address });
  }

  private async tick(): Promise<void> {
    const now = (this.d.now ?? Date.now)();
    for (const [address, s] of [...this.draining]) {
      if (s.lastSentAt === 0) continue; // not started yet
      const flows = await this.d.kernel.connections(address);
      if (flows.length === 0) {
        s.flows = flows;
        await this.stopDraining(address);
        continue;
      }
      if (!sameFlows(flows, s.flows) || now - s.lastSentAt >= AFFINITY_RESEND_MS) {
        s.flows = flows;
        s.lastSentAt = now;
        this.broadcast(address, flows);
      }
    }
    // Records of members that are gone: their connections died with them.
    const live = new Set(this.d.members());
    for (const [address, bySrv] of this.records) {
      let changed = false;
      for (const [srv, r] of bySrv) {
        if (!live.has(srv) && r.flows.length > 0) {
          r.flows = [];
          changed = true;
        }
      }
      if (changed && this.owned.has(address)) await this.refreshForwarding(address);
    }
  }

  /** Makes the kernel forward exactly the recorded connections of `address` (owned here) to their servers. */
  private async refreshForwarding(address: string): Promise<void> {
    const bySrv = this.records.get(address);
    if (!bySrv) return;
    const live = new Set(this.d.members());
    for (const [srv, r] of bySrv) {
      const want = this.owned.has(address) && live.has(srv) ? r.flows : [];
      const mac = want.length > 0 ? await this.d.kernel.macOf(srv) : null;
      if (want.length > 0 && !mac) {
        this.d.log('warn', 'address pool affinity: no MAC for the member serving old connections; not forwarded yet', { address, member: srv });
        continue;
      }
      if (sameFlows(want, r.installed) && mac === (want.length > 0 ? r.installedMac : null)) continue;
      await this.d.kernel.forward(address, want, mac, r.installed, r.installedMac);
      this.counters.forwardedConnections += Math.max(0, want.length - r.installed.length);
      r.installed = [...want];
      r.installedMac = mac;
      this.d.log('info', 'address pool: forwarding old connections to the member that serves them', { address, member: srv, connections: want.length });
    }
  }

  private async unforward(address: string): Promise<void> {
    const bySrv = this.records.get(address);
    if (!bySrv) return;
    for (const r of bySrv.values()) {
      if (r.installed.length === 0) continue;
      await this.d.kernel.forward(address, [], null, r.installed, r.installedMac);
      r.installed = [];
      r.installedMac = null;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The kernel side: nft tables `gwcluster_affinity` (netdev: the forwarding map; arp: no ARP for a
// draining address; ip: no new connection to it) and /proc/net/tcp.
// ---------------------------------------------------------------------------------------------

const TABLE = 'gwcluster_affinity';

async function nft(script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nft: ${err.trim() || `exit code ${code}`}`))));
    child.stdin.end(script);
  });
}

/** /proc/net/tcp states kept: everything but TIME_WAIT (06), CLOSE (07) and LISTEN (0A). */
const SKIPPED_STATES = new Set(['06', '07', '0A']);

/** The connections to `address` in /proc/net/tcp text (x86 and other little-endian hosts print addresses reversed). */
export function parseProcTcp(text: string, address: string, littleEndian = true): AffinityFlow[] {
  const hexOf = (a: string) => {
    const o = a.split('.').map((x) => Number(x).toString(16).padStart(2, '0').toUpperCase());
    return (littleEndian ? o.reverse() : o).join('');
  };
  const want = hexOf(address);
  const out: AffinityFlow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const [local, remote, st] = [f[1]!, f[2]!, f[3]!];
    const [lip, lport] = local.split(':');
    if (lip !== want || SKIPPED_STATES.has(st)) continue;
    const [rip, rport] = remote.split(':') as [string, string];
    const bytes = [0, 2, 4, 6].map((i) => parseInt(rip.slice(i, i + 2), 16));
    const client = (littleEndian ? bytes.reverse() : bytes).join('.');
    out.push({ client, clientPort: parseInt(rport, 16), port: parseInt(lport!, 16) });
  }
  const seen = new Set<string>();
  return out.filter((f) => (seen.has(key(f)) ? false : (seen.add(key(f)), true))).sort((a, b) => key(a).localeCompare(key(b)));
}

export class NftAffinityKernel implements AffinityKernel {
  private readonly littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  private readonly interfaces = new Set<string>();

  async setup(): Promise<void> {
    // Replace whatever a previous run left (killed with its elements in place).
    await this.teardown().catch(() => {});
    this.interfaces.clear();
    await nft(
      [
        `table netdev ${TABLE} {`,
        '  map flows { type ipv4_addr . ipv4_addr . inet_service . inet_service : ether_addr; }',
        '}',
        `table arp ${TABLE} {`,
        '  set draining { type ipv4_addr; }',
        '  chain input { type filter hook input priority 0; arp operation request arp daddr ip @draining drop; }',
        '  chain output { type filter hook output priority 0; arp saddr ip @draining drop; }',
        '}',
        `table ip ${TABLE} {`,
        '  set draining { type ipv4_addr; }',
        '  chain input { type filter hook input priority -10; ip daddr @draining tcp flags & (syn | ack) == syn drop; }',
        '}',
        '',
      ].join('\n'),
    );
  }

  async ensureInterface(iface: string): Promise<void> {
    if (iface === '' || this.interfaces.has(iface)) return;
    const mac = (await readFile(`/sys/class/net/${iface}/address`, 'utf8').catch(() => '')).trim();
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new Error(`interface ${iface} has no MAC address (is it there?)`);
    // This member's own ARP requests use its primary address as the sender, never a pool address (which
    // would move the neighbours' caches back to it while it drains the address).
    await run('sysctl', ['-q', '-w', `net.ipv4.conf.${iface}.arp_announce=2`]).catch(() => {});
    await nft(
      [
        `table netdev ${TABLE} {`,
        `  chain ingress_${iface.replace(/[^A-Za-z0-9_]/g, '_')} {`,
        `    type filter hook ingress device "${iface}" priority -500;`,
        `    ip protocol tcp ether daddr set ip daddr . ip saddr . tcp sport . tcp dport map @flows ether saddr set ${mac} fwd to "${iface}"`,
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    this.interfaces.add(iface);
  }

  async draining(address: string, on: boolean): Promise<void> {
    const verb = on ? 'add' : 'delete';
    await nft(`${verb} element arp ${TABLE} draining { ${address} }\n${verb} element ip ${TABLE} draining { ${address} }\n`).catch((e: Error) => {
      if (on) throw e; // deleting what is not there is fine
    });
  }

  async connections(address: string): Promise<AffinityFlow[]> {
    return parseProcTcp(await readFile('/proc/net/tcp', 'utf8'), address, this.littleEndian);
  }

  async forward(address: string, flows: readonly AffinityFlow[], mac: string | null, previous: readonly AffinityFlow[], _previousMac: string | null): Promise<void> {
    const el = (f: AffinityFlow) => `${address} . ${f.client} . ${f.clientPort} . ${f.port}`;
    const want = new Set(flows.map(key));
    const gone = previous.filter((f) => !want.has(key(f)));
    const lines: string[] = [];
    // Deleted one element per command: a missing element must not fail the others.
    for (const f of gone) lines.push(`delete element netdev ${TABLE} flows { ${el(f)} }`);
    for (const l of lines) await nft(`${l}\n`).catch(() => {});
    if (flows.length > 0 && mac) {
      for (let i = 0; i < flows.length; i += 256) {
        await nft(`add element netdev ${TABLE} flows { ${flows.slice(i, i + 256).map((f) => `${el(f)} : ${mac}`).join(', ')} }\n`);
      }
    }
  }

  async macOf(member: MemberId): Promise<string | null> {
    const look = async () => {
      const r = await run('ip', ['-4', 'neigh', 'show', member]).catch(() => ({ stdout: '' }));
      return /lladdr ([0-9a-f:]{17})/i.exec(r.stdout)?.[1]?.toLowerCase() ?? null;
    };
    const known = await look();
    if (known) return known;
    await run('ping', ['-c', '1', '-W', '1', member]).catch(() => {});
    return look();
  }

  async teardown(): Promise<void> {
    for (const family of ['netdev', 'arp', 'ip']) await nft(`delete table ${family} ${TABLE}\n`).catch(() => {});
  }
}
