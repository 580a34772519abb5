// The keepalived + conntrackd baseline of the failover bench (bench/keepalived/) really works, so that
// the comparison cannot silently measure a broken baseline: TCP connections pass through the active
// box's stateful firewall; the active box is killed (kill -9 of all its processes) mid-stream; a backup
// takes over both VIPs, commits the replicated conntrack state, and the connections carry on intact (one
// may stall: the baseline's own behaviour now and then).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeepalivedBaseline } from '../../bench/keepalived/baseline.mjs';

const SOAK = new URL('./tools/soak.mjs', import.meta.url).pathname;
const CONNECTIONS = 20;

describe('keepalived + conntrackd failover baseline', () => {
  let b: KeepalivedBaseline;

  beforeAll(async () => {
    b = await KeepalivedBaseline.create({ clients: 1 });
    await b.startAll();
    await b.waitForActive();
    b.startEcho();
    await new Promise((r) => setTimeout(r, 500));
  }, 60_000);
  afterAll(() => b?.destroy());

  it('the backup takes over from a killed active box and the connections continue', async () => {
    const active = await b.waitForActive();
    const soak = b.clients[0]!.exec([process.execPath, SOAK, '--target', '192.0.2.100', '--port', '7000', '--connections', String(CONNECTIONS), '--seconds', '6', '--idle-fail-ms', '5000'], { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = await b.kill9(active);
    const next = await b.waitForActive({ not: [active], timeoutMs: 10_000 });
    expect(next).not.toBe(active);
    const r = await soak;
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { completed: number; failed: number; errors: Record<string, number> };
    // No reset or corruption, and the connections carry on. keepalived + conntrackd itself now and then
    // stalls one connection over its takeover (seen in the bench: 1 of 300, and 1 of 20 here in CI);
    // a broken baseline stalls most of them.
    console.log(`keepalived baseline: ${result.completed}/${CONNECTIONS} completed, errors ${JSON.stringify(result.errors)}`);
    expect(Object.keys(result.errors).filter((k) => k !== 'stalled')).toEqual([]);
    expect(result.completed).toBeGreaterThanOrEqual(CONNECTIONS - 1);
    // The new active box ran the primary-backup commit after the kill, and its kernel now tracks the
    // connections it carried on (the committed entries, resynchronised into conntrackd's cache).
    expect(b.tookOverAt(next, t0)).toBeGreaterThanOrEqual(t0);
    const box = b.box(next);
    const dump = await box.host.execOk(['conntrackd', '-C', box.conntrackdConf, '-i']);
    const tracked = dump.stdout.split('\n').filter((l) => l.includes('dst=192.0.2.100') && l.includes('dport=7000'));
    expect(tracked.length).toBeGreaterThanOrEqual(result.completed);
  }, 90_000);
});
