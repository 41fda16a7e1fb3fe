// buildApp(deps): the HTTP application. It registers plugins and routes and never listens.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Deps } from './container.js';
import { auditEventsRoutes } from './features/audit/audit-events.routes.js';
import { consentsRoutes } from './features/consents/consents.routes.js';
import { adminHealthRoutes } from './features/health/health.routes.js';
import { circuitsRoutes } from './features/circuits/circuits.routes.js';
import { performanceRoutes } from './features/performance/performance.routes.js';
import { locationsRoutes } from './features/locations/locations.routes.js';
import { patientExportRoutes } from './features/patient-export/export.routes.js';
import { erasureRoutes } from './features/patient-erasure/erasure.routes.js';
import { patientsRoutes } from './features/patients/patients.routes.js';
import { providersRoutes } from './features/providers/providers.routes.js';
import { questionnaireResponsesRoutes } from './features/questionnaire-responses/questionnaire-responses.routes.js';
import { questionnairesRoutes } from './features/questionnaires/questionnaires.routes.js';
import { registerAuth } from './http/auth.js';
import { registerErrorHandling } from './http/error-handler.js';
import { registerIdempotency } from './http/idempotency.js';
import { registerMetrics } from './http/metrics.js';
import { registerSecurity } from './http/security.js';
import { registerRateLimits } from './http/rate-limit.js';
import { healthRoutes } from './http/health.routes.js';
import { jwksRoutes } from './http/jwks.routes.js';
import { registerOpenApi } from './http/openapi.js';
import { realtimeRoutes } from './http/realtime/realtime.plugin.js';
import { registerRequestContext, requestIdOf } from './http/request-context.js';
import { registerTracing } from './http/tracing.js';
import { replicaReadsOf } from './http/replica-reads.js';
import { coercingAjv, strictAjv } from './platform/validation.js';
import { registerRouteOf } from './http/route.js';

export const API_VERSION = '1.0.0';

export async function buildApp(deps: Deps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }), // one line per request, written by request-context
    genReqId: requestIdOf,
    // A hop count is valid at run time (Fastify passes it to proxy-addr) though missing from the types.
    trustProxy: deps.config.trustProxy as boolean | string[],
    bodyLimit: deps.config.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // The serializer's own ajv only needs to know our custom formats exist (it never validates them).
    serializerOpts: { ajv: { formats: { 'iana-time-zone': true } } },
    return503OnClosing: false, // request-context answers with the contract's envelope instead
    // HTTPS served directly when TLS_CERT_FILE/TLS_KEY_FILE are set (the types do not follow a
    // conditional https option, hence the cast; the instance's API is the same).
    ...((deps.config.tls ? { https: { cert: deps.config.tls.cert, key: deps.config.tls.key } } : {}) as object),
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies are validated without coercion; query strings, params and headers are strings and are coerced.
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema));
  // JSON only: Fastify's built-in text/plain parser would turn such a body into a string (400 instead of 415).
  app.removeContentTypeParser('text/plain');

  registerErrorHandling(app);
  registerRouteOf(app);
  // First of the request hooks, so that the request's span covers all the others.
  registerTracing(app);
  // JSON parsers (with the depth limit, for application/json and merge-patch), headers, CORS.
  await registerSecurity(app, deps);
  registerMetrics(app, deps);
  registerRequestContext(app);
  replicaReadsOf(deps).register(app);
  const rateLimits = await registerRateLimits(app, deps);
  rateLimits.beforeAuth();
  registerAuth(app, deps.verify, deps.tenants);
  rateLimits.afterAuth();
  registerIdempotency(app);
  await registerOpenApi(app, API_VERSION);

  app.get(
    '/v1/openapi.json',
    { config: { public: true }, schema: { tags: ['meta'], summary: 'This OpenAPI 3.1 document', response: { 200: Type.Object({}, { additionalProperties: true }) } } },
    async () => app.swagger(),
  );
  await app.register(healthRoutes(deps));
  if (deps.devIssuer) await app.register(jwksRoutes(deps.devIssuer));
  await app.register(patientsRoutes(deps));
  await app.register(providersRoutes(deps));
  await app.register(locationsRoutes(deps));
  await app.register(questionnairesRoutes(deps));
  await app.register(questionnaireResponsesRoutes(deps));
  await app.register(consentsRoutes(deps));
  await app.register(patientExportRoutes(deps));
  await app.register(erasureRoutes(deps));
  await app.register(auditEventsRoutes(deps));
  await app.register(adminHealthRoutes(deps));
  await app.register(performanceRoutes(deps));
  await app.register(circuitsRoutes(deps));
  await app.register(realtimeRoutes(deps));
  return app;
}
