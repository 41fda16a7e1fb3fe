// The HTTP side of Idempotency-Key: reading and checking the header, fingerprinting the request,
// documenting the header on every POST and PATCH, and answering a replay with the recorded
// response. The rules themselves (lock, replay or refuse, record) are in features/idempotency.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { AppError } from '../errors.js';
import { IdempotentReplay, type IdempotencyClaim, type StoredResponse } from '../features/idempotency/idempotency.js';
import { routeOf } from './route.js';

const KEY = /^[\x20-\x7E]{1,255}$/;
const METHODS = new Set(['POST', 'PATCH']);

const HEADER_SCHEMA = {
  type: 'string',
  description: 'Retries with the same key and request within 24 h replay the first response (Idempotency-Replayed: true)',
};

/** JSON with sorted keys, so the same body serialized in another key order is the same request. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** The claim for a write request with an Idempotency-Key header; undefined without one. */
export function idempotencyClaimOf(request: FastifyRequest, respond: (result: unknown) => StoredResponse): IdempotencyClaim | undefined {
  const key = request.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !KEY.test(key) || key.trim() === '') {
    throw new AppError('MALFORMED_REQUEST', 'Idempotency-Key must be 1-255 printable ASCII characters');
  }
  const fingerprint = createHash('sha256')
    .update(canonical({ m: request.method, r: routeOf(request).url, p: request.params, b: request.body }))
    .digest('hex');
  return { key, fingerprint, respond };
}

function sendReplay(reply: FastifyReply, r: StoredResponse) {
  return reply.code(r.status).headers(r.headers).header('Idempotency-Replayed', 'true').send(r.body);
}

export function registerIdempotency(app: FastifyInstance) {
  app.addHook('onRoute', (route) => {
    const methods = ([] as string[]).concat(route.method);
    if (!route.url.startsWith('/v1/') || !methods.some((m) => METHODS.has(m))) return;
    const schema = (route.schema ??= {}) as { headers?: { type?: string; properties?: Record<string, unknown> } };
    schema.headers ??= { type: 'object', properties: {} };
    schema.headers.properties = { ...schema.headers.properties, 'idempotency-key': HEADER_SCHEMA };
    const handler = route.handler as RouteHandlerMethod;
    route.handler = async function (this: FastifyInstance, request, reply) {
      try {
        return await handler.call(this, request, reply);
      } catch (err) {
        if (err instanceof IdempotentReplay) return sendReplay(reply, err.response);
        throw err;
      }
    } as RouteHandlerMethod;
  });
}
