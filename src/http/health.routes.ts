import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Deps } from '../container.js';
import { AppError } from '../errors.js';

const Status = Type.Object({ status: Type.Literal('ok') });
const Ready = Type.Object({ status: Type.Literal('ok'), checks: Type.Object({ database: Type.Object({ status: Type.Literal('ok'), latencyMs: Type.Number() }) }) });

export function healthRoutes(deps: Deps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/health/live', { schema: { tags: ['health'], summary: 'The process is up', response: { 200: Status } } }, async () => ({ status: 'ok' as const }));

    app.get(
      '/health/ready',
      {
        schema: {
          tags: ['health'],
          summary: 'The service can serve requests (database reachable)',
          response: { 200: Ready, 503: { $ref: 'ErrorEnvelope#', description: 'SERVICE_UNAVAILABLE: the database is unreachable' } },
        },
      },
      async () => {
        const started = performance.now();
        try {
          await deps.db.ping(2000);
        } catch {
          throw new AppError('SERVICE_UNAVAILABLE', 'The database is unreachable', undefined, { 'Retry-After': '5' });
        }
        return { status: 'ok' as const, checks: { database: { status: 'ok' as const, latencyMs: Number((performance.now() - started).toFixed(2)) } } };
      },
    );
  };
}
