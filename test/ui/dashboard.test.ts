// The live dashboard in headless Chromium (Debian's chromium, driven by playwright-core): the page loads,
// shows the members of a running cluster (three members with real timers and signatures, over an
// in-memory network, each with its admin API on 127.0.0.1), and changes when a member is drained.
// Screenshots go to a temporary directory; with GWC_UPDATE_SCREENSHOTS=1 they replace docs/dashboard.png
// and docs/dashboard-drained.png (how the ones in docs/ were made).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createTestPki } from '@gwcluster/security';
import { MemberNode, NoClusterAddress, OperatorChannel, buildAdminServer, createMetrics, parseMemberConfig } from '@gwcluster/daemon';
import { MemoryNetwork } from '@gwcluster/cluster-core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = process.env.GWC_UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs') : mkdtempSync(join(tmpdir(), 'gwtshots-'));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'ui-test-token-0123456789';
const IPS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];

interface Member {
  node: MemberNode;
  channel: OperatorChannel;
  api: FastifyInstance;
  url: string;
}

const members: Member[] = [];
let hub: MemoryNetwork;
let pump: NodeJS.Timeout;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh does, from scripts/apt-packages.txt) or set CHROMIUM_PATH`);
  const pki = await createTestPki(IPS);
  hub = new MemoryNetwork();
  pump = setInterval(() => hub.flush(), 2);
  for (const ip of IPS) {
    const config = parseMemberConfig({
      // Real timers in one busy process (Chromium starts beside it): a 250 ms keepalive tolerates event-loop stalls.
      cluster: { name: 'ui', clusterIp: '198.51.100.10', keepalivePeriodMs: 250, rebalanceIntervalMs: 500 },
      member: { address: ip, interface: 'eth0' },
      pki: { certificate: 'x', key: 'x', ca: 'x' },
      clusterAddress: { mode: 'none' },
      logLevel: 'error',
    });
    const m = pki.members[ip]!;
    const node = new MemberNode({
      config,
      credentials: { certChainDer: m.chainDer, keyPem: m.keyPem, caPem: pki.ca.certPem },
      transport: hub.attach(ip),
      clusterAddress: new NoClusterAddress(),
      logger: pino({ level: 'silent' }),
    });
    const channel = new OperatorChannel({ node });
    const metrics = createMetrics({ node, providers: { sessions: { list: () => ({ total: 0, sessions: [] }) }, traffic: null, sync: null } });
    const api = buildAdminServer({ node, channel, metrics, logger: pino({ level: 'silent' }), token: TOKEN, streamPeriodMs: 200 });
    await api.listen({ host: '127.0.0.1', port: 0 });
    members.push({ node, channel, api, url: `http://127.0.0.1:${(api.server.address() as { port: number }).port}` });
  }
  for (const m of members) m.node.start();
  // Wait for a balanced cluster (first boot: grace period, then units handed out).
  for (let i = 0; i < 200; i++) {
    const st = members[0]!.node.status();
    if (st.members.length === 3 && st.members.every((m) => m.units >= 341) && st.movingUnits === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
}, 60_000);

afterAll(async () => {
  if (process.env.GWC_UPDATE_SCREENSHOTS !== '1') rmSync(SHOTS, { recursive: true, force: true });
  await browser?.close();
  for (const m of members) {
    await m.node.stop();
    m.channel.close();
    await m.api.close();
  }
  clearInterval(pump);
});

describe('dashboard in headless Chromium', () => {
  it('loads and shows the members of the running cluster, the unit map coloured by owner and the events', async () => {
    const member = members[1]!; // any member answers the same
    await page.goto(`${member.url}/dashboard#token=${TOKEN}`);
    await page.waitForSelector('#conn.live', { timeout: 10_000 });
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('#members tbody tr')] as HTMLElement[];
        return rows.length === 3 && rows.every((r) => Number(r.dataset.units) >= 341);
      },
      undefined,
      { timeout: 20_000 },
    );
    const rows = await page.$$eval('#members tbody tr', (trs) => trs.map((tr) => ({ id: (tr as HTMLElement).dataset.member, units: Number((tr as HTMLElement).dataset.units) })));
    expect(rows.map((r) => r.id)).toEqual(IPS);
    expect(rows.every((r) => r.units >= 341)).toBe(true);
    const owners = await page.$$eval('#units div', (cells) => cells.map((c) => (c as HTMLElement).dataset.owner));
    expect(owners).toHaveLength(1024);
    expect(new Set(owners)).toEqual(new Set(IPS));
    const colours = await page.$$eval('#units div', (cells) => new Set(cells.map((c) => getComputedStyle(c).backgroundColor)).size);
    expect(colours).toBe(3);
    expect(await page.textContent('#master')).toBe(members[0]!.node.status().master);
    expect(await page.$$eval('#events li', (lis) => lis.length)).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'dashboard.png') });
  });

  it('changes when a member is drained: its units go to the others and it is marked draining', async () => {
    const victim = IPS[2]!;
    await page.waitForFunction((v) => [...document.querySelectorAll('#units div')].filter((c) => (c as HTMLElement).dataset.owner === v).length > 300, victim, { timeout: 10_000 });
    const r = await fetch(`${members[1]!.url}/v1/members/${victim}/drain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(202);
    await page.waitForFunction((v) => document.querySelector(`#members tr[data-member="${v}"]`)?.getAttribute('data-units') === '0', victim, { timeout: 10_000 });
    await page.waitForFunction((v) => ![...document.querySelectorAll('#units div')].some((c) => (c as HTMLElement).dataset.owner === v), victim, { timeout: 10_000 });
    expect(await page.getAttribute(`#members tr[data-member="${victim}"]`, 'data-draining')).toBe('true');
    expect(await page.textContent(`#members tr[data-member="${victim}"]`)).toContain('draining');
    await page.waitForFunction(() => [...document.querySelectorAll('#events li')].some((li) => li.textContent?.includes('membership') || li.textContent?.includes('role')), undefined, { timeout: 5000 });
    await page.screenshot({ path: join(SHOTS, 'dashboard-drained.png') });
  });

  it('asks for the token when it has none or a wrong one', async () => {
    const p = await browser.newPage();
    try {
      await p.goto(`${members[0]!.url}/dashboard#token=wrong-token-wrong-token`);
      await p.waitForSelector('#login.show', { timeout: 10_000 });
      expect(await p.textContent('#error')).toMatch(/wrong bearer token/);
      await p.fill('#token', TOKEN);
      await p.click('#login button');
      await p.waitForFunction(() => document.querySelectorAll('#members tbody tr').length === 3, undefined, { timeout: 10_000 });
    } finally {
      await p.close();
    }
  });
});
