import type { FastifyRequest } from 'fastify';
import type { Deps } from '../container.js';
import type { Ctx } from '../context.js';
import type { Logger } from '../platform/log.js';
import { principalOf } from './auth.js';

/** The service-layer context of an authenticated request. */
export function ctxOf(deps: Deps, request: FastifyRequest): Ctx {
  const principal = principalOf(request);
  return { principal, tenantId: principal.tenantId, requestId: request.id, now: deps.now, db: deps.db, log: request.log as Logger };
}
