/**
 * MEMBER: a client of the master. Sends CLIENT KEEPALIVE every period, watches the master's keepalives
 * with the adaptive watchdog (Figure 8C), follows the master's table, and answers WORK ASSIGN / WORK
 * DE-ASSIGN (with a session hand-over first when handoverBeforeAck).
 */
import type { ClusterMessage, MasterKeepalive, MemberId } from '@gwcluster/wire';
import { LIVENESS_KEEPALIVES_LATE, lostBetween, peerWatchdogMs, updateLoss, watchdogMs, watchdogPeriods } from '../adaptive.js';
import type { CoreEvent } from '../events.js';
import { holdAddresses } from './address-pool.js';
import { leaveCluster, onExitCluster, stepAnyRole, type JoinAccepted, type MemberCore, type MemberRoleState } from './shared.js';

/** Admitted by `from`: keep the granted units, drop the rest, and send the first keepalive now. */
export function enterMember(c: MemberCore, now: number, from: MemberId, reply: JoinAccepted): void {
  const granted = new Set(reply.grantedUnits);
  const dropped = [...c.owned].filter((u) => !granted.has(u));
  c.changeOwned([], dropped, 'not granted at join');
  const st: MemberRoleState = {
    kind: 'member',
    master: from,
    epoch: reply.epoch,
    periodMs: reply.keepalivePeriodMs,
    lastMasterHeardAt: now,
    masterSeq: 0,
    masterLoss: 0,
    masterWatchdogPeriods: c.config.minWatchdogPeriods,
    clientSeq: 0,
    nextKeepaliveAt: now,
  };
  c.setRole(st, now);
  c.log('info', 'joined cluster', { master: from, epoch: reply.epoch, granted: granted.size });
  tick(c, st, now);
}

export function stepMember(c: MemberCore, st: MemberRoleState, e: CoreEvent): void {
  switch (e.type) {
    case 'tick':
      tick(c, st, e.now);
      return;
    case 'message': {
      const { now, from, message: msg } = e;
      switch (msg.type) {
        case 'master-keepalive':
          masterKeepalive(c, st, now, from, msg);
          return;
        case 'work-assign':
        case 'work-deassign':
          work(c, st, now, from, msg);
          return;
        case 'exit-cluster':
          onExitCluster(c, now, from, msg);
          return;
        default:
          return;
      }
    }
    case 'peer-silent':
      peerSilent(c, st, e.now, e.peer, e.silentMs);
      return;
    case 'peer-alive':
      if (e.peer === st.master) delete st.masterSilentReportedAt;
      return;
    case 'leave':
      c.send(st.master, { type: 'exit-cluster', reason: 'leaving', detail: e.detail ?? `${c.self} leaves the cluster`, epoch: st.epoch, configVersion: c.configVersion });
      leaveCluster(c, e.now);
      return;
    default:
      stepAnyRole(c, e);
  }
}

/**
 * The successor named by our master took office (its keepalive or WORK message carries a later epoch):
 * follow it, keeping every unit; its table decides from its first keepalive on.
 */
function followSuccessor(c: MemberCore, st: MemberRoleState, now: number, from: MemberId, epoch: number): void {
  const old = st.master;
  st.master = from;
  st.epoch = epoch;
  st.masterSeq = 0;
  st.masterLoss = 0;
  st.masterWatchdogPeriods = c.config.minWatchdogPeriods;
  st.lastMasterHeardAt = now;
  st.nextKeepaliveAt = now;
  delete st.awaitingSuccessorSince;
  delete st.successor;
  c.count('succession.followed');
  c.setRole(st, now);
  c.log('info', 'following the successor', { master: from, previous: old, epoch, units: c.owned.size });
}

/** A message from the successor our master named, in a later term than ours. */
function fromSuccessor(st: MemberRoleState, from: MemberId, epoch: number): boolean {
  return from !== st.master && from === st.successor && epoch > st.epoch;
}

function masterKeepalive(c: MemberCore, st: MemberRoleState, now: number, from: MemberId, ka: MasterKeepalive): void {
  if (fromSuccessor(st, from, ka.epoch)) followSuccessor(c, st, now, from, ka.epoch);
  if (from !== st.master) {
    c.count('rx.master-keepalive.other-master');
    return;
  }
  if (ka.epoch < st.epoch) return;
  if (ka.seq <= st.masterSeq) return;
  if (st.awaitingSuccessorSince !== undefined) {
    // The master was not dead after all (its keepalives were delayed or lost): carry on.
    delete st.awaitingSuccessorSince;
    c.count('succession.master-back');
  }
  if (st.masterSeq > 0) {
    st.masterLoss = updateLoss(st.masterLoss, lostBetween(st.masterSeq, ka.seq));
    st.masterWatchdogPeriods = watchdogPeriods(st.masterLoss, c.config.lossToleranceK, c.config.maxWatchdogPeriods, c.config.minWatchdogPeriods);
  }
  st.masterSeq = ka.seq;
  st.lastMasterHeardAt = now;
  delete st.masterSilentReportedAt;
  st.epoch = ka.epoch;
  st.periodMs = ka.keepalivePeriodMs;
  if (ka.successor !== undefined) st.successor = ka.successor;
  else delete st.successor;
  if (ka.configVersion !== c.configVersion) {
    c.become.idle(c, now, { kind: 'waiting-config' }, `master ${from} runs configuration version ${ka.configVersion}, this member ${c.configVersion}`);
    return;
  }
  c.table = {
    members: ka.members,
    owners: ka.table.owners,
    version: ka.table.version,
    at: now,
    ...(ka.poolOwners ? { poolOwners: ka.poolOwners } : {}),
    ...(ka.takeovers ? { takeovers: ka.takeovers } : {}),
  };
  c.announceMembers(ka.members.map((e) => e.member));
  holdAddresses(c, ka.poolOwners, ka.takeovers, `master ${from}'s keepalive`);
  // Units the master's table gives to someone else are not ours (a de-assign we missed, or a
  // conflicting claim after a partition healed).
  const notOurs = [...c.owned].filter((u) => ka.table.owners[u] !== c.self);
  if (notOurs.length > 0) {
    c.count('reconcile.dropped', notOurs.length);
    c.changeOwned([], notOurs, 'the master table gives them to another member');
  }
}

function tick(c: MemberCore, st: MemberRoleState, now: number): void {
  if (st.awaitingSuccessorSince !== undefined) {
    // The successor has not spoken within the shortest watchdog: it is dead too, or cut off from us. While
    // its heartbeats arrive (fast liveness vouches for it) it is alive and only slow to take office (a
    // busy host): it gets the vouched watchdog, and a report of its silence ends the wait at once.
    const wait = peerWatchdogMs(c.config.minWatchdogPeriods, st.periodMs, st.successor !== undefined && c.vouched.has(st.successor));
    if (now - st.awaitingSuccessorSince > wait && c.judgesSilence()) successorSilent(c, st, now);
    return;
  }
  const limit = peerWatchdogMs(st.masterWatchdogPeriods, st.periodMs, c.vouched.has(st.master));
  if (now - st.lastMasterHeardAt > limit && c.judgesSilence()) {
    c.count(c.vouched.has(st.master) ? 'watchdog.master-dead-vouched' : 'watchdog.master-dead');
    masterDead(c, st, now, 'watchdog');
    return;
  }
  if (st.masterSilentReportedAt !== undefined && now - st.lastMasterHeardAt > LIVENESS_KEEPALIVES_LATE * st.periodMs && c.judgesSilence()) {
    c.count('liveness.master-dead');
    masterDead(c, st, now, 'fast liveness');
    return;
  }
  if (now >= st.nextKeepaliveAt) {
    st.nextKeepaliveAt = Math.max(st.nextKeepaliveAt + st.periodMs, now + 1);
    const busiest = c.busiestUnits.filter((b) => c.owned.has(b.unit));
    c.send(st.master, {
      type: 'client-keepalive',
      epoch: st.epoch,
      seq: ++st.clientSeq,
      load: Math.max(c.load, 0),
      ownedUnits: c.ownedList(),
      busiestUnits: busiest,
      syncReady: c.syncReady,
      ...(c.config.softwareVersion ? { softwareVersion: c.config.softwareVersion } : {}),
    });
  }
}

/** The master is dead (its watchdog expired, or fast liveness and a late keepalive say so). */
function masterDead(c: MemberCore, st: MemberRoleState, now: number, by: 'watchdog' | 'fast liveness'): void {
  const silentMs = now - st.lastMasterHeardAt;
  delete st.masterSilentReportedAt;
  c.log('warn', by === 'watchdog' ? 'master watchdog expired' : 'master silent (fast liveness)', { master: st.master, silentMs, watchdogPeriods: st.masterWatchdogPeriods, successor: st.successor ?? '-' });
  if (st.successor === c.self) {
    // Named successor: take office now, with the master's table and members (no election).
    c.count('succession.took-office');
    c.become.master(c, now, [], { deadMaster: st.master, epoch: st.epoch });
    return;
  }
  if (st.successor !== undefined) {
    st.awaitingSuccessorSince = now;
    return;
  }
  c.previousMembers = c.table.members.map((e) => e.member).filter((m) => m !== st.master);
  c.become.joining(c, now, `master ${st.master} silent for ${silentMs} ms`);
}

function successorSilent(c: MemberCore, st: MemberRoleState, now: number): void {
  c.count('succession.successor-silent');
  c.previousMembers = c.table.members.map((e) => e.member).filter((m) => m !== st.master);
  c.become.joining(c, now, `master ${st.master} silent and its successor ${st.successor ?? '-'} did not take office`);
}

/** Fast liveness reports `peer` silent: acted on at once when the protocol's keepalives are late too, else on a later tick. */
function peerSilent(c: MemberCore, st: MemberRoleState, now: number, peer: MemberId, silentMs: number): void {
  if (st.awaitingSuccessorSince !== undefined && peer === st.successor) {
    c.log('warn', 'successor silent (fast liveness)', { successor: peer, silentMs });
    successorSilent(c, st, now);
    return;
  }
  if (peer !== st.master) {
    c.count('liveness.ignored');
    return;
  }
  if (st.awaitingSuccessorSince !== undefined) return;
  st.masterSilentReportedAt = now;
  tick(c, st, now);
}

function work(c: MemberCore, st: MemberRoleState, now: number, from: MemberId, msg: ClusterMessage & { type: 'work-assign' | 'work-deassign' }): void {
  if (fromSuccessor(st, from, msg.epoch)) followSuccessor(c, st, now, from, msg.epoch);
  if (from !== st.master || msg.epoch !== st.epoch) {
    c.count('rx.work.stale');
    return;
  }
  if (msg.type === 'work-assign') {
    c.changeOwned(msg.units, [], 'assigned by master');
    c.send(from, { type: 'work-ack', epoch: st.epoch, requestId: msg.requestId, units: msg.units });
    return;
  }
  if (c.handovers.has(msg.requestId)) return; // a retransmission while the hand-over runs
  const mine = msg.units.filter((u) => c.owned.has(u));
  c.changeOwned([], msg.units, msg.to ? `moved to ${msg.to}` : 'released');
  if (c.config.handoverBeforeAck && mine.length > 0) {
    c.handovers.set(msg.requestId, { epoch: st.epoch, master: from, units: msg.units });
    c.emit({ type: 'handover', requestId: msg.requestId, units: mine, to: msg.to });
    return;
  }
  c.send(from, { type: 'work-ack', epoch: st.epoch, requestId: msg.requestId, units: msg.units });
}
