/**
 * Encoding and decoding of cluster datagrams. decode* never throws: a datagram that fails to parse or
 * breaks a limit comes back as a WireError with a code a member can count and a message it can log.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { LIMITS } from './limits.js';
import { isIpv4 } from './ip.js';
import {
  PROTOCOL_VERSION,
  UNIT_COUNT,
  type ClusterMessage,
  type Envelope,
  type ExitReason,
  type AddressTakeover,
  type AffinityFlow,
  type MemberEntry,
  type MemberId,
  type NakCode,
  type OperatorAction,
  type SessionRecord,
  type SignedMessage,
  type WorkTableSnapshot,
  type WorkUnit,
} from './types.js';

export type WireErrorCode = 'decode' | 'unsupported-version' | 'limit' | 'invalid';

export class WireError extends Error {
  constructor(
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: WireError };

/** Path of the .proto file that defines the protocol (shipped with the package). */
export const PROTO_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'proto', 'cluster.proto');

const root = protobuf.loadSync(PROTO_PATH);
const EnvelopeT = root.lookupType('gwcluster.v1.Envelope');
const SignedMessageT = root.lookupType('gwcluster.v1.SignedMessage');
const ClusterMessageT = root.lookupType('gwcluster.v1.ClusterMessage');
const SyncRecordsT = root.lookupType('gwcluster.v1.SyncRecords');
const JoinReplyT = root.lookupType('gwcluster.v1.JoinReply');
const ExitClusterT = root.lookupType('gwcluster.v1.ExitCluster');
const OperatorRequestT = root.lookupType('gwcluster.v1.OperatorRequest');
const ActionEnum = OperatorRequestT.lookupEnum('Action').values as Record<string, number>;
const NakEnum = JoinReplyT.lookupEnum('NakCode').values as Record<string, number>;
const ExitEnum = ExitClusterT.lookupEnum('Reason').values as Record<string, number>;

const nakToWire: Record<NakCode, string> = {
  'in-progress': 'IN_PROGRESS',
  'certificate-rejected': 'CERTIFICATE_REJECTED',
  'application-rejected': 'APPLICATION_REJECTED',
  'cluster-full': 'CLUSTER_FULL',
  'config-mismatch': 'CONFIG_MISMATCH',
};
const exitToWire: Record<ExitReason, string> = {
  'not-a-member': 'NOT_A_MEMBER',
  'config-mismatch': 'CONFIG_MISMATCH',
  'lost-tie-break': 'LOST_TIE_BREAK',
  leaving: 'LEAVING',
  removed: 'REMOVED',
};
const actionToWire: Record<OperatorAction, string> = {
  drain: 'DRAIN',
  undrain: 'UNDRAIN',
  rebalance: 'REBALANCE',
  leave: 'LEAVE',
  join: 'JOIN',
  config: 'CONFIG',
  failback: 'FAILBACK',
};
const actionFromWire = new Map(Object.entries(actionToWire).map(([k, v]) => [ActionEnum[v], k as OperatorAction]));
const nakFromWire = new Map(Object.entries(nakToWire).map(([k, v]) => [NakEnum[v], k as NakCode]));
const exitFromWire = new Map(Object.entries(exitToWire).map(([k, v]) => [ExitEnum[v], k as ExitReason]));

const toObjectOptions = { longs: Number, enums: Number, bytes: Uint8Array, defaults: true, arrays: true } as const;

// ------------------------------------------------------------------------------------------------
// Unit sets and the work table
// ------------------------------------------------------------------------------------------------

/** Encodes ascending units as the 128-byte bitmap of proto UnitSet (empty set -> empty bytes). */
export function unitsToBitmap(units: readonly WorkUnit[]): Uint8Array {
  if (units.length === 0) return new Uint8Array(0);
  const bitmap = new Uint8Array(UNIT_COUNT / 8);
  for (const u of units) bitmap[u >> 3]! |= 1 << (u & 7);
  return bitmap;
}

export function bitmapToUnits(bitmap: Uint8Array): WorkUnit[] {
  const units: WorkUnit[] = [];
  for (let byte = 0; byte < bitmap.length; byte++) {
    const b = bitmap[byte]!;
    if (b === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) units.push(byte * 8 + bit);
  }
  return units;
}

/** Run-length encodes owners against the member list (slot = index + 1, 0 = unassigned). */
export function tableToRuns(owners: readonly (MemberId | null)[], members: readonly MemberId[]): number[] {
  const slotOf = new Map(members.map((m, i) => [m, i + 1]));
  const runs: number[] = [];
  let current = -1;
  let length = 0;
  for (const owner of owners) {
    const slot = owner === null ? 0 : (slotOf.get(owner) ?? 0);
    if (slot === current) {
      length++;
    } else {
      if (length > 0) runs.push(current, length);
      current = slot;
      length = 1;
    }
  }
  if (length > 0) runs.push(current, length);
  return runs;
}

export function runsToTable(runs: readonly number[], members: readonly MemberId[]): (MemberId | null)[] {
  if (runs.length % 2 !== 0) throw new WireError('invalid', 'work table runs must come in (slot, length) pairs');
  const owners: (MemberId | null)[] = [];
  for (let i = 0; i < runs.length; i += 2) {
    const slot = runs[i]!;
    const length = runs[i + 1]!;
    if (slot > members.length) throw new WireError('invalid', `work table names member slot ${slot} but the keepalive lists ${members.length} members`);
    if (length === 0 || owners.length + length > UNIT_COUNT) throw new WireError('invalid', `work table runs must add up to ${UNIT_COUNT} units`);
    const owner = slot === 0 ? null : members[slot - 1]!;
    for (let k = 0; k < length; k++) owners.push(owner);
  }
  if (owners.length !== UNIT_COUNT) throw new WireError('invalid', `work table runs add up to ${owners.length} units, not ${UNIT_COUNT}`);
  return owners;
}

// ------------------------------------------------------------------------------------------------
// Validation helpers (all throw WireError; decode* turns that into a value)
// ------------------------------------------------------------------------------------------------

export function isMemberId(value: string): boolean {
  return isIpv4(value);
}

function uint(value: unknown, field: string, max: number = LIMITS.maxUint64): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new WireError('limit', `${field} is ${String(value)}, outside 0..${max}`);
  }
  return value;
}

function finite(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1e12) {
    throw new WireError('invalid', `${field} must be a finite number from 0 to 1e12, got ${String(value)}`);
  }
  return value;
}

function text(value: unknown, field: string, maxChars: number): string {
  if (typeof value !== 'string') throw new WireError('invalid', `${field} must be text`);
  if (value.length > maxChars) throw new WireError('limit', `${field} is ${value.length} characters, more than ${maxChars}`);
  return value;
}

/** An optional software_version: absent or empty -> no field; else printable ASCII text of at most 32 chars. */
function softwareVersion(value: unknown, field: string): { softwareVersion?: string } {
  if (value === undefined || value === null || value === '') return {};
  const s = text(value, field, LIMITS.maxSoftwareVersionChars);
  if (!/^[\x21-\x7e]+$/.test(s)) throw new WireError('invalid', `${field} must be printable ASCII without spaces`);
  return { softwareVersion: s };
}

function memberId(value: unknown, field: string): MemberId {
  const s = text(value, field, 15);
  if (!isMemberId(s)) throw new WireError('invalid', `${field} "${s}" is not a dotted-quad IPv4 member address`);
  return s;
}

/** MasterKeepalive.successor: empty (none) or one of the listed members. */
function successorOf(value: unknown, members: readonly MemberEntry[]): { successor?: MemberId } {
  if (value === undefined || value === null || value === '') return {};
  const id = memberId(value, 'masterKeepalive.successor');
  if (!members.some((e) => e.member === id)) throw new WireError('invalid', `masterKeepalive.successor ${id} is not among the members`);
  return { successor: id };
}

/** MasterKeepalive.pool_owners and takeovers: slots and holders among the listed members. */
function poolOf(owners: unknown, takeovers: unknown, members: readonly MemberEntry[]): { poolOwners?: (MemberId | null)[]; takeovers?: AddressTakeover[] } {
  const ids = members.map((e) => e.member);
  const slots = list(owners, 'masterKeepalive.poolOwners', LIMITS.maxPoolAddresses, (v, f) => uint(v, f, ids.length));
  const taken = list(takeovers, 'masterKeepalive.takeovers', LIMITS.maxTakeovers, (v, f) => {
    const t = v as Obj;
    const member = memberId(t.member, `${f}.member`);
    const holder = memberId(t.holder, `${f}.holder`);
    if (!ids.includes(holder)) throw new WireError('invalid', `${f}.holder ${holder} is not among the members`);
    if (ids.includes(member)) throw new WireError('invalid', `${f}.member ${member} is a member; only a missing member's address is taken over`);
    return { member, holder };
  });
  if (new Set(taken.map((t) => t.member)).size !== taken.length) throw new WireError('invalid', 'masterKeepalive.takeovers names a member twice');
  return {
    ...(slots.length > 0 ? { poolOwners: slots.map((k) => (k === 0 ? null : ids[k - 1]!)) } : {}),
    ...(taken.length > 0 ? { takeovers: taken } : {}),
  };
}

function units(value: unknown, field: string): WorkUnit[] {
  if (!Array.isArray(value)) throw new WireError('invalid', `${field} must be a list of units`);
  if (value.length > UNIT_COUNT) throw new WireError('limit', `${field} lists ${value.length} units, more than ${UNIT_COUNT}`);
  return value.map((u, i) => uint(u, `${field}[${i}]`, UNIT_COUNT - 1));
}

function unitSet(value: unknown, field: string): WorkUnit[] {
  const bitmap = (value as { bitmap?: Uint8Array } | null | undefined)?.bitmap ?? new Uint8Array(0);
  if (bitmap.length !== 0 && bitmap.length !== UNIT_COUNT / 8) {
    throw new WireError('invalid', `${field} bitmap is ${bitmap.length} bytes; it must be empty or ${UNIT_COUNT / 8}`);
  }
  return bitmapToUnits(bitmap);
}

function payload(value: unknown, field: string): Uint8Array {
  // A plain Uint8Array copy (protobufjs hands out Buffers over the datagram's memory).
  const bytes = value instanceof Uint8Array ? new Uint8Array(value) : new Uint8Array(0);
  if (bytes.length > LIMITS.maxOperatorPayloadBytes) throw new WireError('limit', `${field} is ${bytes.length} bytes, more than ${LIMITS.maxOperatorPayloadBytes}`);
  return bytes;
}

function list<T>(value: unknown, field: string, max: number, each: (v: unknown, f: string) => T): T[] {
  if (!Array.isArray(value)) throw new WireError('invalid', `${field} must be a list`);
  if (value.length > max) throw new WireError('limit', `${field} has ${value.length} entries, more than ${max}`);
  return value.map((v, i) => each(v, `${field}[${i}]`));
}

// ------------------------------------------------------------------------------------------------
// ClusterMessage <-> protobuf object
// ------------------------------------------------------------------------------------------------

function messageToWire(m: ClusterMessage): Record<string, unknown> {
  switch (m.type) {
    case 'join-request':
      return {
        joinRequest: {
          configVersion: m.configVersion,
          claimedUnits: { bitmap: unitsToBitmap(m.claimedUnits) },
          nonce: m.nonce,
          ...(m.softwareVersion ? { softwareVersion: m.softwareVersion } : {}),
        },
      };
    case 'join-reply':
      return m.result === 'ok'
        ? {
            joinReply: {
              result: 1,
              nonce: m.nonce,
              epoch: m.epoch,
              grantedUnits: { bitmap: unitsToBitmap(m.grantedUnits) },
              keepalivePeriodMs: m.keepalivePeriodMs,
            },
          }
        : { joinReply: { result: 2, nakCode: NakEnum[nakToWire[m.code]], reason: m.reason, nonce: m.nonce, epoch: m.epoch } };
    case 'master-offer':
      return { masterOffer: { epoch: m.epoch, memberCount: m.memberCount } };
    case 'other-master-exists':
      return { otherMasterExists: { epoch: m.epoch, memberCount: m.memberCount } };
    case 'master-keepalive': {
      const ids = m.members.map((e) => e.member);
      return {
        masterKeepalive: {
          epoch: m.epoch,
          seq: m.seq,
          keepalivePeriodMs: m.keepalivePeriodMs,
          configVersion: m.configVersion,
          members: m.members.map((e) => ({ ...e, lastHeardMsAgo: Math.min(0xffffffff, Math.max(0, Math.round(e.lastHeardMsAgo ?? 0))) })),
          table: { version: m.table.version, runs: tableToRuns(m.table.owners, ids) },
          successor: m.successor ?? '',
          poolOwners: (m.poolOwners ?? []).map((o) => (o === null ? 0 : ids.indexOf(o) + 1)),
          takeovers: (m.takeovers ?? []).map((t) => ({ member: t.member, holder: t.holder })),
        },
      };
    }
    case 'client-keepalive':
      return {
        clientKeepalive: {
          epoch: m.epoch,
          seq: m.seq,
          load: m.load,
          ownedUnits: { bitmap: unitsToBitmap(m.ownedUnits) },
          busiestUnits: m.busiestUnits.map((u) => ({ ...u })),
          syncReady: m.syncReady ?? true,
          ...(m.softwareVersion ? { softwareVersion: m.softwareVersion } : {}),
        },
      };
    case 'exit-cluster':
      return { exitCluster: { reason: ExitEnum[exitToWire[m.reason]], detail: m.detail, epoch: m.epoch, configVersion: m.configVersion } };
    case 'work-assign':
      return { workAssign: { epoch: m.epoch, requestId: m.requestId, units: [...m.units] } };
    case 'work-deassign':
      return { workDeassign: { epoch: m.epoch, requestId: m.requestId, units: [...m.units], to: m.to } };
    case 'work-ack':
      return { workAck: { epoch: m.epoch, requestId: m.requestId, units: [...m.units] } };
    case 'operator-request':
      return { operatorRequest: { requestId: m.requestId, action: ActionEnum[actionToWire[m.action]], member: m.member, payload: m.payload } };
    case 'operator-reply':
      return { operatorReply: { requestId: m.requestId, ok: m.ok, code: m.code, detail: m.detail, payload: m.payload } };
    case 'config-update':
      return { configUpdate: { version: m.version, clusterConfig: m.clusterConfig } };
    case 'config-status':
      return { configStatus: { version: m.version } };
    case 'state-sync':
      return { stateSync: { seq: m.seq, records: m.records.map(recordToWire), snapshotComplete: m.snapshotComplete, ...(m.sealed && m.sealed.length > 0 ? { sealed: m.sealed } : {}) } };
    case 'state-ack':
      return { stateAck: { seqs: [...m.seqs] } };
    case 'pool-affinity':
      return { poolAffinity: { address: m.address, serial: m.serial, flows: encodeFlows(m.flows) } };
  }
}

type Obj = Record<string, any>;

function encodeFlows(flows: readonly AffinityFlow[]): Uint8Array {
  const out = new Uint8Array(flows.length * 8);
  const v = new DataView(out.buffer);
  flows.forEach((f, i) => {
    f.client.split('.').forEach((o, j) => v.setUint8(i * 8 + j, Number(o)));
    v.setUint16(i * 8 + 4, f.clientPort);
    v.setUint16(i * 8 + 6, f.port);
  });
  return out;
}

function decodeFlows(bytes: Uint8Array): AffinityFlow[] {
  if (bytes.length % 8 !== 0) throw new WireError('invalid', `poolAffinity.flows is ${bytes.length} bytes, not a multiple of 8`);
  if (bytes.length / 8 > LIMITS.maxAffinityFlows) throw new WireError('limit', `poolAffinity.flows has ${bytes.length / 8} connections, more than ${LIMITS.maxAffinityFlows}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: AffinityFlow[] = [];
  for (let i = 0; i < bytes.length; i += 8) {
    out.push({ client: `${bytes[i]}.${bytes[i + 1]}.${bytes[i + 2]}.${bytes[i + 3]}`, clientPort: v.getUint16(i + 4), port: v.getUint16(i + 6) });
  }
  return out;
}

function recordToWire(r: SessionRecord): Obj {
  return { key: r.key, version: r.version, state: r.state, removed: r.removed };
}

/** One SessionRecord, checked against the limits. */
function sessionRecord(v: unknown, f: string): SessionRecord {
  const r = v as Obj;
  const key = r.key as Uint8Array;
  const state = r.state as Uint8Array;
  if (key.length === 0 || key.length > LIMITS.maxSessionKeyBytes) throw new WireError('limit', `${f}.key is ${key.length} bytes; allowed 1..${LIMITS.maxSessionKeyBytes}`);
  if (state.length > LIMITS.maxSessionStateBytes) throw new WireError('limit', `${f}.state is ${state.length} bytes, more than ${LIMITS.maxSessionStateBytes}`);
  if (!r.removed && state.length === 0) throw new WireError('invalid', `${f} carries no state and is not a removal`);
  // Plain copies: protobufjs hands out Buffers that share the datagram's memory.
  return { key: new Uint8Array(key), version: uint(r.version, `${f}.version`), state: new Uint8Array(state), removed: r.removed === true };
}

function messageFromWire(o: Obj): ClusterMessage {
  const body = o.body as string | undefined;
  if (!body) throw new WireError('invalid', 'message carries no body (unknown or missing message type)');
  const b = o[body] as Obj;
  switch (body) {
    case 'joinRequest':
      return {
        type: 'join-request',
        configVersion: uint(b.configVersion, 'joinRequest.configVersion'),
        claimedUnits: unitSet(b.claimedUnits, 'joinRequest.claimedUnits'),
        nonce: uint(b.nonce, 'joinRequest.nonce'),
        ...softwareVersion(b.softwareVersion, 'joinRequest.softwareVersion'),
      };
    case 'joinReply': {
      const nonce = uint(b.nonce, 'joinReply.nonce');
      const epoch = uint(b.epoch, 'joinReply.epoch');
      if (b.result === 1) {
        return {
          type: 'join-reply',
          result: 'ok',
          nonce,
          epoch,
          grantedUnits: unitSet(b.grantedUnits, 'joinReply.grantedUnits'),
          keepalivePeriodMs: uint(b.keepalivePeriodMs, 'joinReply.keepalivePeriodMs', 60_000),
        };
      }
      if (b.result === 2) {
        const code = nakFromWire.get(b.nakCode);
        if (!code) throw new WireError('invalid', `joinReply.nakCode ${String(b.nakCode)} is not a known NAK code`);
        return { type: 'join-reply', result: 'nak', code, reason: text(b.reason, 'joinReply.reason', LIMITS.maxReasonChars), nonce, epoch };
      }
      throw new WireError('invalid', `joinReply.result ${String(b.result)} is neither OK nor NAK`);
    }
    case 'masterOffer':
      return { type: 'master-offer', epoch: uint(b.epoch, 'masterOffer.epoch'), memberCount: uint(b.memberCount, 'masterOffer.memberCount', LIMITS.maxMembers) };
    case 'otherMasterExists':
      return {
        type: 'other-master-exists',
        epoch: uint(b.epoch, 'otherMasterExists.epoch'),
        memberCount: uint(b.memberCount, 'otherMasterExists.memberCount', LIMITS.maxMembers),
      };
    case 'masterKeepalive': {
      const members: MemberEntry[] = list(b.members, 'masterKeepalive.members', LIMITS.maxMembers, (v, f) => {
        const e = v as Obj;
        return {
          member: memberId(e.member, `${f}.member`),
          watchdogPeriods: uint(e.watchdogPeriods, `${f}.watchdogPeriods`, 1000),
          loss: finite(e.loss, `${f}.loss`),
          load: finite(e.load, `${f}.load`),
          // Optional on the wire (proto3 defaults): present in the value only when set.
          ...(e.draining === true ? { draining: true } : {}),
          ...(e.lastHeardMsAgo ? { lastHeardMsAgo: uint(e.lastHeardMsAgo, `${f}.lastHeardMsAgo`, 0xffffffff) } : {}),
          ...softwareVersion(e.softwareVersion, `${f}.softwareVersion`),
        };
      });
      if (new Set(members.map((e) => e.member)).size !== members.length) throw new WireError('invalid', 'masterKeepalive.members lists a member twice');
      const t = (b.table ?? {}) as Obj;
      const runs = list(t.runs, 'masterKeepalive.table.runs', LIMITS.maxTableRunNumbers, (v, f) => uint(v, f, UNIT_COUNT));
      const table: WorkTableSnapshot = {
        version: uint(t.version, 'masterKeepalive.table.version'),
        owners: runsToTable(runs, members.map((e) => e.member)),
      };
      return {
        type: 'master-keepalive',
        epoch: uint(b.epoch, 'masterKeepalive.epoch'),
        seq: uint(b.seq, 'masterKeepalive.seq'),
        keepalivePeriodMs: uint(b.keepalivePeriodMs, 'masterKeepalive.keepalivePeriodMs', 60_000),
        configVersion: uint(b.configVersion, 'masterKeepalive.configVersion'),
        members,
        table,
        ...successorOf(b.successor, members),
        ...poolOf(b.poolOwners, b.takeovers, members),
      };
    }
    case 'clientKeepalive':
      return {
        type: 'client-keepalive',
        epoch: uint(b.epoch, 'clientKeepalive.epoch'),
        seq: uint(b.seq, 'clientKeepalive.seq'),
        load: finite(b.load, 'clientKeepalive.load'),
        ownedUnits: unitSet(b.ownedUnits, 'clientKeepalive.ownedUnits'),
        busiestUnits: list(b.busiestUnits, 'clientKeepalive.busiestUnits', LIMITS.maxBusiestUnits, (v, f) => ({
          unit: uint((v as Obj).unit, `${f}.unit`, UNIT_COUNT - 1),
          weight: finite((v as Obj).weight, `${f}.weight`),
        })),
        syncReady: b.syncReady === true,
        ...softwareVersion(b.softwareVersion, 'clientKeepalive.softwareVersion'),
      };
    case 'stateSync': {
      const sealed = b.sealed as Uint8Array;
      const records = list(b.records, 'stateSync.records', LIMITS.maxSyncRecords, sessionRecord);
      if (sealed.length > LIMITS.maxSealedSyncBytes) throw new WireError('limit', `stateSync.sealed is ${sealed.length} bytes, more than ${LIMITS.maxSealedSyncBytes}`);
      if (sealed.length > 0 && records.length > 0) throw new WireError('invalid', 'stateSync carries sealed and clear records');
      return {
        type: 'state-sync',
        seq: uint(b.seq, 'stateSync.seq'),
        records,
        snapshotComplete: b.snapshotComplete === true,
        ...(sealed.length > 0 ? { sealed: new Uint8Array(sealed) } : {}),
      };
    }
    case 'poolAffinity':
      return { type: 'pool-affinity', address: memberId(b.address, 'poolAffinity.address'), serial: uint(b.serial, 'poolAffinity.serial'), flows: decodeFlows(b.flows as Uint8Array) };
    case 'stateAck':
      return { type: 'state-ack', seqs: list(b.seqs, 'stateAck.seqs', LIMITS.maxSyncAcks, (v, f) => uint(v, f)) };
    case 'exitCluster': {
      const reason = exitFromWire.get(b.reason);
      if (!reason) throw new WireError('invalid', `exitCluster.reason ${String(b.reason)} is not a known reason`);
      return {
        type: 'exit-cluster',
        reason,
        detail: text(b.detail, 'exitCluster.detail', LIMITS.maxReasonChars),
        epoch: uint(b.epoch, 'exitCluster.epoch'),
        configVersion: uint(b.configVersion, 'exitCluster.configVersion'),
      };
    }
    case 'workAssign':
      return { type: 'work-assign', epoch: uint(b.epoch, 'workAssign.epoch'), requestId: uint(b.requestId, 'workAssign.requestId'), units: units(b.units, 'workAssign.units') };
    case 'workDeassign':
      return {
        type: 'work-deassign',
        epoch: uint(b.epoch, 'workDeassign.epoch'),
        requestId: uint(b.requestId, 'workDeassign.requestId'),
        units: units(b.units, 'workDeassign.units'),
        to: b.to === '' ? '' : memberId(b.to, 'workDeassign.to'),
      };
    case 'workAck':
      return { type: 'work-ack', epoch: uint(b.epoch, 'workAck.epoch'), requestId: uint(b.requestId, 'workAck.requestId'), units: units(b.units, 'workAck.units') };
    case 'operatorRequest': {
      const action = actionFromWire.get(b.action);
      if (!action) throw new WireError('invalid', `operatorRequest.action ${String(b.action)} is not a known action`);
      return {
        type: 'operator-request',
        requestId: uint(b.requestId, 'operatorRequest.requestId'),
        action,
        member: b.member === '' ? '' : memberId(b.member, 'operatorRequest.member'),
        payload: payload(b.payload, 'operatorRequest.payload'),
      };
    }
    case 'operatorReply':
      return {
        type: 'operator-reply',
        requestId: uint(b.requestId, 'operatorReply.requestId'),
        ok: b.ok === true,
        code: text(b.code, 'operatorReply.code', LIMITS.maxErrorCodeChars),
        detail: text(b.detail, 'operatorReply.detail', LIMITS.maxReasonChars),
        payload: payload(b.payload, 'operatorReply.payload'),
      };
    case 'configUpdate':
      return { type: 'config-update', version: uint(b.version, 'configUpdate.version'), clusterConfig: payload(b.clusterConfig, 'configUpdate.clusterConfig') };
    case 'configStatus':
      return { type: 'config-status', version: uint(b.version, 'configStatus.version') };
    default:
      throw new WireError('invalid', `unknown message type ${body}`);
  }
}

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

function attempt<T>(what: string, fn: () => T): Decoded<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (e instanceof WireError) return { ok: false, error: e };
    return { ok: false, error: new WireError('decode', `${what}: ${(e as Error).message}`) };
  }
}

export function encodeClusterMessage(m: ClusterMessage): Uint8Array {
  return ClusterMessageT.encode(ClusterMessageT.fromObject(messageToWire(m))).finish();
}

/** Decodes a bare ClusterMessage (used by the in-memory network to exercise the codec). */
export function decodeClusterMessage(bytes: Uint8Array): Decoded<ClusterMessage> {
  return attempt('cluster message does not decode', () =>
    messageFromWire(ClusterMessageT.toObject(ClusterMessageT.decode(bytes), { ...toObjectOptions, oneofs: true }) as Obj),
  );
}

/** The plaintext of StateSync.sealed (proto SyncRecords). */
export function encodeSyncRecords(records: readonly SessionRecord[]): Uint8Array {
  return SyncRecordsT.encode(SyncRecordsT.fromObject({ records: records.map(recordToWire) })).finish();
}

/** Decodes the plaintext of StateSync.sealed; never throws. */
export function decodeSyncRecords(bytes: Uint8Array): Decoded<SessionRecord[]> {
  return attempt('sync records do not decode', () => {
    if (bytes.length > LIMITS.maxSealedSyncBytes) throw new WireError('limit', `sync records are ${bytes.length} bytes, more than ${LIMITS.maxSealedSyncBytes}`);
    const o = SyncRecordsT.toObject(SyncRecordsT.decode(bytes), toObjectOptions) as Obj;
    return list(o.records, 'syncRecords.records', LIMITS.maxSyncRecords, sessionRecord);
  });
}

export function encodeSignedMessage(s: SignedMessage): Uint8Array {
  const obj = {
    cluster: s.cluster,
    sender: s.sender,
    certChain: [...s.certChain],
    incarnation: s.incarnation,
    seq: s.seq,
    sentAtMs: s.sentAtMs,
    message: messageToWire(s.message),
    recipient: s.recipient === 'broadcast' ? '' : s.recipient,
    version: s.version,
    recipientIncarnation: s.recipientIncarnation ?? 0,
  };
  return SignedMessageT.encode(SignedMessageT.fromObject(obj)).finish();
}

export function decodeSignedMessage(bytes: Uint8Array): Decoded<SignedMessage> {
  return attempt('signed message does not decode', () => {
    if (bytes.length > LIMITS.maxSignedBytes) throw new WireError('limit', `signed message is ${bytes.length} bytes, more than ${LIMITS.maxSignedBytes}`);
    const o = SignedMessageT.toObject(SignedMessageT.decode(bytes), { ...toObjectOptions, oneofs: true }) as Obj;
    const certChain = list(o.certChain, 'certChain', LIMITS.maxCertificates, (v, f) => {
      const der = v as Uint8Array;
      if (der.length === 0 || der.length > LIMITS.maxCertificateBytes) throw new WireError('limit', `${f} is ${der.length} bytes; allowed 1..${LIMITS.maxCertificateBytes}`);
      return der;
    });
    if (!o.message) throw new WireError('invalid', 'signed message carries no cluster message');
    return {
      cluster: text(o.cluster, 'cluster', LIMITS.maxClusterNameChars),
      sender: memberId(o.sender, 'sender'),
      certChain,
      incarnation: uint(o.incarnation, 'incarnation'),
      seq: uint(o.seq, 'seq'),
      sentAtMs: uint(o.sentAtMs, 'sentAtMs'),
      message: messageFromWire(o.message as Obj),
      recipient: o.recipient === '' ? 'broadcast' : memberId(o.recipient, 'recipient'),
      version: uint(o.version, 'version', 0xffffffff),
      recipientIncarnation: uint(o.recipientIncarnation, 'recipientIncarnation'),
    };
  });
}

/**
 * Writes whichever of signature and mac is present (an empty one is left out). It does not check that
 * exactly one is: decodeEnvelope does, on the receiving side.
 */
export function encodeEnvelope(e: Envelope): Uint8Array {
  const o: Record<string, unknown> = { version: e.version, signed: e.signed };
  if (e.signature.length > 0) o.signature = e.signature;
  if (e.mac && e.mac.length > 0) o.mac = e.mac;
  return EnvelopeT.encode(EnvelopeT.fromObject(o)).finish();
}

/**
 * Decodes the outer frame only; the caller checks the signature or MAC before decoding `signed`.
 * Exactly one of signature (1..LIMITS.maxSignatureBytes) and mac (LIMITS.macBytes) must be present.
 */
export function decodeEnvelope(bytes: Uint8Array): Decoded<Envelope> {
  return attempt('datagram is not an envelope', () => {
    if (bytes.length > LIMITS.maxDatagramBytes) throw new WireError('limit', `datagram is ${bytes.length} bytes, more than ${LIMITS.maxDatagramBytes}`);
    const o = EnvelopeT.toObject(EnvelopeT.decode(bytes), toObjectOptions) as Obj;
    const version = uint(o.version, 'version', 0xffffffff);
    if (version !== PROTOCOL_VERSION) {
      throw new WireError('unsupported-version', `protocol version ${version} is not supported (this member speaks version ${PROTOCOL_VERSION}); upgrade the members to one release`);
    }
    const signed = o.signed as Uint8Array;
    const signature = o.signature as Uint8Array;
    const mac = o.mac as Uint8Array;
    if (signed.length === 0) throw new WireError('invalid', 'envelope carries no signed message');
    if (signature.length === 0 && mac.length === 0) throw new WireError('invalid', 'envelope carries neither a signature nor a MAC');
    if (signature.length > 0 && mac.length > 0) throw new WireError('invalid', `envelope carries both a signature (${signature.length} bytes) and a MAC (${mac.length} bytes); exactly one is allowed`);
    if (signature.length > LIMITS.maxSignatureBytes) throw new WireError('limit', `signature is ${signature.length} bytes; allowed 1..${LIMITS.maxSignatureBytes}`);
    if (mac.length > 0 && mac.length !== LIMITS.macBytes) throw new WireError('limit', `MAC is ${mac.length} bytes; an HMAC-SHA-256 MAC is exactly ${LIMITS.macBytes}`);
    return { version, signed, signature, mac };
  });
}
