// gwctl as a process against a running gwclusterd (one member on loopback, its personality made and
// signed by gwctl itself): output, --json and exit codes; and a second member serving HTTPS with
// mutual TLS. Nothing leaves 127.0.0.0/8.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { chmodSync, copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const GWCTL = join(ROOT, 'packages/cli/bin/gwctl.js');
const GWCLUSTERD = join(ROOT, 'packages/daemon/bin/gwclusterd.js');
const TOKEN = 'cli-test-token-0123456789';
const DAEMON_VERSION = JSON.parse(readFileSync(join(ROOT, 'packages/daemon/package.json'), 'utf8')).version as string;
const CLI_VERSION = JSON.parse(readFileSync(join(ROOT, 'packages/cli/package.json'), 'utf8')).version as string;

/** A GET /v1/cluster answer of the current shape (for stand-in daemons). */
function clusterView(self: string, ids: string[]) {
  return {
    self, role: 'master', master: self, epoch: 3, configVersion: 1, keepalivePeriodMs: 100, tableVersion: 5,
    members: ids.map((id) => ({ id, role: id === self ? 'master' : 'member', units: 0, load: 0, loss: 0, watchdogPeriods: 2, lastHeardMsAgo: 10, draining: false })),
    units: { assigned: 0, unassigned: 1024, moving: 0, ownedHere: 0 }, counters: {},
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function gwctl(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [GWCTL, ...args], { env: { ...process.env, GWCTL_TOKEN: '', GWCTL_ENDPOINT: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function waitHealthy(url: string, opts: RequestInit = {}): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      // The role is told to authenticated callers only.
      const r = await fetch(`${url}/healthz`, { ...opts, headers: { authorization: `Bearer ${TOKEN}` } });
      if (r.ok && (await r.json()).role === 'master') return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gwclusterd at ${url} did not become master`);
}

const dir = mkdtempSync(join(tmpdir(), 'gwctl-test-'));
const procs: ChildProcess[] = [];
let endpoint = '';
let tlsEndpoint = '';
let e: string[] = [];

beforeAll(async () => {
  const [udp, admin, udp2, admin2] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  expect((await gwctl(['pki', 'init-ca', '--dir', join(dir, 'ca')])).code).toBe(0);
  const made = await gwctl([
    'personality', '--ca-dir', join(dir, 'ca'), '--out', join(dir, 'm1'), '--cluster-name', 'cli', '--cluster-ip', '198.51.100.10',
    '--member-ip', '127.0.0.1', '--prefix-length', '8', '--interface', 'lo', '--token', TOKEN, '--sign-bundle',
    '--set', JSON.stringify({ cluster: { port: udp, reclaimGraceMs: 0 }, admin: { port: admin }, clusterAddress: { mode: 'none' }, logLevel: 'warn' }),
  ]);
  expect(made.code, made.stderr).toBe(0);
  expect(made.stdout).toMatch(/bundle\.sig/);
  const tls = await gwctl([
    'personality', '--ca-dir', join(dir, 'ca'), '--out', join(dir, 'm2'), '--cluster-name', 'cli-tls', '--cluster-ip', '198.51.100.11',
    '--member-ip', '127.0.0.2', '--prefix-length', '8', '--interface', 'lo', '--token', TOKEN,
    '--set', JSON.stringify({ cluster: { port: udp2, reclaimGraceMs: 0 }, admin: { port: admin2, tls: { requireClientCertificate: true } }, clusterAddress: { mode: 'none' }, logLevel: 'warn' }),
  ]);
  expect(tls.code, tls.stderr).toBe(0);
  expect((await gwctl(['pki', 'client-cert', '--ca-dir', join(dir, 'ca'), '--out', join(dir, 'client'), '--ip', '127.0.0.1'])).code).toBe(0);
  for (const m of ['m1', 'm2']) procs.push(spawn(process.execPath, [GWCLUSTERD, '--config', join(dir, m, 'member.json')], { stdio: ['ignore', 'ignore', 'inherit'] }));
  endpoint = `http://127.0.0.1:${admin}`;
  tlsEndpoint = `https://127.0.0.2:${admin2}`;
  e = ['-e', endpoint, '-t', TOKEN];
  await waitHealthy(endpoint);
}, 30_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on('exit', r)))));
  rmSync(dir, { recursive: true, force: true });
});

describe('gwctl against a running gwclusterd', () => {
  it('status, cluster, members, units: aligned tables, and --json', async () => {
    const st = await gwctl([...e, 'status']);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/master 127\.0\.0\.1 +epoch \d+ +config v1 +keepalive 40 ms/);
    const cl = await gwctl([...e, 'cluster']);
    expect(cl.stdout).toMatch(/^FIELD +VALUE$/m);
    expect(cl.stdout).toMatch(/^configuration +v1$/m);
    const mem = await gwctl([...e, 'members']);
    expect(mem.stdout).toMatch(/^MEMBER +ROLE +VERSION +UNITS +LOAD +LOSS +WATCHDOG +LAST KEEPALIVE$/m);
    // The version column: the daemon's package version, as the member announced it.
    expect(mem.stdout).toMatch(new RegExp(`^127\\.0\\.0\\.1 +master +${DAEMON_VERSION.replaceAll('.', '\\.')} +1024 `, 'm'));
    const one = JSON.parse((await gwctl([...e, 'members', '127.0.0.1', '--json'])).stdout);
    expect(one).toMatchObject({ id: '127.0.0.1', units: 1024 });
    const units = await gwctl([...e, 'units']);
    expect(units.stdout).toMatch(/^127\.0\.0\.1 +1024 +0-1023$/m);
    expect((await gwctl([...e, 'units', '--unit', '513'])).stdout).toBe('unit 513: 127.0.0.1\n');
    const map = (await gwctl([...e, 'units', '--map'])).stdout.split('\n');
    expect(map.slice(0, 32).every((l) => l === 'A'.repeat(32))).toBe(true);
    expect(JSON.parse((await gwctl([...e, 'units', '--json'])).stdout).owners).toHaveLength(1024);
  });

  it('sessions, counters, events, log level', async () => {
    const s = await gwctl([...e, 'sessions', '--address', '192.0.2.50', '--limit', '10']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/0 of 0 session\(s\)/);
    const c = await gwctl([...e, 'counters', '--match', 'core.tx.']);
    expect(c.stdout).toMatch(/^core\.tx\.master-keepalive +\d+$/m);
    const ev = await gwctl([...e, 'events', '--limit', '5']);
    expect(ev.stdout).toMatch(/#\d+ +epoch \d+ +role/);
    expect((await gwctl([...e, 'log-level'])).stdout).toBe('warn\n');
    expect((await gwctl([...e, 'log-level', 'debug'])).stdout).toBe('debug\n');
    expect((await gwctl([...e, 'log-level', 'warn'])).code).toBe(0);
  });

  it('exit 4 without a token or with a wrong one, exit 3 when unreachable', async () => {
    const none = await gwctl(['-e', endpoint, 'status']);
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/GW_UNAUTHORIZED: missing bearer token/);
    const wrong = await gwctl(['-e', endpoint, '-t', 'wrong-token-wrong-token', 'members']);
    expect(wrong.code).toBe(4);
    const port = await freePort();
    const down = await gwctl(['-e', `http://127.0.0.1:${port}`, '-t', TOKEN, 'status']);
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/cannot reach the gwclusterd admin API at http:\/\/127\.0\.0\.1:\d+\/ \(ECONNREFUSED\)/);
  });

  it('exit 2 for bad arguments, with a one-line error naming the argument and the accepted form', async () => {
    const cases: [string[], RegExp][] = [
      [['drain', '192.0.2.300'], /member "192\.0\.2\.300" is not a dotted-quad IPv4 address/],
      [['units', '--unit', '5000'], /--unit "5000" must be a whole number from 0 to 1023/],
      [['config', 'set', 'keepalivePeriodMs:200'], /field=value "keepalivePeriodMs:200" must be NAME=VALUE/],
      [['sessions', '--port', 'http'], /--port "http" must be a whole number from 0 to 65535/],
      [['log-level', 'loud'], /level "loud" must be one of/],
      [['--timeout', '5', 'status'], /--timeout "5" must be milliseconds/],
      [['workunit', '--proto', 'sctp', '--src', '192.0.2.1'], /--proto "sctp" must be tcp, udp, icmp, l2tp or a protocol number/],
    ];
    for (const [args, re] of cases) {
      const r = await gwctl([...e, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
    const missing = await gwctl([...e, 'drain']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'member'/);
  });

  it('exit 5 when the daemon refuses: draining the only member, configuration out of range', async () => {
    const d = await gwctl([...e, 'drain', '127.0.0.1']);
    expect(d.code).toBe(5);
    expect(d.stderr).toMatch(/GW_REFUSED: cannot drain 127\.0\.0\.1: no other member/);
    const unknown = await gwctl([...e, 'drain', '127.0.0.9']);
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toMatch(/GW_NOT_FOUND/);
    const bad = await gwctl([...e, 'config', 'set', 'keepalivePeriodMs=5']);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(/GW_CONFIG_INVALID: cluster\.keepalivePeriodMs: must be >= 10/);
  });

  it('config set: a new version, adopted and written to the member file; config get shows it', async () => {
    const r = await gwctl([...e, 'config', 'set', 'keepalivePeriodMs=150', 'rebalanceIntervalMs=3000', '--base-version', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('configuration version 2: keepalivePeriodMs=150 rebalanceIntervalMs=3000\n');
    expect(r.stderr).toMatch(/runs v2/);
    const g = await gwctl([...e, 'config', 'get']);
    expect(g.stdout).toMatch(/^configuration version 2$/m);
    expect(g.stdout).toMatch(/^keepalivePeriodMs +150 +live/m);
    expect(g.stdout).toMatch(/^clusterIp +198\.51\.100\.10 +fixed/m);
    const file = JSON.parse(readFileSync(join(dir, 'm1', 'member.json'), 'utf8'));
    expect(file.cluster).toMatchObject({ configVersion: 2, keepalivePeriodMs: 150 });
    expect((await gwctl([...e, 'status'])).stdout).toMatch(/config v2 +keepalive 150 ms/);
    const stale = await gwctl([...e, 'config', 'set', 'keepalivePeriodMs=100', '--base-version', '1']);
    expect(stale.code).toBe(5);
    expect(stale.stderr).toMatch(/GW_CONFIG_CONFLICT/);
  });

  it('rebalance waits until nothing moves; leave and join the only member', async () => {
    const r = await gwctl([...e, 'rebalance']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^127\.0\.0\.1 +master +\S+ +1024/m);
    expect((await gwctl([...e, 'rebalance', '--no-wait'])).stdout).toBe('rebalance started\n');
    const leave = await gwctl([...e, 'leave', '127.0.0.1']);
    expect(leave.code, leave.stderr).toBe(0);
    expect((await gwctl([...e, 'cluster', '--json'])).stdout).toMatch(/"role":"left"/);
    const join = await gwctl([...e, 'join', '127.0.0.1']);
    expect(join.code, join.stderr).toBe(0);
    await waitHealthy(endpoint);
  });

  it('workunit: flows by the documented function, packets by the filter; bad input is exit 2', async () => {
    const tcp = JSON.parse((await gwctl(['workunit', '--proto', 'tcp', '--src', '192.0.2.50', '--sport', '40000', '--dst', '198.51.100.10', '--dport', '443', '--json'])).stdout);
    const k = ((((192 << 24) | (0 << 16) | (2 << 8) | 50) >>> 0) ^ 40000) >>> 0;
    expect(tcp).toMatchObject({ unit: (k ^ (k >>> 10) ^ (k >>> 20) ^ (k >>> 30)) & 1023, rule: 'src^sport' });
    const l2tp = JSON.parse((await gwctl(['workunit', '--proto', 'udp', '--src', '192.0.2.50', '--sport', '1701', '--dport', '1701', '--tunnel-id', '7', '--session-id', '9', '--json'])).stdout);
    expect(l2tp.rule).toBe('src^sport^tunnelId^sessionId');
    const icmp = await gwctl(['workunit', '--proto', 'icmp', '--src', '192.0.2.50', '--dst', '198.51.100.10']);
    expect(icmp.stdout).toMatch(/^unit \d+ +\(key 0x[0-9a-f]{8} = src\^dst\)$/m);
    // An IPv4 UDP packet 192.0.2.50:40000 -> 198.51.100.10:53, 8 bytes of payload.
    const packet = '4500002400000000401100000c000232c633640a' + '9c400035001000000102030405060708'.slice(0, 32);
    const p = JSON.parse((await gwctl(['workunit', '--packet', packet.replace('0c000232', 'c0000232'), '--cluster-ip', '198.51.100.10', '--json'])).stdout);
    const k2 = ((((192 << 24) | (2 << 8) | 50) >>> 0) ^ 40000) >>> 0;
    expect(p).toMatchObject({ unit: (k2 ^ (k2 >>> 10) ^ (k2 >>> 20) ^ (k2 >>> 30)) & 1023, kind: 'cluster', rule: 'src^sport' });
    expect((await gwctl(['workunit', '--packet', 'zz'])).code).toBe(2);
  });

  // 25 gwctl processes at once: on a loaded 2-core host they take longer than the default 30 s.
  it('--help of every command has examples; shell completion lists the commands', async () => {
    const top = await gwctl(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Exit codes: 0 ok; 1 other failure; 2 bad arguments; 3 daemon unreachable; 4 authentication failed; 5 refused/);
    const commands = ['status', 'version', 'cluster', 'members', 'units', 'sessions', 'counters', 'events', 'drain', 'undrain', 'failback', 'leave', 'join', 'rebalance', 'config get', 'config set', 'log-level', 'workunit', 'completion', 'bundle sign', 'pki init-ca', 'pki client-cert', 'pki list', 'pki revoke', 'pki renew', 'personality', 'diagnose', 'capture', 'wg genkey', 'peers list'];
    const helps = await Promise.all(commands.map((c) => gwctl([...c.split(' '), '--help'])));
    commands.forEach((c, i) => {
      expect(helps[i]!.code, c).toBe(0);
      expect(helps[i]!.stdout, c).toMatch(/Examples?:\n {2}gwctl /);
    });
    const comp = await gwctl(['completion', 'bash']);
    expect(comp.stdout).toMatch(/complete -F _gwctl gwctl/);
    for (const c of ['drain', 'rebalance', 'workunit', 'config']) expect(comp.stdout).toContain(c);
    const check = spawnSync('bash', ['-n'], { input: comp.stdout });
    expect(check.status).toBe(0);
  }, 120_000);

  it('mutual TLS: refused without a client certificate (exit 4), served with one from the cluster CA', async () => {
    const ca = join(dir, 'ca', 'ca.crt');
    const tlsArgs = ['-e', tlsEndpoint, '-t', TOKEN, '--cacert', ca];
    for (let i = 0; i < 50; i++) {
      const r = await gwctl([...tlsArgs, '--cert', join(dir, 'client', 'client.crt'), '--key', join(dir, 'client', 'client.key'), 'status']);
      if (r.code === 0) {
        expect(r.stdout).toMatch(/member 127\.0\.0\.2: master/);
        break;
      }
      if (i === 49) throw new Error(`TLS member never answered: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    const without = await gwctl([...tlsArgs, 'status']);
    expect(without.code).toBe(4);
    expect(without.stderr).toMatch(/GW_FORBIDDEN: client certificate refused/);
    const half = await gwctl([...tlsArgs, '--cert', join(dir, 'client', 'client.crt'), 'status']);
    expect(half.code).toBe(2);
  });

  it('gwclusterd --check verifies the personality and its signed bundle, and names the file that changed', () => {
    const config = join(dir, 'm1', 'member.json');
    // Signed again now: other builds in this work tree may have changed the software since beforeAll.
    expect(spawnSync(process.execPath, [GWCTL, 'bundle', 'sign', '--ca-dir', join(dir, 'ca'), '--config', config], { encoding: 'utf8' }).status).toBe(0);
    const ok = spawnSync(process.execPath, [GWCLUSTERD, '--config', config, '--check'], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/bundle signature verified/);
    // A live setting changed through the API (above) does not break the signature; a member setting does.
    const raw = JSON.parse(readFileSync(config, 'utf8'));
    raw.member.name = 'tampered';
    writeFileSync(config, JSON.stringify(raw));
    const bad = spawnSync(process.execPath, [GWCLUSTERD, '--config', config, '--check'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`${config}: the configuration (apart from its live cluster fields) was changed since the bundle was signed`);
    delete raw.member.name;
    writeFileSync(config, JSON.stringify(raw));
    writeFileSync(join(dir, 'm1', 'bundle.sig'), readFileSync(join(dir, 'm1', 'bundle.sig'), 'utf8').replace(/"signature": "./, '"signature": "A'));
    const forged = spawnSync(process.execPath, [GWCLUSTERD, '--config', config, '--check'], { encoding: 'utf8' });
    expect(forged.status).toBe(2);
    expect(forged.stderr).toMatch(/bundle\.sig: the signature does not verify with the cluster CA/);
  });
});

describe('gwctl small faults', () => {
  it('gwctl --help | head -1: a reader that closes the pipe early is no error (exit 0, no stack trace)', async () => {
    const r = await new Promise<Run>((resolve) => {
      const p = spawn(process.execPath, [GWCTL, '--help'], { env: { ...process.env, GWCTL_ENDPOINT: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      // The reader is gone before gwctl writes its first byte.
      p.stdout.destroy();
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code, stdout: '', stderr }));
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a truncated --packet is a usage error (exit 2) saying what is wrong with it, with no daemon asked', async () => {
    const r = await gwctl(['workunit', '--packet', '4500001c']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^gwctl: --packet is a truncated IP packet: shorter than its IP header .*truncated\/ip-header/);
  });

  it('--src 192.0.2.500 is reported as an invalid IPv4 address; a name as neither IPv4 nor IPv6', async () => {
    const bad = await gwctl(['workunit', '--proto', 'tcp', '--src', '192.0.2.500', '--sport', '1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--src "192\.0\.2\.500" is not a valid IPv4 address: four decimal parts 0\.\.255/);
    const name = await gwctl(['workunit', '--proto', 'icmp', '--src', '192.0.2.5', '--dst', 'gateway']);
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/--dst "gateway" is neither an IPv4 address .* nor an IPv6 address/);
    const v6 = await gwctl(['workunit', '--proto', 'icmp', '--src', '2001:db8::50', '--dst', '2001:db8::1']);
    expect(v6.code, v6.stderr).toBe(0);
  });

  it('pki init-ca --dir /proc/x fails at once with the reason (it used to spin until killed)', async () => {
    const started = Date.now();
    const r = await gwctl(['pki', 'init-ca', '--dir', '/proc/x/ca']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--dir \/proc\/x\/ca: cannot create the directory \/proc\/x \(ENOENT\)/);
    // Not a timing assertion on speed: only that it ended by itself, well before the test's own time-out.
    expect(Date.now() - started).toBeLessThan(20_000);
    const file = await gwctl(['pki', 'init-ca', '--dir', join(dir, 'm1', 'member.json', 'ca')]);
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/member\.json is not a directory|ENOTDIR/);
  });

  it('an answer of another shape: exit 1 naming the admin API version the daemon speaks, never a TypeError', async () => {
    const stub = createHttpServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/v2')) res.setHeader('gwcluster-api-version', '1');
      else res.setHeader('gwcluster-api-version', '7');
      res.end(JSON.stringify({ cluster: { leader: '192.0.2.11', nodes: [] } }));
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(stub.address() as { port: number }).port}`;
    try {
      for (const cmd of [['status'], ['members'], ['cluster'], ['version'], ['config', 'get']]) {
        const r = await gwctl(['-e', url, '-t', TOKEN, ...cmd]);
        expect(r.code, cmd.join(' ')).toBe(1);
        expect(r.stderr, cmd.join(' ')).not.toMatch(/Cannot read properties|TypeError/);
        expect(r.stderr, cmd.join(' ')).toMatch(/unexpected answer from http:\/\/127\.0\.0\.1:\d+\/ to GET \/v1\/\S+ \(.*\); the daemon speaks admin API version 7, this gwctl version 1; use the gwctl of the daemon's release/);
      }
    } finally {
      stub.close();
    }
    const silent = createHttpServer((_req, res) => res.end('<html>hello</html>'));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await gwctl(['-e', `http://127.0.0.1:${(silent.address() as { port: number }).port}`, 'members']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/not JSON: "<html>hello<\/html>"\); it sends no gwcluster-api-version header/);
    } finally {
      silent.close();
    }
  });

  it('without --endpoint: the admin address of the member configuration on this host (GWCTL_CONFIG), or a usage error', async () => {
    const local = await gwctl(['-t', TOKEN, 'status'], { GWCTL_CONFIG: join(dir, 'm1', 'member.json') });
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/^member 127\.0\.0\.1: master/m);
    const none = await gwctl(['-t', TOKEN, 'status'], { GWCTL_CONFIG: join(dir, 'no-such.json') });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no --endpoint given, GWCTL_ENDPOINT is not set, and no member configuration .*no-such\.json: ENOENT/);
  });

  it('--version of gwctl and gwclusterd; gwctl version lists every member with its software version', async () => {
    const v = await gwctl(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toBe(`gwctl ${CLI_VERSION} (cluster protocol 2, admin API 1)\n`);
    const d = spawnSync(process.execPath, [GWCLUSTERD, '--version'], { encoding: 'utf8' });
    expect(d.status).toBe(0);
    expect(d.stdout).toBe(`gwclusterd ${DAEMON_VERSION} (cluster protocol 2, admin API 1)\n`);
    const all = await gwctl([...e, 'version']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain(`gwctl ${CLI_VERSION} (cluster protocol 2, admin API 1)`);
    expect(all.stdout).toContain(`answered by 127.0.0.1: gwclusterd ${DAEMON_VERSION} (cluster protocol 2, admin API 1)`);
    expect(all.stdout).toMatch(new RegExp(`^127\\.0\\.0\\.1 +master +${DAEMON_VERSION.replaceAll('.', '\\.')}$`, 'm'));
    const json = JSON.parse((await gwctl([...e, 'version', '--json'])).stdout);
    expect(json).toMatchObject({ client: { version: CLI_VERSION, protocol: 2, api: 1 }, answeredBy: { id: '127.0.0.1', software: DAEMON_VERSION }, members: [{ id: '127.0.0.1', version: DAEMON_VERSION }] });
    const cluster = JSON.parse((await gwctl([...e, 'cluster', '--json'])).stdout);
    expect(cluster.versions).toEqual({ software: DAEMON_VERSION, protocol: 2, api: 1 });
  });
});

describe('personality hardening', () => {
  const check = (config: string) => spawnSync(process.execPath, [GWCLUSTERD, '--config', config, '--check'], { encoding: 'utf8' });

  it('gwctl personality writes member.json (it holds the admin token) readable by its owner only', () => {
    for (const m of ['m1', 'm2']) expect((statSync(join(dir, m, 'member.json')).mode & 0o777).toString(8)).toBe('600');
  });

  it('--check refuses a private key that does not belong to the member certificate (exit 2, names the key file)', () => {
    const copy = join(dir, 'wrong-key');
    cpSync(join(dir, 'm2'), copy, { recursive: true });
    copyFileSync(join(dir, 'm1', 'member.key'), join(copy, 'member.key'));
    chmodSync(join(copy, 'member.key'), 0o600);
    const r = check(join(copy, 'member.json'));
    expect(r.status, r.stdout).toBe(2);
    expect(r.stderr).toContain(`${join(copy, 'member.key')}: this private key does not belong to the member certificate`);
  });

  it('--check refuses a personality directory that everyone may write to', () => {
    const copy = join(dir, 'open-dir');
    cpSync(join(dir, 'm2'), copy, { recursive: true });
    expect(check(join(copy, 'member.json')).status).toBe(0);
    chmodSync(copy, 0o777);
    const r = check(join(copy, 'member.json'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/the directory of the configuration is writable by everyone \(mode 777\); chmod 700 it/);
  });

  it('unit numbers are decimal digits only: 1e3 and 0x10 are refused by gwctl (exit 2) and by the API (400)', async () => {
    for (const u of ['1e3', '0x10', '+5', '1024']) {
      const r = await gwctl([...e, 'units', '--unit', u]);
      expect(r.code, u).toBe(2);
      expect(r.stderr).toMatch(/--unit ".*" must be a whole number from 0 to 1023/);
      const api = await fetch(`${endpoint}/v1/units/${u}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(api.status, u).toBe(400);
    }
  });

  it('/healthz tells an anonymous caller only that the member is alive', async () => {
    expect(await (await fetch(`${endpoint}/healthz`)).json()).toEqual({ ok: true });
  });
});

describe('gwctl config set when a member did not adopt the change', () => {
  it('exits 5 and prints the member that failed and why (GW_CONFIG_NOT_ADOPTED)', async () => {
    const message = '192.0.2.11: configuration version 2 (was 1) is in force on the master 192.0.2.11, but not on 1 member(s): 192.0.2.13: left the cluster (leaving): cannot write its configuration file, so it did not adopt version 2: EACCES: permission denied';
    // A stand-in for the admin API: the cluster view, then the answer the master gives (operator-plane.ts).
    const stub = createHttpServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET') return res.end(JSON.stringify(clusterView('192.0.2.11', ['192.0.2.11', '192.0.2.12', '192.0.2.13'])));
      res.statusCode = 502;
      res.end(JSON.stringify({ code: 'GW_CONFIG_NOT_ADOPTED', message }));
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await gwctl(['-e', `http://127.0.0.1:${(stub.address() as { port: number }).port}`, '-t', TOKEN, 'config', 'set', 'rebalanceIntervalMs=2500']);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(`GW_CONFIG_NOT_ADOPTED: ${message}`);
    } finally {
      stub.close();
    }
  });
});

describe('gwctl drain when the member it asks dies during the drain', () => {
  it('goes on with another member of the cluster, says so, and finishes when the drain is done', async () => {
    const port = await freePort();
    const member = (id: string, units: number, draining: boolean) => ({ id, role: 'member', units, load: units, loss: 0, watchdogPeriods: 2, lastHeardMsAgo: 10, draining });
    const view = (self: string, master: string, drainedUnits: number) => ({
      self, role: self === master ? 'master' : 'member', master, epoch: 3, configVersion: 1, keepalivePeriodMs: 100, tableVersion: 5,
      members: [member('127.0.0.1', 512, false), member('127.0.0.2', 512 - drainedUnits, false), member('127.0.0.3', drainedUnits, true)],
      units: { assigned: 1024, unassigned: 0, moving: 0, ownedHere: 0 }, counters: {},
    });
    // The first member answers the drain and one look at the cluster (the drain under way), then dies.
    let looks = 0;
    const first = createHttpServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'POST') {
        res.statusCode = 202;
        return res.end(JSON.stringify({ action: 'drain', member: '127.0.0.3', doneBy: '127.0.0.1', forwarded: false, detail: 'draining 127.0.0.3', result: {} }));
      }
      looks++;
      res.end(JSON.stringify(view('127.0.0.1', '127.0.0.1', 300)));
      if (looks >= 2) {
        first.close();
        first.closeAllConnections();
      }
    });
    // The next master carried the drain on: the drained member owns nothing now.
    const second = createHttpServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(view('127.0.0.2', '127.0.0.2', 0)));
    });
    await Promise.all([new Promise<void>((r) => first.listen(port, '127.0.0.1', () => r())), new Promise<void>((r) => second.listen(port, '127.0.0.2', () => r()))]);
    try {
      const r = await gwctl(['-e', `http://127.0.0.1:${port}`, '-t', TOKEN, 'drain', '127.0.0.3', '--wait-timeout', '10']);
      expect(r.stderr).toContain(`http://127.0.0.1:${port}/ stopped answering (ECONNREFUSED); continuing with http://127.0.0.2:${port}/`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('drain 127.0.0.3: done\n');
    } finally {
      first.close();
      second.close();
    }
  });
});
