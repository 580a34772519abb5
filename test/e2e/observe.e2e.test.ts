// Observability on a real cluster in network namespaces (gateway layout, three members with the data
// plane): the members' /metrics pass promtool and hold every metric the dashboard and the alert rules
// query; the read-only metrics token scrapes but cannot act; gwctl diagnose collects every member;
// gwctl capture of one work unit on the master (which receives every client packet, method 1) holds the
// packets of that unit only, by the addon's classifier, and tcpdump reads the file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyBatch, classifyFlow, packBatch } from '@gwcluster/native-addon';
import { ClusterFixture, balanced, CLUSTER_IP, INSIDE_CLUSTER_IP, TOKEN, GWCTL } from './cluster-fixture.mjs';

const M = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const METRICS_TOKEN = 'e2e-metrics-token-0123456789';
const OBS = fileURLToPath(new URL('../../appliance/observability/', import.meta.url));
const SPORTS = Array.from({ length: 64 }, (_, i) => 40000 + i);
const PER_SPORT = 3;

/** The records of a classic pcap file (little-endian, as gwclusterd writes it). */
function pcapFrames(buf: Buffer): Buffer[] {
  expect(buf.readUInt32LE(0)).toBe(0xa1b2c3d4);
  expect(buf.readUInt32LE(20)).toBe(1); // Ethernet
  const frames: Buffer[] = [];
  for (let at = 24; at < buf.length; ) {
    const len = buf.readUInt32LE(at + 8);
    frames.push(buf.subarray(at + 16, at + 16 + len));
    at += 16 + len;
  }
  return frames;
}

let f: ClusterFixture;
const dir = mkdtempSync(join(tmpdir(), 'gwcluster-observe-e2e-'));

beforeAll(async () => {
  f = await ClusterFixture.create({ members: 3, layout: 'gateway', method: 'master-forward', extraConfig: { cluster: { rebalanceThreshold: 0.5 }, admin: { metricsToken: METRICS_TOKEN } } });
  f.startMonitor(100);
  f.startAll();
  await f.waitForView((v) => balanced(v, M), { timeoutMs: 30_000, what: 'a balanced cluster' });
}, 90_000);

afterAll(async () => {
  await f?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(ip: string, token: string): Promise<{ status: number; text: string }> {
  const r = await f.ops.exec([process.execPath, '-e', `fetch('http://${ip}:7401/metrics',{headers:{authorization:'Bearer ${token}'}}).then(async r=>process.stdout.write(r.status+'\\n'+await r.text()))`]);
  const nl = r.stdout.indexOf('\n');
  return { status: Number(r.stdout.slice(0, nl)), text: r.stdout.slice(nl + 1) };
}

describe('observability on a running cluster', () => {
  it('every member scrapes with the metrics token, passes promtool, and exports what the dashboard and the rules query', async () => {
    const families = new Set<string>();
    // Each member exports its own units; their sum is the table (scraped together, retried while a
    // unit moves between two scrapes).
    let scrapes: { status: number; text: string }[] = [];
    let units = 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      scrapes = await Promise.all(M.map((ip) => scrape(ip, METRICS_TOKEN)));
      units = scrapes.reduce((sum, s) => sum + Number(/^gwcluster_member_units\{member="[^"]+"\} (\d+)$/m.exec(s.text)?.[1] ?? NaN), 0);
      if (units === 1024) break;
    }
    expect(units).toBe(1024);
    for (const [i, ip] of M.entries()) {
      const { status, text } = scrapes[i]!;
      expect(status).toBe(200);
      expect([...text.matchAll(/^gwcluster_member_units\{member="([^"]+)"\}/gm)].map((m) => m[1])).toEqual([ip]);
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`, ip).toBe('');
      expect(check.status).toBe(0);
      for (const m of text.matchAll(/^# TYPE (\S+) /gm)) families.add(m[1]!);
      expect(text).toMatch(/^gwcluster_certificate_expiry_timestamp_seconds\{member="[^"]+",certificate="member"\} \d+$/m);
    }
    const dashboard = readFileSync(join(OBS, 'gwcluster-dashboard.json'), 'utf8');
    const rules = readFileSync(join(OBS, 'gwcluster-alerts.yml'), 'utf8');
    const queried = new Set([...`${dashboard}\n${rules}`.matchAll(/\b(gwclusterd?_[a-z0-9_]+)\b/g)].map((m) => m[1]!));
    expect(queried.size).toBeGreaterThan(20);
    for (const name of queried) expect(families.has(name), name).toBe(true);
  }, 60_000);

  it('the metrics token cannot drain (gwctl exit 4) and nothing is drained', async () => {
    const r = await f.ops.exec([process.execPath, GWCTL, '--endpoint', `http://${M[0]}:7401`, '--token', METRICS_TOKEN, 'drain', M[1]!, '--no-wait']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/GW_FORBIDDEN: .*read-only/);
    const members = JSON.parse((await f.gwctl(['members', '--json'])).stdout) as { members: { draining: boolean }[] };
    expect(members.members.filter((m) => m.draining)).toEqual([]);
  });

  it('gwctl diagnose: one archive with every member\'s files, no token inside', async () => {
    const archive = join(dir, 'diag.tar.gz');
    const r = await f.gwctl(['diagnose', '--out', archive]);
    expect(r.code, r.stderr).toBe(0);
    const out = join(dir, 'diag');
    spawnSync('mkdir', ['-p', out]);
    expect(spawnSync('tar', ['-xzf', archive, '-C', out]).status).toBe(0);
    const root = join(out, readdirSync(out)[0]!);
    for (const ip of M) {
      expect(readdirSync(join(root, ip)), ip).toHaveLength(9);
      const logs = readFileSync(join(root, ip, 'logs.jsonl'), 'utf8').trim().split('\n');
      expect(logs.length, ip).toBeGreaterThan(0);
      for (const l of logs) expect((JSON.parse(l) as { member?: string; cluster?: string }).cluster).toBe('e2e');
      const text = readdirSync(join(root, ip)).map((file) => readFileSync(join(root, ip, file), 'utf8')).join('\n');
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(METRICS_TOKEN);
    }
  }, 60_000);

  it('gwctl capture --unit N on the master: only unit N\'s packets, all of the flows of unit N, readable by tcpdump', async () => {
    const client = f.clients![0]!;
    const src = client.address();
    const unitOf = (sport: number) => classifyFlow({ proto: 'udp', src, sport, dst: CLUSTER_IP, dport: 7001 }).unit;
    const unit = unitOf(SPORTS[0]!);
    const ofUnit = SPORTS.filter((p) => unitOf(p) === unit);
    expect(SPORTS.filter((p) => unitOf(p) !== unit).length, 'the traffic spans other units too').toBeGreaterThan(30);
    const master = (JSON.parse((await f.gwctl(['cluster', '--json'])).stdout) as { master: string }).master;
    const pcap = join(dir, `unit-${unit}.pcap`);
    const since = Date.now();
    const capture = f.gwctl(['capture', '--unit', String(unit), '--count', '1000', '--seconds', '8', '--interface', 'eth0', '--out', pcap], { endpoint: `http://${master}:7401` });
    // The master logs the capture once it is open.
    for (let i = 0; i < 100 && !f.logLine(master, /capture of unit/, since); i++) await new Promise((r) => setTimeout(r, 100));
    expect(f.logLine(master, /capture of unit/, since), 'the capture opened').toBeDefined();
    // Datagrams from each source port to the cluster IP: the master receives them all (method 1).
    const send = `const d=require('node:dgram');const ports=${JSON.stringify(SPORTS)};let left=ports.length;for(const p of ports){const s=d.createSocket('udp4');s.bind(p,()=>{let n=0;const go=()=>{s.send('unit-capture-'+p,7001,'${CLUSTER_IP}',()=>{if(++n<${PER_SPORT})setTimeout(go,20);else{s.close();if(--left===0)process.exit(0);}});};go();});}`;
    const sent = await client.exec([process.execPath, '-e', send]);
    expect(sent.code, sent.stderr).toBe(0);
    const r = await capture;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/wrote .*unit-\d+\.pcap/);
    const frames = pcapFrames(readFileSync(pcap));
    expect(frames.length, 'frames captured').toBeGreaterThanOrEqual(ofUnit.length * PER_SPORT);
    // The addon's classifier (native) puts every captured frame in unit N.
    const { packets, offsets } = packBatch(frames);
    const units = classifyBatch(packets, offsets, [CLUSTER_IP, INSIDE_CLUSTER_IP], { frames: true });
    expect([...new Set(units)]).toEqual([unit]);
    // Every datagram of the unit's flows is there (the client's to the cluster IP).
    const toCluster = frames.filter((fr) => fr.readUInt16BE(12) === 0x0800 && fr[23] === 17 && fr.subarray(30, 34).join('.') === CLUSTER_IP);
    const sports = toCluster.map((fr) => fr.readUInt16BE(34 + ((fr[14]! & 0x0f) * 4 - 20)));
    for (const p of ofUnit) expect(sports.filter((s) => s === p).length, `datagrams from port ${p}`).toBe(PER_SPORT);
    // tcpdump reads the file: one line per packet.
    const td = spawnSync('tcpdump', ['-nn', '-r', pcap], { encoding: 'utf8' });
    expect(td.status, td.stderr).toBe(0);
    expect(td.stdout.trim().split('\n')).toHaveLength(frames.length);
    // (tcpdump dissects port 7001 as AFS; the addresses and ports are what matter.)
    const esc = (x: string) => x.replaceAll('.', '\\.');
    for (const p of ofUnit) expect(td.stdout).toMatch(new RegExp(`IP ${esc(src)}\\.${p} > ${esc(CLUSTER_IP)}\\.7001: `));
  }, 60_000);
});
