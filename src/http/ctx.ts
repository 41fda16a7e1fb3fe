import type { FastifyRequest } from 'fastify';
import type { Deps } from '../container.js';
import type { Ctx } from '../context.js';
import type { Logger } from '../platform/log.js';
import type { StoredResponse } from '../features/idempotency/idempotency.js';
import { tracedResourceCache } from '../features/shared/resource-cache.js';
import { tracedDb } from '../platform/tracing/traced-db.js';
import { principalOf } from './auth.js';
import { idempotencyClaimOf } from './idempotency.js';
import { replicaReadsOf } from './replica-reads.js';

/** The service-layer context of an authenticated request. */
export function ctxOf(deps: Deps, request: FastifyRequest): Ctx {
  const principal = principalOf(request);
  const userAgent = request.headers['user-agent'];
  const trace = request.trace;
  return {
    principal,
    tenantId: principal.tenantId,
    requestId: request.id,
    now: deps.now,
    db: tracedDb(deps.db, trace),
    cache: tracedResourceCache(deps.resources, deps.cache.kind, trace),
    // Always present, undefined when untraced: contexts of one shape, so the service layer's
    // property reads stay monomorphic when some requests are traced and others not.
    trace,
    log: request.log as Logger,
    audit: deps.audit,
    keys: deps.keys,
    // User agents are clipped: the column is for telling clients apart, not for storing payloads.
    client: { ip: request.ip, ...(typeof userAgent === 'string' ? { userAgent: userAgent.slice(0, 256) } : {}) },
  };
}

/**
 * The context of a POST or PATCH: `respond` says how this route answers with the service's
 * result, so an Idempotency-Key can record that answer in the write's own transaction.
 */
export function writeCtxOf(deps: Deps, request: FastifyRequest, respond: (result: unknown) => StoredResponse): Ctx {
  const idempotency = idempotencyClaimOf(request, respond);
  return { ...ctxOf(deps, request), ...(idempotency ? { idempotency } : {}) };
}

/** The context of a list page: with read replicas, its reads may be served by one (http/replica-reads.ts). */
export async function listCtxOf(deps: Deps, request: FastifyRequest): Promise<Ctx> {
  const ctx = ctxOf(deps, request);
  return deps.replicas ? { ...ctx, db: tracedDb(await replicaReadsOf(deps).listDbOf(request), request.trace) } : ctx;
}
