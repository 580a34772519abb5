// WireGuard interoperability on a real network: gwcluster's WireGuard endpoint (the TypeScript handshake
// core over the addon's data path: libsodium, replay window, TUN device) on a gateway host, and two
// unmodified peers (Debian's wireguard-go configured with `wg`) in client namespaces. Each peer brings its
// tunnel up, and a real TCP connection through each tunnel to a server on the inside network carries
// data byte for byte; forged initiations (bad MAC1), garbage and unknown-index transport messages to the
// port are counted per reason and dropped, and the endpoint keeps serving. A second endpoint, always
// "under load", makes a third peer (with a preshared key) complete its handshake through a cookie reply
// and MAC2.
//
// This slice runs the endpoint on one gateway host, not yet inside gwclusterd: docs/tunnels.md says
// what the cluster integration adds (ownership by work unit, the inside-to-owner path).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topology, waitFor, type Host } from '../harness/netns.mjs';
import { TCP_CLIENT, UDP_SEND, genkey, haveTools, pubkey } from './wireguard-tools.js';

const ENDPOINT_TOOL = new URL('./tools/wg-endpoint.mjs', import.meta.url).pathname;
const ECHO = new URL('./tools/echo-server.mjs', import.meta.url).pathname;
const GW_OUTSIDE = '198.51.100.10';
const SERVER = '192.0.2.100';
const PORT = 51820;
/** Inner addresses: each peer's tunnel address and allowed IPs on the gateway. */
const PEERS = [
  { client: '198.51.100.21', inner: '203.0.113.65', allowed: '203.0.113.64/28' },
  { client: '198.51.100.22', inner: '203.0.113.81', allowed: '203.0.113.80/28' },
];
/** The peer of the second endpoint (port LOADED_PORT, cookie replies demanded for every handshake). */
const LOADED = { client: '198.51.100.23', inner: '203.0.113.97', allowed: '203.0.113.96/28' };
const LOADED_PORT = 51821;


interface EndpointStatus {
  status: { publicKey: string; endpoint: { address: string } | null; latestHandshakeMs: number | null; rxPackets: number; txPackets: number; rxBytes: number; txBytes: number }[];
  drops: { handshake: Record<string, number>; transport: Record<string, number> };
}

/** One gwcluster WireGuard endpoint process (test/e2e/tools/wg-endpoint.mjs) on the gateway. */
class EndpointProcess {
  readonly lines: Record<string, unknown>[] = [];
  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => { try { this.lines.push(JSON.parse(l)); } catch { /* not JSON */ } });
  }
  ready() {
    return waitFor(() => this.lines.some((l) => l.ready), { timeoutMs: 15_000, what: 'the WireGuard endpoint to listen' });
  }
  async status(): Promise<EndpointStatus> {
    const before = this.lines.length;
    this.child.stdin!.write('status\n');
    await waitFor(() => this.lines.slice(before).some((l) => 'status' in l), { timeoutMs: 10_000, what: 'endpoint status' });
    return this.lines.slice(before).find((l) => 'status' in l) as never;
  }
}

describe.skipIf(!haveTools)('WireGuard endpoint with wireguard-go peers', () => {
  let net: Topology;
  let gw: Host;
  let server: Host;
  const clients: Host[] = [];
  let loadedClient: Host;
  const tag = process.pid.toString(36);
  const ifnames = [...PEERS.map((_, i) => `wgt${tag}${i}`), `wgt${tag}L`];
  const tunNames = [`gwt${tag}a`, `gwt${tag}b`];
  let endpoint: EndpointProcess;
  let loadedEndpoint: EndpointProcess;

  async function tcpThrough(c: Host, bytes: number) {
    const r = await c.exec(['node', '-e', TCP_CLIENT, SERVER, '7000', String(bytes)], { timeoutMs: 30_000 });
    return JSON.parse(r.stdout.trim().split('\n').at(-1) || '{}') as { sent?: number; received?: number; equal?: boolean; localAddress?: string; error?: string };
  }

  function startEndpoint(dir: string, name: string, cfg: Record<string, unknown>): EndpointProcess {
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(cfg), { mode: 0o600 });
    return new EndpointProcess(gw.spawn(process.execPath, [ENDPOINT_TOOL, path], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }

  /** wireguard-go in the foreground (tracked, killed by destroy()), configured by wg, its inner address routed to the inside. */
  async function startPeer(c: Host, ifname: string, dir: string, key: string, gwPublic: string, port: number, inner: string, psk?: string) {
    c.spawn('wireguard-go', ['-f', ifname], { stdio: 'ignore', env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
    await waitFor(async () => (await c.exec(['ip', 'link', 'show', ifname])).code === 0, { timeoutMs: 10_000, what: `${ifname} to appear` });
    const keyFile = join(dir, `${ifname}.key`);
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    const pskArgs: string[] = [];
    if (psk) {
      writeFileSync(join(dir, `${ifname}.psk`), `${psk}\n`, { mode: 0o600 });
      pskArgs.push('preshared-key', join(dir, `${ifname}.psk`));
    }
    await c.execOk(['wg', 'set', ifname, 'private-key', keyFile, 'peer', gwPublic, ...pskArgs, 'endpoint', `${GW_OUTSIDE}:${port}`, 'allowed-ips', '192.0.2.0/24']);
    await c.execOk(['ip', 'addr', 'add', `${inner}/32`, 'dev', ifname]);
    await c.execOk(['ip', 'link', 'set', ifname, 'up']);
    await c.execOk(['ip', 'route', 'add', '192.0.2.0/24', 'dev', ifname]);
  }

  beforeAll(async () => {
    net = await Topology.create();
    const outside = await net.addSegment('outside');
    const inside = await net.addSegment('inside');
    gw = await net.addHost('gw', [{ segment: outside, address: `${GW_OUTSIDE}/24`, ifname: 'eth0' }, { segment: inside, address: '192.0.2.10/24', ifname: 'eth1' }]);
    server = await net.addHost('s1', [{ segment: inside, address: `${SERVER}/24`, ifname: 'eth0' }]);
    await server.ip('route', 'add', 'default', 'via', '192.0.2.10');
    for (const [i, p] of PEERS.entries()) clients.push(await net.addHost(`c${i + 1}`, [{ segment: outside, address: `${p.client}/24`, ifname: 'eth0' }]));
    loadedClient = await net.addHost('c9', [{ segment: outside, address: `${LOADED.client}/24`, ifname: 'eth0' }]);
    await gw.execOk(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    server.spawn(process.execPath, [ECHO, '--tcp', '7000', '--name', 's1'], { stdio: ['pipe', 'ignore', 'inherit'] });
    await waitFor(async () => (await server.exec(['ss', '-Hltn', 'sport = :7000'])).stdout.includes('7000'), { timeoutMs: 10_000, what: 'the echo server to listen' });

    const dir = net.tmpDir();
    const gwKey = genkey();
    const clientKeys = PEERS.map(() => genkey());
    const loadedKey = genkey();
    const psk = execFileSync('wg', ['genpsk']).toString().trim();
    endpoint = startEndpoint(dir, 'endpoint', {
      privateKey: gwKey, listenAddress: GW_OUTSIDE, listenPort: PORT, tunName: tunNames[0],
      peers: PEERS.map((p, i) => ({ publicKey: pubkey(clientKeys[i]!), allowedIps: [p.allowed] })),
    });
    loadedEndpoint = startEndpoint(dir, 'loaded', {
      privateKey: gwKey, listenAddress: GW_OUTSIDE, listenPort: LOADED_PORT, tunName: tunNames[1], underLoadPerSecond: 0,
      peers: [{ publicKey: pubkey(loadedKey), allowedIps: [LOADED.allowed], presharedKey: psk }],
    });
    await endpoint.ready();
    await loadedEndpoint.ready();
    for (const p of PEERS) await gw.execOk(['ip', 'route', 'add', p.allowed, 'dev', tunNames[0]!]);
    await gw.execOk(['ip', 'route', 'add', LOADED.allowed, 'dev', tunNames[1]!]);
    for (const [i, p] of PEERS.entries()) await startPeer(clients[i]!, ifnames[i]!, dir, clientKeys[i]!, pubkey(gwKey), PORT, p.inner);
    await startPeer(loadedClient, ifnames[2]!, dir, loadedKey, pubkey(gwKey), LOADED_PORT, LOADED.inner, psk);
  }, 60_000);

  afterAll(async () => {
    endpoint?.child.stdin?.end();
    loadedEndpoint?.child.stdin?.end();
    await net?.destroy();
    // wireguard-go's control sockets live in the shared /var/run/wireguard.
    for (const n of ifnames) rmSync(`/var/run/wireguard/${n}.sock`, { force: true });
  });

  it('each peer brings its tunnel up and a TCP connection through it to the inside server is byte-exact', async () => {
    const results = await Promise.all(clients.map((c) => tcpThrough(c, 256 * 1024)));
    for (const [i, r] of results.entries()) {
      expect(r.error).toBeUndefined();
      expect(r).toMatchObject({ sent: 256 * 1024, received: 256 * 1024, equal: true, localAddress: PEERS[i]!.inner });
    }
    for (const [i, c] of clients.entries()) {
      const hs = await c.execOk(['wg', 'show', ifnames[i]!, 'latest-handshakes']);
      expect(Number(hs.stdout.trim().split(/\s+/)[1])).toBeGreaterThan(0);
    }
    const s = await endpoint.status();
    expect(s.status).toHaveLength(2);
    for (const [i, p] of s.status.entries()) {
      expect(p.endpoint?.address).toBe(PEERS[i]!.client);
      expect(p.latestHandshakeMs).toBeGreaterThan(0);
      expect(p.rxBytes).toBeGreaterThan(256 * 1024);
      expect(p.txBytes).toBeGreaterThan(256 * 1024);
    }
    expect(s.drops.handshake['cookie-sent'] ?? 0).toBe(0);
  }, 60_000);

  it('forged initiations, garbage and unknown-index transport messages are counted and dropped; tunnels keep working', async () => {
    const forged = Buffer.concat([Buffer.from([1, 0, 0, 0]), randomBytes(144)]); // a well-sized initiation, bad MAC1
    const unknown = Buffer.concat([Buffer.from([4, 0, 0, 0]), randomBytes(4), Buffer.alloc(8), randomBytes(32)]);
    const garbage = Buffer.from('not wireguard');
    const list = [forged, forged, unknown, garbage, Buffer.from([2, 0, 0, 0, 1])].map((b) => b.toString('hex')).join(',');
    await clients[0]!.execOk(['node', '-e', UDP_SEND, GW_OUTSIDE, String(PORT), list]);
    const s = await waitFor(async () => {
      const st = await endpoint.status();
      const h = st.drops.handshake;
      return (h['bad-mac1'] ?? 0) >= 2 && (h.malformed ?? 0) >= 1 && st.drops.transport['unknown-index']! >= 1 && st.drops.transport.malformed! >= 1 ? st : false;
    }, { timeoutMs: 15_000, intervalMs: 250, what: 'the forged datagrams to be counted' });
    expect(s.drops.handshake['bad-mac1']).toBe(2);
    expect(endpoint.child.exitCode).toBeNull();
    const again = await Promise.all(clients.map((c) => tcpThrough(c, 64 * 1024)));
    for (const r of again) expect(r).toMatchObject({ received: 64 * 1024, equal: true });
  }, 60_000);

  it('under load, a peer with a preshared key completes its handshake through a cookie reply and MAC2', async () => {
    // wireguard-go stores the cookie and retries after REKEY_TIMEOUT (5 s) with MAC2; the TCP client's
    // SYN retransmissions carry the connection over that wait.
    const r = await tcpThrough(loadedClient, 64 * 1024);
    expect(r).toMatchObject({ received: 64 * 1024, equal: true, localAddress: LOADED.inner });
    const s = await loadedEndpoint.status();
    expect(s.drops.handshake['cookie-sent']).toBeGreaterThanOrEqual(1);
    expect(s.status[0]!.latestHandshakeMs).toBeGreaterThan(0);
    expect(s.status[0]!.endpoint?.address).toBe(LOADED.client);
  }, 60_000);
});
