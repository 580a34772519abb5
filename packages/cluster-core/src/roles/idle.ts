/**
 * Out of the cluster: stopped (before start), waiting-config (another configuration version runs),
 * rejected (refused at join; retries after rejoinBackoffMs) and left. No messages are handled.
 */
import type { CoreEvent } from '../events.js';
import { adoptConfig, stepAnyRole, type IdleState, type MemberCore } from './shared.js';

export function stepIdle(c: MemberCore, s: IdleState, e: CoreEvent): void {
  switch (e.type) {
    case 'start':
      if (s.kind === 'stopped' || s.kind === 'left') c.become.joining(c, e.now, 'start');
      return;
    case 'tick':
      if (s.kind === 'rejected' && e.now >= s.retryAt) c.become.joining(c, e.now, 'retry after refusal');
      return;
    case 'config-changed':
      if (adoptConfig(c, e) && s.kind === 'waiting-config') c.become.joining(c, e.now, 'configuration changed');
      return;
    default:
      stepAnyRole(c, e);
  }
}
