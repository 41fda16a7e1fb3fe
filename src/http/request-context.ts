// Request IDs, response timing, and the one log line per request. The line holds the route
// template (never the URL: paths and query strings can carry identifiers or names), status,
// duration, tenant and user, and nothing from the body or headers.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.js';
import { routeOf } from './route.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Fastify's genReqId: the client's X-Request-ID when well-formed, otherwise a new random UUID (node's is served from a pooled entropy buffer, unlike uuid's, which asks the OS per id). */
export function requestIdOf(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export function registerRequestContext(app: FastifyInstance) {
  // While draining for shutdown, requests that still arrive on open keep-alive connections get
  // the contract's 503 (Fastify's built-in one has another body) and are told to reconnect.
  let draining = false;
  app.addHook('preClose', async () => {
    draining = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-ID', request.id);
    if (draining) {
      throw new AppError('SERVICE_UNAVAILABLE', 'The server is shutting down; retry', undefined, { 'Retry-After': '1', Connection: 'close' });
    }
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('X-Response-Time', `${reply.elapsedTime.toFixed(2)}ms`);
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: routeTemplate(request),
        status: reply.statusCode,
        durationMs: Number(reply.elapsedTime.toFixed(2)),
        ...(request.errorCode ? { errorCode: request.errorCode } : {}),
        ...(request.principal ? { tenant: request.principal.tenantId, user: request.principal.sub } : {}),
      },
      'request',
    );
  });
}

const routeTemplate = (request: FastifyRequest) => routeOf(request).url ?? '(unmatched)';
