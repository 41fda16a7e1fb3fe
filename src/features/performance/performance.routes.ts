// GET /v1/admin/performance (admin, manager): this instance's recent requests per route.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Deps } from '../../container.js';
import { principalOf } from '../../http/auth.js';
import { performanceReport } from './performance.service.js';

const Route = Type.Object({
  method: Type.String(),
  route: Type.String({ description: 'The route template (ids never appear)' }),
  requests: Type.Integer(),
  requestsPerSecond: Type.Number(),
  errorRate: Type.Number({ description: 'Share of answers with status ≥ 500' }),
  clientErrorRate: Type.Number({ description: 'Share of answers with status 400–499' }),
  meanMs: Type.Number(),
  p50Ms: Type.Number(),
  p95Ms: Type.Number(),
  p99Ms: Type.Number(),
});

const Report = Type.Object({
  windowSeconds: Type.Integer(),
  since: Type.String({ format: 'date-time' }),
  requests: Type.Integer(),
  requestsPerSecond: Type.Number(),
  errorRate: Type.Number(),
  routes: Type.Array(Route),
  slowest: Type.Array(Route, { description: 'The five routes with the highest p95' }),
  cache: Type.Object({ hits: Type.Integer(), misses: Type.Integer(), hitRatio: Type.Union([Type.Number(), Type.Null()]) }),
  databasePool: Type.Union([Type.Object({ utilization: Type.Number(), maxWaiting: Type.Integer() }), Type.Null()], { description: 'Server mode only' }),
});

export const performanceRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/admin/performance',
      { schema: { tags: ['health'], summary: "This instance's last 5 minutes per route: request and error rates, p50/p95/p99, the slowest routes, cache hit ratio, database pool saturation (admin, manager)", response: { 200: Report } } },
      async (req, reply) => reply.header('Cache-Control', 'no-store').send(performanceReport(principalOf(req), deps.performance)),
    );
  };
