/**
 * JOINING (Figure 6, steps 1-4): broadcast JOIN REQUEST with the units this member claims, re-send until
 * a master answers, and offer to become master when none does within joinTimeoutMs.
 */
import type { JoinReply, JoinRequest, MasterKeepalive, MemberId } from '@gwcluster/wire';
import { watchdogMs } from '../adaptive.js';
import type { CoreEvent } from '../events.js';
import { compareMemberIds } from '@gwcluster/wire';
import { onExitCluster, stepAnyRole, type JoiningState, type MemberCore } from './shared.js';

export function enterJoining(c: MemberCore, now: number, why: string, offerDelayMs = c.config.joinTimeoutMs): void {
  if (c.role.kind === 'master') c.emit({ type: 'release-cluster-ip' });
  const j: JoiningState = { kind: 'joining', nonce: 0, resendAt: now, offerAt: now + offerDelayMs, verdictBy: 0 };
  c.setRole(j, now);
  c.log('info', `joining (${why})`, { claims: c.owned.size });
  sendJoinRequest(c, j, now);
}

function sendJoinRequest(c: MemberCore, j: JoiningState, now: number): void {
  j.nonce = c.nextNonce();
  j.resendAt = now + c.config.joinTimeoutMs;
  const req: JoinRequest = {
    type: 'join-request',
    configVersion: c.configVersion,
    claimedUnits: c.ownedList(),
    nonce: j.nonce,
    ...(c.config.softwareVersion ? { softwareVersion: c.config.softwareVersion } : {}),
  };
  c.send('broadcast', req);
}

export function stepJoining(c: MemberCore, j: JoiningState, e: CoreEvent): void {
  switch (e.type) {
    case 'tick':
      tick(c, j, e.now);
      return;
    case 'message': {
      const { now, from, message: msg } = e;
      switch (msg.type) {
        case 'join-reply':
          joiningReply(c, j, now, from, msg);
          return;
        case 'other-master-exists':
          // Someone is master: re-send JOIN now.
          sendJoinRequest(c, j, now);
          return;
        case 'master-offer':
          // Another joiner offers; a lower address will become master, so wait for it instead of offering.
          if (compareMemberIds(from, c.self) < 0) {
            j.offerAt = Math.max(j.offerAt, now + c.config.offerTimeoutMs + 2 * c.config.joinTimeoutMs);
          }
          return;
        case 'master-keepalive':
          masterAlive(c, j, now, from, msg);
          return;
        case 'exit-cluster':
          onExitCluster(c, now, from, msg);
          return;
        default:
          return;
      }
    }
    default:
      stepAnyRole(c, e);
  }
}

/**
 * An authenticated MASTER KEEPALIVE while joining: a master is alive, so this member must not offer
 * (and so never elects itself beside it). It keeps sending JOIN REQUEST; the offer waits until no
 * master keepalive has been heard for the shortest watchdog, (2 + 0.5) * T (Figure 8C with n = 2: a
 * master that missed two keepalives in a row is taken for dead, as its members do). A member
 * that hears the master but cannot join (its requests or the replies are lost) stays joining and says
 * so, instead of making a second cluster.
 */
function masterAlive(c: MemberCore, j: JoiningState, now: number, from: MemberId, ka: MasterKeepalive): void {
  c.count('join.master-alive');
  if (j.masterHeard === undefined) c.log('info', 'a master is alive: joining it, not offering', { master: from, epoch: ka.epoch });
  j.masterHeard = from;
  j.offerAt = Math.max(j.offerAt, now + watchdogMs(c.config.minWatchdogPeriods, ka.keepalivePeriodMs));
}

function tick(c: MemberCore, j: JoiningState, now: number): void {
  if (j.verdictBy > 0 && now >= j.verdictBy) {
    // The master went quiet while asking its applications: start over.
    j.verdictBy = 0;
    j.offerAt = now + c.config.joinTimeoutMs;
    sendJoinRequest(c, j, now);
    return;
  }
  if (now >= j.offerAt && c.judgesSilence()) {
    c.become.offering(c, now);
    return;
  }
  if (now >= j.resendAt) sendJoinRequest(c, j, now);
}

function joiningReply(c: MemberCore, j: JoiningState, now: number, from: MemberId, reply: JoinReply): void {
  if (reply.nonce !== j.nonce && !(reply.result === 'nak' && reply.code === 'in-progress')) {
    // A reply to an earlier attempt: only "ok" for the nonce we are waiting on counts.
    if (reply.result !== 'ok' || j.verdictBy === 0) return;
  }
  if (reply.result === 'ok') {
    c.become.member(c, now, from, reply);
    return;
  }
  switch (reply.code) {
    case 'in-progress':
      j.verdictBy = now + c.config.approvalTimeoutMs;
      j.offerAt = Infinity;
      if (reply.nonce === j.nonce) j.resendAt = j.verdictBy;
      return;
    case 'config-mismatch':
      c.become.idle(c, now, { kind: 'waiting-config' }, `master ${from} runs another configuration version: ${reply.reason}`);
      return;
    default:
      c.become.idle(c, now, { kind: 'rejected', retryAt: now + c.config.rejoinBackoffMs }, `join refused by ${from} (${reply.code}): ${reply.reason}`);
  }
}
