// Tunnel replication and takeover as pure logic (docs/tunnels.md, "Replication and takeover"): three
// members' TunnelReplication over fake endpoints, records and acknowledgements carried by hand. The
// nonce argument is checked as numbers: a new owner's first counter is at or beyond every counter the
// previous owner's data path was allowed to send.
import { describe, expect, it } from 'vitest';
import type { LocalRecord } from '@gwcluster/state-sync';
import type { PeerReplica, TunnelEvent, Endpoint } from '../../src/tunnels/tunnel-core.js';
import type { KeypairExtras } from '../../src/tunnels/wireguard-endpoint.js';
import { TunnelReplication, type ReplicatedEndpoint } from '../../src/tunnels/tunnel-replication.js';
import { decodeTunnelRecord, encodeTunnelRecord, tunnelKeyPeer, tunnelRecordKey } from '../../src/tunnels/tunnel-record.js';

const LEASE = 1000n;
const PK = new Uint8Array(32).fill(5);
const EP: Endpoint = { address: '198.51.100.21', port: 40000 };

class FakeEndpoint implements ReplicatedEndpoint {
  readonly peerKeys = [PK];
  owned = false;
  state: PeerReplica = { keypairs: [] };
  extras = new Map<number, KeypairExtras>();
  forward: Endpoint | null = null;
  exportPeer(): PeerReplica { return this.state; }
  isOwned(): boolean { return this.owned; }
  step(e: TunnelEvent): void {
    if (e.kind === 'ownership') this.owned = e.owned;
    if (e.kind === 'replica') this.state = e.state;
  }
  setExtras(_peer: number, u: ReadonlyMap<number, KeypairExtras>): void {
    for (const [k, v] of u) this.extras.set(k, { ...this.extras.get(k), ...v });
  }
  setForward(_peer: number, to: Endpoint | null): void { this.forward = to; }
  /** The data path's view: the next counter this keypair sends, and whether it may. */
  send(idx: number, n: number): bigint {
    const k = this.state.keypairs.find((x) => x.localIndex === idx)!;
    const x = this.extras.get(idx) ?? {};
    let c = k.sendReserved > (x.seedSendCounter ?? 0n) ? k.sendReserved : (x.seedSendCounter ?? 0n);
    for (let i = 0; i < n && c < (x.sendLimit ?? LEASE); i++) c++;
    this.state = { ...this.state, keypairs: this.state.keypairs.map((y) => (y.localIndex === idx ? { ...y, sendReserved: c } : y)) };
    return c;
  }
}

function member(self: string, owner: { v: string }, members: string[], replicateKeys = true) {
  const ep = new FakeEndpoint();
  const rep = new TunnelReplication(ep, { self, members: () => members, ownerOf: () => owner.v, unitOf: () => 7 }, { replicateKeys, forwardPort: 51821, lease: LEASE, wallMs: () => 1_000_000 });
  return { self, ep, rep };
}

const keypair = (counter: bigint) => ({
  slot: 'current' as const, localIndex: 11, remoteIndex: 22, sendKey: new Uint8Array(32).fill(1), receiveKey: new Uint8Array(32).fill(2),
  canSend: true, initiator: false, createdWallMs: 999_000, sendReserved: counter, receiveNext: 40n,
});

/** Delivers `from`'s pending records to `to` and `to`'s acknowledgement back (what the replicator does). */
function deliver(from: ReturnType<typeof member>, to: ReturnType<typeof member>, records: LocalRecord[], ack = true) {
  to.rep.install(records.map((r) => ({ key: r.key, version: r.version, state: r.state, removed: false })));
  if (ack) for (const r of records) from.rep.acked(to.self, r.key, r.version);
}

describe('tunnel records', () => {
  it('round-trip every field; keys are told apart from session keys; malformed records are null', () => {
    const r: PeerReplica = { endpoint: EP, lastTimestamp: new Uint8Array(12).fill(3), lastHandshakeWallMs: 123456, keypairs: [keypair(77n), { ...keypair(5n), slot: 'previous', localIndex: 12 }] };
    const back = decodeTunnelRecord(encodeTunnelRecord(r))!;
    expect(back).toEqual(r);
    expect(tunnelKeyPeer(tunnelRecordKey(PK))).toEqual(PK);
    expect(tunnelKeyPeer(new Uint8Array(40))).toBeNull();
    const bytes = encodeTunnelRecord(r);
    expect(decodeTunnelRecord(bytes.subarray(0, 40))).toBeNull();
    expect(decodeTunnelRecord(new Uint8Array(0))).toBeNull();
    const bad = Uint8Array.from(bytes); bad[0] = 9;
    expect(decodeTunnelRecord(bad)).toBeNull();
  });
});

describe('TunnelReplication', () => {
  it('the owner renews its reservation ahead of use; its limit rises only when every other member holds the new one', () => {
    const owner = { v: 'A' };
    const A = member('A', owner, ['A', 'B', 'C']);
    const B = member('B', owner, ['A', 'B', 'C']);
    const C = member('C', owner, ['A', 'B', 'C']);
    A.ep.owned = true;
    A.ep.state = { endpoint: EP, keypairs: [keypair(0n)] };
    A.rep.tick();
    let recs = A.rep.collect();
    expect(recs).toHaveLength(1);
    expect(decodeTunnelRecord(recs[0]!.state)!.keypairs[0]!.sendReserved).toBe(LEASE);
    deliver(A, B, recs);
    deliver(A, C, recs);
    expect(B.ep.forward).toBeNull(); // not yet ticked
    B.rep.tick();
    expect(B.ep.forward).toEqual({ address: 'A', port: 51821 });
    expect(B.ep.extras.get(11)).toMatchObject({ sendLimit: 0n, seedSendCounter: LEASE, seedReceiveNext: 40n });
    // A sends past half its lease: the next record reserves counter + lease; only B acknowledges it.
    expect(A.ep.send(11, 600)).toBe(600n);
    A.rep.tick();
    recs = A.rep.collect();
    expect(decodeTunnelRecord(recs[0]!.state)!.keypairs[0]!.sendReserved).toBe(600n + LEASE);
    deliver(A, B, recs);
    expect(A.ep.extras.get(11)?.sendLimit ?? LEASE).toBe(LEASE);
    expect(A.ep.send(11, 1000)).toBe(LEASE); // stopped at the limit: C holds only LEASE
    deliver(A, C, recs);
    expect(A.ep.extras.get(11)?.sendLimit).toBe(600n + LEASE);
  });

  it('takeover: the new owner starts at the reservation it holds and sends nothing until the others hold its own', () => {
    const owner = { v: 'A' };
    const A = member('A', owner, ['A', 'B', 'C']);
    const B = member('B', owner, ['A', 'B', 'C']);
    const C = member('C', owner, ['A', 'B', 'C']);
    A.ep.owned = true;
    A.ep.state = { endpoint: EP, keypairs: [keypair(0n)] };
    A.rep.tick();
    const r1 = A.rep.collect();
    deliver(A, B, r1);
    deliver(A, C, r1);
    A.ep.send(11, 700);
    A.rep.tick();
    const r2 = A.rep.collect(); // reservation 1700: B gets it, C does not (its copy is lost), A dies
    deliver(A, B, r2, false);
    const sentByA = A.ep.send(11, 5000); // whatever A could still send: bounded by its limit
    expect(sentByA).toBeLessThanOrEqual(LEASE);
    // B takes the unit over.
    owner.v = 'B';
    const members = ['B', 'C'];
    const B2 = { ...B, rep: B.rep };
    (B.rep as unknown as { cluster: { members: () => string[] } }).cluster.members = () => members;
    (C.rep as unknown as { cluster: { members: () => string[] } }).cluster.members = () => members;
    B2.rep.tick();
    expect(B.ep.owned).toBe(true);
    expect(B.ep.forward).toBeNull();
    const x = B.ep.extras.get(11)!;
    expect(x.seedSendCounter).toBe(1700n);
    expect(x.seedSendCounter! >= sentByA).toBe(true);
    expect(x.sendLimit).toBe(1700n); // nothing yet: C still holds reservation LEASE
    expect(B.ep.send(11, 10)).toBe(1700n);
    const r3 = B.rep.collect();
    expect(decodeTunnelRecord(r3[0]!.state)!.keypairs[0]!.sendReserved).toBe(1700n + LEASE);
    deliver(B, C, r3);
    expect(B.ep.extras.get(11)!.sendLimit).toBe(1700n + LEASE);
    expect(B.ep.send(11, 10)).toBe(1710n);
    // C now forwards to B and holds B's reservation: were B to die, C would start at 2700.
    C.rep.tick();
    expect(C.ep.forward).toEqual({ address: 'B', port: 51821 });
    expect(C.ep.extras.get(11)!.seedSendCounter).toBe(1700n + LEASE);
    expect(B.rep.counters.takeovers).toBe(1);
  });

  it('a stale or malformed record is counted and changes nothing; records of an owned tunnel are not installed', () => {
    const owner = { v: 'A' };
    const A = member('A', owner, ['A', 'B']);
    const B = member('B', owner, ['A', 'B']);
    A.ep.owned = true;
    A.ep.state = { endpoint: EP, keypairs: [keypair(0n)] };
    A.rep.tick();
    const r = A.rep.collect();
    deliver(A, B, r);
    deliver(A, B, r);
    expect(B.rep.counters).toMatchObject({ recordsInstalled: 1, recordsStale: 1 });
    B.rep.install([{ key: r[0]!.key, version: 99, state: new Uint8Array(3), removed: false }]);
    expect(B.rep.counters.recordsMalformed).toBe(1);
    // Another writer of a tunnel A owns (two members served its unit for a moment): A's counters jump to
    // its reservation (the peer's window may have moved there), and A sends nothing beyond it until B
    // holds A's next record, written at once above the version it saw.
    const other = encodeTunnelRecord({ endpoint: EP, keypairs: [keypair(5000n)] });
    A.rep.install([{ key: r[0]!.key, version: 50, state: other, removed: false }]);
    expect(A.rep.counters).toMatchObject({ recordsInstalled: 0, concurrentWrites: 1 });
    expect(A.ep.extras.get(11)).toMatchObject({ sendLimit: 5000n, seedSendCounter: 5000n });
    const next = A.rep.collect();
    expect(next[0]!.version).toBe(51);
    expect(decodeTunnelRecord(next[0]!.state)!.keypairs[0]!.sendReserved).toBe(5000n + LEASE);
    deliver(A, B, next);
    expect(A.ep.extras.get(11)!.sendLimit).toBe(5000n + LEASE);
    // A takeover's version jumps (VERSION_STEP) above whatever the previous owner still has in flight.
  });

  it('replicateKeys false: records carry the endpoint only, so a takeover has no keypair to carry on', () => {
    const owner = { v: 'A' };
    const A = member('A', owner, ['A', 'B'], false);
    A.ep.owned = true;
    A.ep.state = { endpoint: EP, keypairs: [keypair(0n)] };
    A.rep.tick();
    const rec = decodeTunnelRecord(A.rep.collect()[0]!.state)!;
    expect(rec.endpoint).toEqual(EP);
    expect(rec.keypairs).toEqual([]);
  });

  it('a planned move stops the old owner at once and hands its latest record over', () => {
    const owner = { v: 'A' };
    const A = member('A', owner, ['A', 'B']);
    A.ep.owned = true;
    A.ep.state = { endpoint: EP, keypairs: [keypair(0n)] };
    A.rep.tick();
    A.rep.collect();
    expect(A.rep.handoverRecordsOf(new Set([3]))).toHaveLength(0);
    const moved = A.rep.handoverRecordsOf(new Set([7]), 1000);
    expect(moved).toHaveLength(1);
    expect(A.ep.owned).toBe(false);
    expect(A.ep.extras.get(11)!.sendLimit).toBe(0n);
    // The table still names A until the master reassigns the unit: A does not take it back meanwhile.
    A.rep.tick(1500);
    expect(A.ep.owned).toBe(false);
    owner.v = 'B';
    A.rep.tick(1600);
    expect(A.ep.forward).toEqual({ address: 'B', port: 51821 });
    // A move that did not happen: after HANDOVER_HOLD_MS the member that the table names takes it back.
    owner.v = 'A';
    A.rep.tick(1700);
    expect(A.ep.owned).toBe(true);
    expect(A.rep.handoverRecordsOf(new Set([7]), 2000)).toHaveLength(1);
    A.rep.tick(2100);
    expect(A.ep.owned).toBe(false);
    A.rep.tick(8000);
    expect(A.ep.owned).toBe(true);
  });
});
