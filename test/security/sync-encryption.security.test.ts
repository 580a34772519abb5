// Confidentiality of state sync on real namespaces (issue 10): TCP connections run from a client through
// a three-member gateway while tcpdump captures the cluster protocol at the master. Every StateSync on
// the wire carries its records sealed (none in the clear); opened with the receiver's key (the test holds
// the members' keys), the frames do hold the flows' records, and no captured datagram contains any of
// those records' flow keys, addresses and ports, or sequence numbers. A member killed mid-stream: its
// connections carry on at the survivors (the sealed records were installed).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncCipher } from '@gwcluster/security';
import { decodeEnvelope, decodeSignedMessage, decodeSyncRecords, type SessionRecord, type StateSync } from '@gwcluster/wire';
import { ClusterFixture, balanced, healthy } from '../e2e/cluster-fixture.mjs';
import { startCapture } from './attacker.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const CONNECTIONS = 40;
const SOAK_SECONDS = 8;
// As in test/e2e/failover.e2e.test.ts: client addresses whose flows fall in every member's share.
const LOCALS = Array.from({ length: 20 }, (_, i) => `198.51.100.${30 + i * 11}`);
const SERVERS = ['192.0.2.100', '203.0.113.100'];
const SOAK = new URL('../e2e/tools/soak.mjs', import.meta.url).pathname;

function stateSyncOf(payload: Uint8Array): StateSync | null {
  const e = decodeEnvelope(payload);
  if (!e.ok) return null;
  const s = decodeSignedMessage(e.value.signed);
  return s.ok && s.value.message.type === 'state-sync' ? s.value.message : null;
}

/** The frame's associated data, as the members bind it (packages/daemon/src/sync/sealed-sync.ts). */
function associated(m: StateSync): Uint8Array {
  const ad = Buffer.alloc(9);
  ad.writeBigUInt64BE(BigInt(m.seq), 0);
  ad.writeUInt8(m.snapshotComplete ? 1 : 0, 8);
  return ad;
}

const ipBytes = (ip: string) => Buffer.from(ip.split('.').map(Number));

describe('state sync on the wire', () => {
  let f: ClusterFixture;
  beforeAll(async () => {
    f = await ClusterFixture.create({ members: 3, layout: 'gateway', method: 'master-forward', clients: 1 });
    for (const a of LOCALS) await f.clients![0]!.addAddress('eth0', `${a}/24`);
    await f.server!.addAddress('eth0', '203.0.113.100/24');
    for (const m of f.members) await m.host.ip('route', 'add', '203.0.113.0/24', 'dev', 'eth1');
    f.startMonitor(100);
    f.startAll();
    await f.waitForView((v) => balanced(v, M), { timeoutMs: 30_000, what: 'a balanced cluster' });
    f.startEcho(f.server!, 's1');
    await new Promise((r) => setTimeout(r, 700)); // the echo service is listening
  }, 90_000);
  afterAll(async () => {
    await f?.destroy();
  });

  it('records travel sealed (no flow key, address, port or sequence number in clear) and a failover still carries the sessions', async () => {
    const master = f.latest()!.views[M[0]!]!.master!;
    const victim = M.find((ip) => ip !== master)!;
    const capture = await startCapture(f.member(master).host, 'udp and port 7400 and not broadcast', { ifname: 'eth1', name: 'sync' });
    const running = f
      .clients![0]!.exec([process.execPath, SOAK, '--targets', SERVERS.join(','), '--port', '7000', '--connections', String(CONNECTIONS), '--seconds', String(SOAK_SECONDS), '--local-addresses', LOCALS.join(','), '--idle-fail-ms', '10000'], { timeoutMs: 90_000 })
      .then((r) => {
        if (r.code !== 0) throw new Error(`soak failed (${r.code}): ${r.stderr}${r.stdout}`);
        return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { completed: number; failed: number; resets: number; errors: Record<string, number> };
      });
    await new Promise((r) => setTimeout(r, 4000));
    const survivors = M.filter((ip) => ip !== victim);
    const t0 = f.kill9(victim);
    await f.waitForView((v) => healthy(v, survivors), { since: t0, timeoutMs: 15_000, what: 'survivors own every unit' });
    const result = await running;
    const datagrams = await capture.stop();
    const counters: Record<string, Record<string, number>> = {};
    for (const ip of survivors) {
      const r = await f.gwctl(['status', '--json'], { endpoint: `http://${ip}:7401` });
      if (r.code !== 0) continue;
      const c = JSON.parse(r.stdout).cluster.counters as Record<string, number>;
      counters[ip] = Object.fromEntries(Object.entries(c).filter(([k, v]) => v > 0 && /auth\.sync\.|node\.sync\.|drop\.sync-|sessionDrop|installStale|handoversIncomplete/.test(k)));
    }
    const sum = (name: string) => Object.values(counters).reduce((n, c) => n + (c[name] ?? 0), 0);
    const diagnosis = JSON.stringify({ result, counters });
    // The failover carried the victim's connections: no reset, no packet dropped for lack of its session,
    // no sealed record refused.
    expect({ resets: result.resets, failed: result.failed, completed: result.completed }, diagnosis).toEqual({ resets: 0, failed: 0, completed: CONNECTIONS });
    expect(sum('node.dataplane.engine.sessionDropNoSession'), diagnosis).toBe(0);
    expect(Object.keys(counters).flatMap((ip) => Object.keys(counters[ip]!).filter((k) => k.includes('drop.sync-'))), diagnosis).toEqual([]);

    // Every StateSync captured: records sealed, none in the clear.
    const syncs = datagrams.flatMap((d) => {
      const m = stateSyncOf(d.payload);
      return m ? [{ d, m }] : [];
    });
    const sealed = syncs.filter((s) => s.m.sealed);
    expect(sealed.length, `${syncs.length} StateSync among ${datagrams.length} datagrams`).toBeGreaterThan(10);
    expect(syncs.filter((s) => s.m.records.length > 0)).toEqual([]);

    // Opened with the receivers' keys, the frames hold the flows' records (the search below is not vacuous).
    const keyDir = (ip: string) => dirname(f.member(ip).config);
    const publicKeys = new Map(M.map((ip) => [ip, new X509Certificate(readFileSync(join(keyDir(ip), 'member.crt'))).publicKey]));
    const ciphers = new Map(M.map((ip) => {
      const key = createPrivateKey(readFileSync(join(keyDir(ip), 'member.key'), 'utf8'));
      return [ip, new SyncCipher({ cluster: 'e2e', self: ip, incarnation: 0, privateKey: () => key, peerPublicKey: (p) => publicKeys.get(p) })];
    }));
    const records: SessionRecord[] = [];
    const isFlow = (r: SessionRecord) => LOCALS.some((l) => ipBytes(l).equals(Buffer.from(r.state.subarray(20, 24))));
    let victimFlows = 0;
    for (const { d, m } of sealed) {
      const opened = ciphers.get(d.dst)!.open(d.src, m.sealed!, associated(m));
      expect(opened.ok, opened.ok ? '' : opened.reason).toBe(true);
      if (!opened.ok) continue;
      const decoded = decodeSyncRecords(opened.plaintext);
      expect(decoded.ok).toBe(true);
      if (!decoded.ok) continue;
      records.push(...decoded.value.filter((r) => !r.removed));
      if (d.src === victim) victimFlows += decoded.value.filter((r) => !r.removed && isFlow(r)).length;
    }
    const flows = records.filter(isFlow);
    expect(flows.length, `${records.length} records opened`).toBeGreaterThan(CONNECTIONS / 2);
    // Among them the victim's own connections, sent to the master before it died (what the master carried on).
    expect(victimFlows, 'records of the connections through the victim, sealed for the master').toBeGreaterThan(0);

    // No captured datagram contains a flow's key, its addresses and ports, or its sequence numbers.
    const needles = new Map<string, Buffer>();
    for (const r of flows) {
      const s = Buffer.from(r.state);
      needles.set(`key ${Buffer.from(r.key).toString('hex')}`, Buffer.from(r.key));
      needles.set(`originator ${s.subarray(20, 36).toString('hex')}`, s.subarray(20, 36)); // IPv4 + 12 zero bytes
      needles.set(`ports ${s.subarray(52, 60).toString('hex')}`, s.subarray(52, 60)); // both ports, both MSS options
      needles.set(`seq ${s.subarray(60, 68).toString('hex')}`, s.subarray(60, 68)); // snd_nxt, snd_wl1
      needles.set(`rcv ${s.subarray(76, 84).toString('hex')}`, s.subarray(76, 84)); // rcv_nxt, rcv_adv
    }
    // A needle must be specific: records of connections not yet answered carry zero sequence fields.
    for (const [what, n] of [...needles]) if (n.filter((x) => x !== 0).length < 4) needles.delete(what);
    expect(needles.size).toBeGreaterThan(flows.length);
    const found: string[] = [];
    for (const d of datagrams) {
      const p = Buffer.from(d.payload);
      for (const [what, n] of needles) if (p.includes(n)) found.push(`${what} in a datagram ${d.src} > ${d.dst}`);
    }
    expect(found).toEqual([]);
    // The decrypted plaintext does contain them (the same search finds records in the clear).
    const plain = Buffer.concat(flows.map((r) => Buffer.concat([Buffer.from(r.key), Buffer.from(r.state)])));
    for (const n of needles.values()) expect(plain.includes(n)).toBe(true);
  }, 120_000);
});
