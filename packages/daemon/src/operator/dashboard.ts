/**
 * The live dashboard: GET /dashboard serves one self-contained page (no external files, no build step).
 * The page itself holds no data and needs no token; it reads GET /v1/stream (server-sent events, read
 * with fetch so that it can send the bearer token) with the token the operator gives in the URL fragment
 * (`/dashboard#token=TOKEN`, never sent to the server as part of the URL) or in its form.
 *
 * What it shows: the 1024 units as a 32 x 32 map coloured by owner (unit u at row u / 32, column u % 32),
 * the members with their units, load, loss and keepalive age, and a timeline of this member's cluster
 * events. Element ids and data attributes (data-unit, data-owner, data-member) are stable: the UI test
 * and operators' scripts rely on them.
 */
import type { FastifyInstance } from 'fastify';
import { DASHBOARD_HTML } from './dashboard-page.js';

export function registerDashboard(app: FastifyInstance): void {
  app.get('/dashboard', { schema: { summary: 'The live dashboard (HTML; data comes from /v1/stream)', tags: ['observability'], security: [] } }, async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
      .header('x-frame-options', 'DENY')
      .send(DASHBOARD_HTML),
  );
}
