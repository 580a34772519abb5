// The failover baseline: three Linux gateway boxes running keepalived (VRRPv3, one virtual router per
// segment in a sync group) and conntrackd (FTFW, primary-backup commit script) in front of a stateful
// nftables firewall, on the same namespace topology and addresses as the gwcluster gateway fixture
// (test/e2e/cluster-fixture.mjs, layout 'gateway'):
//
//   clients c1 (198.51.100.21, default via the outside VIP 198.51.100.10)
//     | outside segment 198.51.100.0/24
//   g1 g2 g3 (eth0 198.51.100.11.., eth1 192.0.2.11..; conntrackd syncs over eth1)
//     | inside segment 192.0.2.0/24
//   server s1 (192.0.2.100, default via the inside VIP 192.0.2.10)
//
// Every box has its own configuration, pid files, conntrackd UNIX socket, lock file and logs in the
// topology's temp dir; the harness removes the namespaces, their processes and the files at the end
// (also on failure, interruption or a SIGKILL of this process).
import { readFileSync, writeFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Topology, waitFor } from '../../test/harness/netns.mjs';
import { killPid, parseNamespacePids, runOk } from '../../test/harness/commands.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const OUTSIDE_VIP = '198.51.100.10';
export const INSIDE_VIP = '192.0.2.10';
const ECHO = join(HERE, '..', '..', 'test/e2e/tools/echo-server.mjs');

/** Fills the @NAME@ fields of a template from the repository; refuses to leave one unfilled. */
function render(file, vars) {
  const text = readFileSync(join(HERE, file), 'utf8').replace(/@([A-Z_]+)@/g, (m, k) => {
    if (!(k in vars)) throw new Error(`${file}: no value for ${m}`);
    return String(vars[k]);
  });
  return text;
}

export class KeepalivedBaseline {
  /**
   * @param {{ boxes?: number, clients?: number, advertInt?: string }} opts
   * advertInt: keepalived's advert_int in seconds (default 0.01, the smallest VRRPv3 interval).
   */
  static async create(opts = {}) {
    const b = new KeepalivedBaseline();
    try {
      await b.#init(opts);
    } catch (e) {
      await b.destroy().catch(() => {});
      throw e;
    }
    return b;
  }

  boxes = [];
  clients = [];

  async #init({ boxes = 3, clients = 1, advertInt = '0.01' }) {
    this.net = await Topology.create();
    this.inside = await this.net.addSegment('inside');
    this.outside = await this.net.addSegment('outside');
    const dir = this.net.tmpDir();
    const all = Array.from({ length: boxes }, (_, i) => [`198.51.100.${11 + i}`, `192.0.2.${11 + i}`]).flat();
    for (let i = 0; i < boxes; i++) {
      const name = `g${i + 1}`;
      const host = await this.net.addHost(name, [
        { segment: this.outside, address: `198.51.100.${11 + i}/24`, ifname: 'eth0' },
        { segment: this.inside, address: `192.0.2.${11 + i}/24`, ifname: 'eth1' },
      ], { forwarding: true });
      // The firewall first: it loads nf_conntrack in the namespace, whose sysctls then exist.
      await host.execOk(['nft', '-f', join(HERE, 'firewall.nft')]);
      await host.execOk(['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_tcp_loose=0']);
      await host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
      const bdir = join(dir, name);
      mkdirSync(bdir);
      const box = {
        name,
        host,
        dir: bdir,
        insideIp: `192.0.2.${11 + i}`,
        outsideIp: `198.51.100.${11 + i}`,
        keepalivedConf: join(bdir, 'keepalived.conf'),
        conntrackdConf: join(bdir, 'conntrackd.conf'),
        conntrackdLock: join(bdir, 'conntrackd.lock'),
        conntrackdSocket: join(bdir, 'conntrackd.ctl'),
        logs: { keepalived: '', conntrackd: '' },
      };
      writeFileSync(box.conntrackdConf, render('conntrackd.conf.in', {
        SYNC_ADDRESS: box.insideIp,
        LOG: join(bdir, 'conntrackd.log'),
        LOCK: box.conntrackdLock,
        SOCKET: box.conntrackdSocket,
        IGNORE: [...all, OUTSIDE_VIP, INSIDE_VIP].map((a) => `            IPv4_address ${a}`).join('\n'),
      }));
      writeFileSync(box.keepalivedConf, render('keepalived.conf.in', {
        NAME: name,
        PRIORITY: 200 - i * 50,
        ADVERT_INT: advertInt,
        OUTSIDE_VIP: `${OUTSIDE_VIP}/24`,
        INSIDE_VIP: `${INSIDE_VIP}/24`,
        SCRIPT: join(HERE, 'primary-backup.sh'),
        CONNTRACKD_CONF: box.conntrackdConf,
        CONNTRACKD_LOCK: box.conntrackdLock,
      }));
      this.boxes.push(box);
    }
    for (let i = 0; i < clients; i++) {
      const c = await this.net.addHost(`c${i + 1}`, [{ segment: this.outside, address: `198.51.100.${21 + i}/24`, ifname: 'eth0' }]);
      await c.ip('route', 'add', 'default', 'via', OUTSIDE_VIP);
      this.clients.push(c);
    }
    this.server = await this.net.addHost('s1', [{ segment: this.inside, address: '192.0.2.100/24', ifname: 'eth0' }]);
    await this.server.ip('route', 'add', 'default', 'via', INSIDE_VIP);
  }

  box(name) {
    const b = this.boxes.find((x) => x.name === name);
    if (!b) throw new Error(`no box ${name}`);
    return b;
  }

  /** Starts conntrackd, waits for its UNIX socket to answer, then keepalived (VRRP only, foreground). */
  async start(name, { flush = false } = {}) {
    const b = this.box(name);
    const ctd = b.host.spawn('conntrackd', ['-C', b.conntrackdConf], { stdio: ['ignore', 'pipe', 'pipe'] });
    ctd.stdout.on('data', (d) => (b.logs.conntrackd += d));
    ctd.stderr.on('data', (d) => (b.logs.conntrackd += d));
    await waitFor(async () => (await b.host.exec(['conntrackd', '-C', b.conntrackdConf, '-s'])).code === 0, { timeoutMs: 10_000, intervalMs: 50, what: `conntrackd on ${name}` });
    // flush: a rebooted box starts with an empty kernel conntrack table.
    if (flush) await b.host.execOk(['conntrackd', '-C', b.conntrackdConf, '-F']);
    const ka = b.host.spawn('keepalived', [
      '--vrrp', '--dont-fork', '--log-console', '--log-detail', '--no-syslog', '--use-file', b.keepalivedConf,
      '--pid', join(b.dir, 'keepalived.pid'), '--vrrp_pid', join(b.dir, 'vrrp.pid'), '--checkers_pid', join(b.dir, 'checkers.pid'),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    ka.stdout.on('data', (d) => (b.logs.keepalived += d));
    ka.stderr.on('data', (d) => (b.logs.keepalived += d));
  }

  async startAll() {
    for (const b of this.boxes) await this.start(b.name);
  }

  /** Names of the boxes holding the outside VIP (normally one). */
  async holders(vip = OUTSIDE_VIP) {
    const out = [];
    for (const b of this.boxes) {
      const r = await b.host.exec(['ip', '-4', '-o', 'addr', 'show']);
      if (r.stdout.includes(` ${vip}/`)) out.push(b.name);
    }
    return out;
  }

  /** The one box holding both VIPs, once it holds them and no other does; bounded. */
  async waitForActive({ timeoutMs = 15_000, not = [] } = {}) {
    return waitFor(async () => {
      const outside = await this.holders(OUTSIDE_VIP);
      const inside = await this.holders(INSIDE_VIP);
      const live = outside.filter((n) => !not.includes(n));
      const liveIn = inside.filter((n) => !not.includes(n));
      return live.length === 1 && liveIn.length === 1 && live[0] === liveIn[0] ? live[0] : undefined;
    }, { timeoutMs, intervalMs: 50, what: 'one active keepalived box holding both VIPs' });
  }

  /**
   * Wall-clock ms at which keepalived on `name` last ran its notify_master script (primary-backup.sh
   * logs each transition with a nanosecond timestamp) at or after `since`; undefined if it did not.
   */
  tookOverAt(name, since = 0) {
    let text = '';
    try {
      text = readFileSync(this.box(name).conntrackdConf.replace(/\.conf$/, '.notify.log'), 'utf8');
    } catch {
      return undefined;
    }
    const ts = text.split('\n').map((l) => /^(\d+\.\d+) transition to primary$/.exec(l)).filter(Boolean).map((m) => Math.round(Number(m[1]) * 1000));
    return ts.filter((t) => t >= since).at(-1);
  }

  /** Pids of every process in a box's namespace. */
  async pids(name) {
    const r = await runOk(['ip', 'netns', 'pids', this.box(name).host.nsName]);
    return parseNamespacePids(r.stdout);
  }

  /** kill -9 of every process of the box (keepalived, its VRRP child, conntrackd); returns the time of the kill. */
  async kill9(name) {
    const pids = await this.pids(name);
    const t = Date.now();
    for (const p of pids) killPid(p, 'SIGKILL');
    return t;
  }

  /**
   * Power loss: every process of the box killed and its links down at once (the switch ports go down,
   * so the box's interfaces lose carrier too). Returns the time of the kill.
   */
  async powerLoss(name) {
    const b = this.box(name);
    const pids = await this.pids(name);
    const batch = b.host.interfaces.map((i) => `link set ${i.port} down`).join('\n') + '\n';
    const down = runOk(['ip', '-n', this.net.switchNs, '-batch', '-'], { input: batch });
    const t = Date.now();
    for (const p of pids) killPid(p, 'SIGKILL');
    await down;
    return t;
  }

  /**
   * Brings a killed box back as after a reboot: links up, no VIP left on its interfaces, an empty
   * conntrack table, then conntrackd and keepalived started again (nopreempt: it comes back as a backup).
   */
  async restore(name) {
    const b = this.box(name);
    await waitFor(async () => (await this.pids(name)).length === 0, { timeoutMs: 5_000, intervalMs: 50, what: `${name}'s processes gone` });
    const batch = b.host.interfaces.map((i) => `link set ${i.port} up`).join('\n') + '\n';
    await runOk(['ip', '-n', this.net.switchNs, '-batch', '-'], { input: batch });
    for (const [vip, dev] of [[OUTSIDE_VIP, 'eth0'], [INSIDE_VIP, 'eth1']]) await b.host.exec(['ip', 'addr', 'del', `${vip}/24`, 'dev', dev]);
    for (const f of readdirSync(b.dir)) if (/\.(pid|lock|ctl)$/.test(f)) rmSync(join(b.dir, f), { force: true });
    await this.start(name, { flush: true });
  }

  /** Starts the echo service (TCP 7000, UDP 7001) on the server. */
  startEcho() {
    return this.server.spawn(process.execPath, [ECHO, '--tcp', '7000', '--udp', '7001', '--name', 's1'], { stdio: ['pipe', 'ignore', 'inherit'] });
  }

  async destroy() {
    await this.net?.destroy();
  }
}
