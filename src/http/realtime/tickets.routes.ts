// POST /v1/realtime/tickets: a single-use ticket for opening one SSE or WebSocket connection
// without an Authorization header (browsers). Authenticated with the bearer token like any REST
// call; the ticket acts as that token's principal and never outlives it.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';
import { AppError } from '../../errors.js';
import { coercingAjv, strictAjv } from '../../platform/validation.js';
import { principalOf } from '../auth.js';
import { Ticket, TicketRequest } from './schemas.js';
import { tokenExpiry } from './session-auth.js';
import type { RealtimeState } from './state.js';

/** No body is fine; if there is one it must match the schema (an empty object). */
const optionalBody: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  if (httpPart !== 'body') return coercingAjv.compile(schema as object);
  const validate = strictAjv.compile(schema as object);
  const check = (data: unknown) => {
    if (data === undefined || data === null) return true;
    const ok = validate(data);
    check.errors = validate.errors;
    return ok;
  };
  check.errors = null as typeof validate.errors;
  return check;
};

export const ticketRoutes =
  (rt: RealtimeState): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/v1/realtime/tickets',
      {
        validatorCompiler: optionalBody,
        schema: {
          tags: ['realtime'],
          summary: `A single-use ticket to open GET /v1/events or GET /v1/ws with ?ticket= (valid ${rt.config.ticketTtlSeconds} s, never past the token's expiry)`,
          body: TicketRequest,
          response: { 201: Ticket },
        },
      },
      async (req, reply) => {
        const principal = principalOf(req);
        const expiresAt = tokenExpiry(req);
        const now = Date.now();
        const ttlMs = Math.min(rt.config.ticketTtlSeconds * 1000, expiresAt - now);
        if (ttlMs <= 0) throw new AppError('UNAUTHENTICATED', 'The token has expired');
        let ticket: string;
        try {
          ticket = await rt.tickets.issue({ principal, expiresAt }, ttlMs);
        } catch (err) {
          req.log.warn({ err }, 'realtime: ticket store unavailable');
          throw new AppError('SERVICE_UNAVAILABLE', 'Tickets cannot be issued right now; retry shortly', undefined, { 'Retry-After': '2' });
        }
        return reply.code(201).header('cache-control', 'no-store').send({ ticket, expiresAt: new Date(now + ttlMs).toISOString() });
      },
    );
  };
