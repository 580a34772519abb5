// The replicated state of one WireGuard tunnel (docs/tunnels.md, "Replication and takeover"; docs/state-sync.md,
// "Tunnel records"): what a member needs to carry a peer's tunnel on without a new handshake. It travels
// as a state-sync record (the session records' channel: coalesced, acknowledged, snapshot to joiners,
// sealed for its receiver), told apart from session records by its key: "WGT" 1 and the peer's public key.
//
// Layout (little-endian), format 1:
//   0 format (1) | 1 flags (bit 0: endpoint present, bit 1: keypairs present) | 2-3 keypair count
//   4-7 endpoint IPv4 (network order) | 8-9 endpoint port | 10-11 zero
//   12-23 greatest TAI64N accepted from the peer (zero: none)
//   24-31 latest handshake, wall-clock ms (float64; 0: none)
//   32.. keypairs, 104 bytes each:
//     0 slot (0 current, 1 previous, 2 next) | 1 flags (bit 0 may send, bit 1 we initiated) | 2-3 zero
//     4-7 our index | 8-11 the peer's index | 12-19 created, wall-clock ms (float64)
//     20-27 send reservation: no counter at or beyond it was used by the writer (the lease)
//     28-35 receive next: every counter below it was accepted or is refused
//     36-67 send key | 68-99 receive key | 100-103 zero
// Parsing never throws: a malformed record is null (counted by the caller).
import type { Endpoint, ReplicaKeypair, PeerReplica } from './tunnel-core.js';

export const TUNNEL_RECORD_FORMAT = 1;
export const TUNNEL_KEY_PREFIX = Uint8Array.from([0x57, 0x47, 0x54, 0x01]); // "WGT" 1
export const TUNNEL_KEY_SIZE = 36;
const HEADER = 32;
const KEYPAIR = 104;
const SLOTS = ['current', 'previous', 'next'] as const;

/** The record's key for a peer (its 32-byte public key). */
export function tunnelRecordKey(publicKey: Uint8Array): Uint8Array {
  const k = new Uint8Array(TUNNEL_KEY_SIZE);
  k.set(TUNNEL_KEY_PREFIX, 0);
  k.set(publicKey.subarray(0, 32), 4);
  return k;
}

/** The peer public key of a tunnel record's key, null when the key is not a tunnel record's. */
export function tunnelKeyPeer(key: Uint8Array): Uint8Array | null {
  if (key.length !== TUNNEL_KEY_SIZE) return null;
  for (let i = 0; i < 4; i++) if (key[i] !== TUNNEL_KEY_PREFIX[i]) return null;
  return key.subarray(4);
}

function ipv4Bytes(address: string): number[] | null {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) return null;
  return parts;
}

export function encodeTunnelRecord(r: PeerReplica): Uint8Array {
  const buf = Buffer.alloc(HEADER + KEYPAIR * r.keypairs.length);
  const ep = r.endpoint ? ipv4Bytes(r.endpoint.address) : null;
  buf.writeUInt8(TUNNEL_RECORD_FORMAT, 0);
  buf.writeUInt8((ep ? 1 : 0) | (r.keypairs.length > 0 ? 2 : 0), 1);
  buf.writeUInt16LE(r.keypairs.length, 2);
  if (ep && r.endpoint) {
    buf.set(ep, 4);
    buf.writeUInt16LE(r.endpoint.port, 8);
  }
  if (r.lastTimestamp) buf.set(r.lastTimestamp.subarray(0, 12), 12);
  buf.writeDoubleLE(r.lastHandshakeWallMs ?? 0, 24);
  r.keypairs.forEach((k, i) => {
    const o = HEADER + i * KEYPAIR;
    buf.writeUInt8(SLOTS.indexOf(k.slot), o);
    buf.writeUInt8((k.canSend ? 1 : 0) | (k.initiator ? 2 : 0), o + 1);
    buf.writeUInt32LE(k.localIndex >>> 0, o + 4);
    buf.writeUInt32LE(k.remoteIndex >>> 0, o + 8);
    buf.writeDoubleLE(k.createdWallMs, o + 12);
    buf.writeBigUInt64LE(k.sendReserved, o + 20);
    buf.writeBigUInt64LE(k.receiveNext, o + 28);
    buf.set(k.sendKey.subarray(0, 32), o + 36);
    buf.set(k.receiveKey.subarray(0, 32), o + 68);
  });
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function decodeTunnelRecord(state: Uint8Array): PeerReplica | null {
  if (state.length < HEADER) return null;
  const b = Buffer.from(state.buffer, state.byteOffset, state.byteLength);
  if (b.readUInt8(0) !== TUNNEL_RECORD_FORMAT) return null;
  const flags = b.readUInt8(1);
  const n = b.readUInt16LE(2);
  if (n > 3 || state.length !== HEADER + n * KEYPAIR) return null;
  const endpoint: Endpoint | undefined = flags & 1 ? { address: `${b[4]}.${b[5]}.${b[6]}.${b[7]}`, port: b.readUInt16LE(8) } : undefined;
  const ts = Uint8Array.from(b.subarray(12, 24));
  const lastTimestamp = ts.some((x) => x !== 0) ? ts : undefined;
  const hs = b.readDoubleLE(24);
  const keypairs: ReplicaKeypair[] = [];
  for (let i = 0; i < n; i++) {
    const o = HEADER + i * KEYPAIR;
    const slot = SLOTS[b.readUInt8(o)];
    const created = b.readDoubleLE(o + 12);
    if (!slot || !Number.isFinite(created)) return null;
    if (keypairs.some((k) => k.slot === slot)) return null;
    const kf = b.readUInt8(o + 1);
    keypairs.push({
      slot,
      canSend: (kf & 1) !== 0,
      initiator: (kf & 2) !== 0,
      localIndex: b.readUInt32LE(o + 4),
      remoteIndex: b.readUInt32LE(o + 8),
      createdWallMs: created,
      sendReserved: b.readBigUInt64LE(o + 20),
      receiveNext: b.readBigUInt64LE(o + 28),
      sendKey: Uint8Array.from(b.subarray(o + 36, o + 68)),
      receiveKey: Uint8Array.from(b.subarray(o + 68, o + 100)),
    });
  }
  return { ...(endpoint ? { endpoint } : {}), ...(lastTimestamp ? { lastTimestamp } : {}), ...(hs > 0 && Number.isFinite(hs) ? { lastHandshakeWallMs: hs } : {}), keypairs };
}
