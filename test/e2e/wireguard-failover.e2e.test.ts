// WireGuard tunnels survive the death of the member carrying them (docs/tunnels.md, "Replication and
// takeover"): a three-member gateway cluster terminates the tunnels of several unmodified peers
// (wireguard-go, distinct interface names); every tunnel's state is replicated over the encrypted state
// sync; the inside's packets for a peer reach the tunnel's owner through the forward socket. Each peer
// streams TCP both ways through its tunnel to the inside echo server (checked byte for byte); the member
// owning the most tunnels is killed with SIGKILL mid-stream. Every connection completes intact, none is
// reset, and no peer makes a new handshake (`wg show IF latest-handshakes` unchanged). The peers' outer
// transport packets are captured around the takeover: no (receiver index, counter) pair appears twice.
// Then the control: with tunnels.wireguard.replicateKeys false (reloaded on the survivors), killing the
// owner of the most tunnels makes its peers handshake again, so the first part can fail.
import { readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterFixture, healthy, CLUSTER_IP, GWCTL_CMD } from './cluster-fixture.mjs';
import { waitFor, type Host } from '../harness/netns.mjs';
import { genkey, haveTools, pubkey, startPeer } from './wireguard-tools.js';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const SERVER = '192.0.2.100';
const PORT = 51820;
const N = Number(process.env.GWC_WG_PEERS ?? 6);
const PEERS = Array.from({ length: N }, (_, i) => ({ inner: `203.0.113.${16 * i + 1}`, allowed: `203.0.113.${16 * i}/28` }));

/**
 * Streams through one TCP connection for `ms`: 4 KiB every 20 ms out, the echo back; at the end the echo
 * is compared byte for byte. Reports the longest gap between two arrivals of echoed bytes.
 */
const STREAM_CLIENT = `
const net = require('node:net'); const { randomBytes } = require('node:crypto');
const [host, port, ms] = process.argv.slice(1); const sent = []; const got = []; let gotBytes = 0; let last = Date.now(); let stall = 0; let err;
const s = net.connect({ host, port: Number(port) }, () => {
  const until = Date.now() + Number(ms);
  const t = setInterval(() => { if (Date.now() >= until) { clearInterval(t); s.end(); return; } const c = randomBytes(4096); sent.push(c); s.write(c); }, 20);
});
s.on('data', (d) => { const now = Date.now(); stall = Math.max(stall, now - last); last = now; got.push(d); gotBytes += d.length; });
s.on('error', (e) => { err = e.code || e.message; });
s.on('close', () => { const a = Buffer.concat(sent); const b = Buffer.concat(got); console.log(JSON.stringify({ sent: a.length, received: b.length, equal: a.equals(b), stallMs: stall, error: err, localAddress: s.localAddress })); });
`;

interface PeerRow { publicKey: string; endpoint: string | null; owner: string | null }
interface TunnelsAnswer { peers: PeerRow[] }
interface StreamResult { sent: number; received: number; equal: boolean; stallMs: number; error?: string }

/**
 * (receiver index, counter) of each WireGuard transport message in a pcap file: link types Ethernet (1),
 * Linux cooked (113, 276: what `tcpdump -i any` writes), IPv4, UDP.
 */
function transportNonces(file: string): string[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20);
  const out: string[] = [];
  for (let o = 24; o + 16 <= b.length; ) {
    const incl = u32(o + 8);
    const p = o + 16;
    o = p + incl;
    if (o > b.length) break;
    let ip: number;
    let ethertype: number;
    if (link === 1) { ethertype = b.readUInt16BE(p + 12); ip = p + 14; }
    else if (link === 113) { ethertype = b.readUInt16BE(p + 14); ip = p + 16; }
    else if (link === 276) { ethertype = b.readUInt16BE(p); ip = p + 20; }
    else continue;
    if (ethertype !== 0x0800 || b[ip]! >> 4 !== 4 || b[ip + 9] !== 17) continue;
    const wg = ip + (b[ip]! & 15) * 4 + 8;
    if (wg + 16 > p + incl || b[wg] !== 4) continue;
    out.push(`${b.readUInt32LE(wg + 4)}:${b.readBigUInt64LE(wg + 8)}`);
  }
  return out;
}

describe.skipIf(!haveTools)('WireGuard failover: tunnels survive the death of their member without a new handshake', () => {
  let f: ClusterFixture;
  const tag = process.pid.toString(36);
  const ifnames = PEERS.map((_, i) => `wgf${tag}${i}`);
  const clientKeys = PEERS.map(() => genkey());
  let clusterPublic = '';
  const alive = new Set(M);

  async function peersList(via: string): Promise<TunnelsAnswer> {
    const r = await f.gwctl(['peers', 'list', '--json'], { endpoint: `http://${via}:7401` });
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as TunnelsAnswer;
  }

  async function handshakes(): Promise<number[]> {
    return Promise.all(f.clients!.map(async (c, i) => Number((await c.execOk(['wg', 'show', ifnames[i]!, 'latest-handshakes'])).stdout.trim().split(/\s+/)[1])));
  }

  async function stream(c: Host, ms: number): Promise<StreamResult> {
    const r = await c.exec(['node', '-e', STREAM_CLIENT, SERVER, '7000', String(ms)], { timeoutMs: ms + 60_000 });
    return JSON.parse(r.stdout.trim().split('\n').at(-1) || '{}') as StreamResult;
  }

  /** Every living member holds every peer's endpoint (its replica came); returns the owners as the first one sees them. */
  async function replicated(): Promise<PeerRow[]> {
    return waitFor(async () => {
      let rows: PeerRow[] | null = null;
      for (const m of alive) {
        const t = await peersList(m).catch(() => null);
        if (!t || t.peers.some((p) => !p.endpoint || !p.owner || !alive.has(p.owner))) return false;
        rows ??= t.peers;
      }
      return rows ?? false;
    }, { timeoutMs: 20_000, intervalMs: 250, what: "every member to hold every tunnel's replica" });
  }

  function mostTunnels(rows: PeerRow[]): string {
    const count = new Map<string, number>();
    for (const r of rows) count.set(r.owner!, (count.get(r.owner!) ?? 0) + 1);
    return [...count.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  }

  beforeAll(async () => {
    f = await ClusterFixture.create({
      members: 3,
      layout: 'gateway',
      clients: PEERS.length,
      extraConfig: {
        dataplane: { sessions: { mode: 'loose' } },
        tunnels: { wireguard: { privateKeyFile: 'wireguard.key', listenPort: PORT, interface: 'gwwg0', peers: PEERS.map((p, i) => ({ publicKey: pubkey(clientKeys[i]!), allowedIps: [p.allowed] })) } },
      },
    });
    // One cluster key, in every personality.
    const first = join(dirname(f.members[0]!.config), 'wireguard.key');
    const gen = execFileSync(GWCTL_CMD[0]!, [...GWCTL_CMD.slice(1), 'wg', 'genkey', '--out', first, '--json']).toString();
    clusterPublic = (JSON.parse(gen) as { publicKey: string }).publicKey;
    for (const m of f.members.slice(1)) copyFileSync(first, join(dirname(m.config), 'wireguard.key'));
    f.startMonitor(100);
    f.startAll();
    await f.waitForView((v) => healthy(v, M), { timeoutMs: 40_000, what: 'a healthy three-member cluster' });
    f.startEcho(f.server!, 's1');
    await waitFor(async () => (await f.server!.exec(['ss', '-Hltn', 'sport = :7000'])).stdout.includes('7000'), { timeoutMs: 10_000, what: 'the echo server to listen' });
    const dir = f.net.tmpDir();
    await Promise.all(PEERS.map(async (p, i) => {
      const c = f.clients![i]!;
      const ifname = ifnames[i]!;
      await startPeer(c, { ifname, key: clientKeys[i]!, dir, peerPublic: clusterPublic, endpoint: `${CLUSTER_IP}:${PORT}`, allowed: '192.0.2.0/24', inner: p.inner });
    }));
  }, 120_000);

  afterAll(async () => {
    if (f) {
      for (const ip of M) {
        const bad = f.logs.get(ip)?.filter((l) => (l.level as number) >= 50) ?? [];
        if (bad.length) console.log(ip, bad.slice(-5));
      }
    }
    await f?.destroy();
    for (const n of ifnames) rmSync(`/var/run/wireguard/${n}.sock`, { force: true });
  });

  it('kill -9 of the member owning the most tunnels: every stream completes intact, no reset, no new handshake, no nonce twice', async () => {
    // The tunnels come up (a first connection through each), and every member holds every replica.
    const first = await Promise.all(f.clients!.map((c) => stream(c, 300)));
    for (const r of first) {
      expect(r.error, f.recentLogs(20)).toBeUndefined();
      expect(r.equal).toBe(true);
    }
    const rows = await replicated();
    const victim = mostTunnels(rows);
    const victimTunnels = rows.filter((r) => r.owner === victim).length;
    const before = await handshakes();
    expect(before.every((t) => t > 0)).toBe(true);

    // Capture the peers' outer packets (both directions) around the takeover.
    const dir = f.net.tmpDir();
    const caps = f.clients!.map((c, i) => {
      const file = join(dir, `outer-${i}.pcap`);
      return { file, child: c.spawn('tcpdump', ['-i', 'any', '-n', '-U', '-w', file, 'udp', 'port', String(PORT)], { stdio: 'ignore' }) };
    });
    await Promise.all(f.clients!.map((c) => waitFor(async () => (await c.exec(['pgrep', '-x', 'tcpdump'])).stdout.trim() !== '', { timeoutMs: 10_000, what: 'tcpdump' })));

    const streams = Promise.all(f.clients!.map((c) => stream(c, 6000)));
    await new Promise((r) => setTimeout(r, 2500)); // the streams are under way (not an assumption about speed)
    const killedAt = f.kill9(victim);
    console.log(`killed ${victim} at ${new Date(killedAt).toISOString().slice(14, 23)}`);
    alive.delete(victim);
    const survivors = M.filter((m) => alive.has(m));
    await f.waitForView((v) => healthy(v, survivors), { since: killedAt, timeoutMs: 30_000, what: 'the survivors to take the units over' });
    const results = await streams;
    for (const c of caps) c.child.kill('SIGINT');
    await Promise.all(caps.map((c) => new Promise((r) => (c.child.exitCode !== null ? r(null) : c.child.once('exit', r)))));

    for (const m of survivors) console.log(m, (f.logs.get(m) ?? []).filter((l) => /^wireguard: (took|tunnel handed)/.test(String(l.msg)) && l.time >= killedAt - 60_000).map((l) => `${new Date(l.time).toISOString().slice(14, 23)} ${l.msg} ${l.peer} ${JSON.stringify(l.from)} v${l.version}`).join('\n  '));
    for (const m of survivors) console.log(m, JSON.stringify((await peersList(m).catch(() => null) as unknown as { drops?: unknown })?.drops));
    console.log(`failover: ${N} peers, killed ${victim} owning ${victimTunnels} tunnels; longest stall per connection (ms): ${results.map((r) => r.stallMs).join(', ')}`);
    for (const r of results) {
      expect(r.error, f.recentLogs(30)).toBeUndefined();
      expect(r).toMatchObject({ equal: true });
      expect(r.received).toBe(r.sent);
      expect(r.sent).toBeGreaterThan(0);
    }
    expect(await handshakes()).toEqual(before);
    // No (receiver index, counter) twice in either direction, over every peer's capture.
    let total = 0;
    for (const c of caps) {
      const n = transportNonces(c.file);
      total += n.length;
      expect(new Set(n).size).toBe(n.length);
    }
    expect(total).toBeGreaterThan(100);
    // The survivors carry every tunnel now.
    const after = await replicated();
    expect(after.every((r) => r.owner !== victim)).toBe(true);
  }, 120_000);

  it('control: with replicateKeys off, the same kill makes the dead owner\'s peers handshake again', async () => {
    const survivors = M.filter((m) => alive.has(m));
    for (const ip of survivors) {
      const m = f.member(ip);
      const raw = JSON.parse(readFileSync(m.config, 'utf8'));
      raw.tunnels.wireguard.replicateKeys = false;
      writeFileSync(m.config, JSON.stringify(raw, null, 2));
    }
    const since = Date.now();
    for (const ip of survivors) f.signal(ip, 'SIGHUP');
    for (const ip of survivors) await waitFor(() => f.logLine(ip, /^wireguard: endpoint listening/, since), { timeoutMs: 20_000, what: `${ip}'s endpoint to restart` });
    // The restarted endpoints hold no keypairs: the peers forget their sessions and handshake again.
    for (const [i, c] of f.clients!.entries()) {
      await c.execOk(['wg', 'set', ifnames[i]!, 'peer', clusterPublic, 'remove']);
      await c.execOk(['wg', 'set', ifnames[i]!, 'peer', clusterPublic, 'endpoint', `${CLUSTER_IP}:${PORT}`, 'allowed-ips', '192.0.2.0/24']);
    }
    const first = await Promise.all(f.clients!.map((c) => stream(c, 300)));
    for (const r of first) expect(r.equal).toBe(true);
    const rows = await replicated();
    const victim = mostTunnels(rows);
    const victims = rows.map((r, i) => (r.owner === victim ? i : -1)).filter((i) => i >= 0);
    const before = await handshakes();
    const streams = Promise.all(f.clients!.map((c) => stream(c, 4000)));
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = f.kill9(victim);
    alive.delete(victim);
    const last = M.filter((m) => alive.has(m));
    // Each of the dead owner's peers handshakes again (the new owner has no keypair for it: the peer's
    // messages are unknown-index there, and wireguard-go handshakes again after KEEPALIVE_TIMEOUT +
    // REKEY_TIMEOUT without an answer, or the new owner initiates when the inside answers the peer).
    try {
      await waitFor(async () => {
        const now = await handshakes();
        return victims.every((i) => now[i] !== before[i]);
      }, { timeoutMs: 60_000, intervalMs: 1000, what: "the dead owner's peers to handshake again" });
    } catch (e) {
      for (const m of last) console.log(m, JSON.stringify((await peersList(m).catch(() => null) as unknown as { drops?: unknown })?.drops), (f.logs.get(m) ?? []).filter((l) => l.time >= killedAt).map((l) => l.msg).slice(-30).join(' | '));
      throw e;
    }
    await streams;
  }, 120_000);
});
