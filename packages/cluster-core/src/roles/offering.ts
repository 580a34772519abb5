/**
 * OFFERING (Figure 6, step 4): no master answered; broadcast MASTER OFFER and take office after
 * offerTimeoutMs unless a master, or a lower address that also offers, speaks up.
 */
import type { CoreEvent } from '../events.js';
import { compareMemberIds } from '@gwcluster/wire';
import { stepAnyRole, type MemberCore, type OfferingState } from './shared.js';

export function enterOffering(c: MemberCore, now: number): void {
  const offer: OfferingState = { kind: 'offering', epoch: c.epochSeen + 1, becomeMasterAt: now + c.config.offerTimeoutMs };
  c.setRole(offer, now);
  c.send('broadcast', { type: 'master-offer', epoch: offer.epoch, memberCount: 1 });
}

export function stepOffering(c: MemberCore, o: OfferingState, e: CoreEvent): void {
  switch (e.type) {
    case 'tick':
      // On a tick that came on time only: a late one may have an OTHER MASTER EXISTS waiting unread.
      if (e.now >= o.becomeMasterAt && c.judgesSilence()) c.become.master(c, e.now, c.previousMembers);
      return;
    case 'message': {
      const { now, from, message: msg } = e;
      switch (msg.type) {
        case 'other-master-exists':
          c.become.joining(c, now, `${from} says it is master`);
          return;
        case 'master-keepalive':
          c.become.joining(c, now, `${from} sends master keepalives`);
          return;
        case 'master-offer':
          if (compareMemberIds(from, c.self) < 0) {
            c.become.joining(c, now, `${from} (lower address) also offers`, c.config.offerTimeoutMs + 2 * c.config.joinTimeoutMs);
          }
          return;
        case 'join-reply':
          // A master answered a late JOIN: take it.
          if (msg.result === 'ok') c.become.member(c, now, from, msg);
          return;
        default:
          return;
      }
    }
    default:
      stepAnyRole(c, e);
  }
}
