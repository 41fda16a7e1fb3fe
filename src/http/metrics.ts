// Request metrics and the Prometheus endpoint.
//
// Every response is observed by route template (`/v1/patients/:id`, never the id), method and
// status; error responses count by the contract's error code. GET /metrics serves the registry:
// open by default (bind the API to a private network), behind `Authorization: Bearer
// <METRICS_TOKEN>` when that is set, and not on the API's port at all when METRICS_PORT is set
// (main.ts serves it there).
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../container.js';
import { AppError } from '../errors.js';
import { bearerMatches } from './metrics-server.js';
import { routeOf } from './route.js';

export function registerMetrics(app: FastifyInstance, deps: Deps): void {
  const m = deps.metrics;
  app.addHook('onResponse', (request, reply, done) => {
    const route = routeOf(request).url ?? 'unmatched';
    const status = reply.statusCode;
    m.httpDuration.observe(request.method, route, status, reply.elapsedTime / 1000);
    deps.performance.observe(request.method, route, status, reply.elapsedTime);
    if (status >= 400) m.httpErrors.inc({ code: request.errorCode ?? String(status) });
    if (request.errorCode === 'VERSION_CONFLICT') m.versionConflicts.inc();
    if (reply.getHeader('idempotency-replayed') === 'true') m.idempotencyReplays.inc();
    done();
  });

  if (deps.config.metrics.port) return;
  const token = deps.config.metrics.token;
  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    if (token && !bearerMatches(request.headers.authorization, token)) {
      reply.header('WWW-Authenticate', 'Bearer');
      throw new AppError('UNAUTHENTICATED', 'GET /metrics needs the METRICS_TOKEN bearer token');
    }
    reply.type(m.registry.contentType);
    return m.registry.metrics();
  });
}

