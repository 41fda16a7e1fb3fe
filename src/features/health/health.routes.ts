// GET /v1/admin/health: each dependency's status, latency and last error, checked on the spot
// (admin, manager). Liveness and readiness for load balancers stay at /health/live and /health/ready.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Deps } from '../../container.js';
import { principalOf } from '../../http/auth.js';
import { healthReport } from './health.service.js';

const Dependency = Type.Object({
  name: Type.String(),
  required: Type.Boolean({ description: 'The service cannot work without it; a dependency that is not required degrades the service when down' }),
  status: Type.Union([Type.Literal('ok'), Type.Literal('down')]),
  latencyMs: Type.Union([Type.Number(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()], { description: 'The last failure seen, also after recovery' }),
  since: Type.String({ format: 'date-time', description: 'When the current status began' }),
  checkedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('down')]),
  dependencies: Type.Array(Dependency),
});

export const adminHealthRoutes =
  (deps: Deps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/admin/health',
      { schema: { tags: ['health'], summary: 'Each dependency (PostgreSQL, Redis) with its status, latency and last error, checked now (admin, manager)', response: { 200: Health } } },
      async (req, reply) => reply.header('Cache-Control', 'no-store').send(await healthReport(principalOf(req), deps.health)),
    );
  };
