// OpenAPI 3.1 from the route schemas, plus the contract's error responses on every /v1 route,
// and the interactive docs at /docs.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { ErrorEnvelope } from './schemas.js';

const ERROR_RESPONSES: Record<number, string> = {
  400: 'MALFORMED_REQUEST or VALIDATION_FAILED (`details` lists every problem)',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND (also for resources of another tenant)',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT, RESPONSE_SUBMITTED or INVALID_TRANSITION',
  412: 'VERSION_CONFLICT: If-Match names a stale version',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  428: 'PRECONDITION_REQUIRED: If-Match is missing',
  500: 'INTERNAL',
  503: 'SERVICE_UNAVAILABLE (database) or UPSTREAM_UNAVAILABLE',
  504: 'TIMEOUT',
};

function errorCodesFor(method: string, isPublic: boolean): number[] {
  const codes = [400, 404, 405, 500, 503, 504];
  if (!isPublic) codes.push(401, 403);
  if (method === 'POST' || method === 'PATCH' || method === 'PUT') codes.push(409, 413, 415);
  if (method === 'PATCH' || method === 'PUT' || method === 'DELETE') codes.push(409, 412, 428);
  return [...new Set(codes)].sort();
}

export async function registerOpenApi(app: FastifyInstance, version: string) {
  app.addSchema(ErrorEnvelope);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Carebase API',
        version,
        description: 'Health-information backend. Errors share one envelope (ErrorEnvelope); see CONTRACT.md.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });

  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/') || route.schema?.hide) return;
    const isPublic = route.config?.public === true;
    const method = ([] as string[]).concat(route.method)[0] ?? 'GET';
    const schema = (route.schema ??= {});
    const response = (schema.response ??= {}) as Record<string, unknown>;
    for (const code of errorCodesFor(method, isPublic)) {
      response[code] ??= { description: ERROR_RESPONSES[code], $ref: 'ErrorEnvelope#' };
    }
    if (!isPublic) (schema as { security?: unknown }).security ??= [{ bearerAuth: [] }];
  });

  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } });
}
