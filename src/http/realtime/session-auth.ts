// Authentication of the real-time routes: exactly the REST rules for an Authorization header
// (src/http/auth.ts), or, for browsers, a single-use ticket in `?ticket=` (tickets.ts). Either
// way the connection also needs to know when its credentials expire, to close then.
import type { FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import type { Principal } from '../../auth/principal.js';
import type { Deps } from '../../container.js';
import { AppError } from '../../errors.js';
import { authenticate } from '../auth.js';
import type { TicketStore } from './tickets.js';

export interface Session {
  readonly principal: Principal;
  /** When the credentials expire (ms since the epoch). */
  readonly expiresAt: number;
}

const sessions = new WeakMap<FastifyRequest, Session>();

const badTicket = () => new AppError('UNAUTHENTICATED', 'The ticket is invalid, expired or already used; get a new one from POST /v1/realtime/tickets');

/** The `exp` of a bearer token that authenticate() has already verified. */
export function tokenExpiry(request: FastifyRequest): number {
  const token = request.headers.authorization?.replace(/^Bearer /, '') ?? '';
  const exp = decodeJwt(token).exp;
  if (typeof exp !== 'number') throw new AppError('UNAUTHENTICATED', 'The token has no expiry');
  return exp * 1000;
}

/** A route `authenticate` (auth.ts) that takes a bearer token or a ticket, and remembers the session. */
export function realtimeAuthenticator(deps: Deps, tickets: TicketStore) {
  return async (request: FastifyRequest): Promise<Principal> => {
    const ticket = (request.query as Record<string, unknown> | undefined)?.ticket;
    if (request.headers.authorization === undefined && ticket !== undefined) {
      if (typeof ticket !== 'string') throw badTicket();
      let grant;
      try {
        grant = await tickets.redeem(ticket);
      } catch (err) {
        request.log.warn({ err }, 'realtime: ticket store unavailable');
        throw new AppError('SERVICE_UNAVAILABLE', 'Tickets cannot be checked right now; retry shortly', undefined, { 'Retry-After': '2' });
      }
      if (!grant || grant.expiresAt <= Date.now()) throw badTicket();
      sessions.set(request, grant);
      return grant.principal;
    }
    const principal = await authenticate(request, deps.verify, deps.tenants);
    sessions.set(request, { principal, expiresAt: tokenExpiry(request) });
    return principal;
  };
}

export function sessionOf(request: FastifyRequest): Session {
  const s = sessions.get(request);
  if (!s) throw new AppError('UNAUTHENTICATED');
  return s;
}
