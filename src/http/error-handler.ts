// Every error leaves through here in the contract's envelope: framework errors (routing, parsing,
// validation), our AppErrors, database outages and crashes alike.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, envelope } from '../errors.js';
import { isDatabaseUnavailable, pgError } from '../platform/db/errors.js';
import { reportRequestError } from '../platform/error-tracking/index.js';
import { formatErrors } from '../platform/validation.js';
import { routeOf } from './route.js';

const FRAMEWORK: Record<string, () => AppError> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send application/json (or application/merge-patch+json for PATCH)'),
  FST_ERR_CTP_BODY_TOO_LARGE: () => new AppError('PAYLOAD_TOO_LARGE'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new AppError('MALFORMED_REQUEST', 'The request body is empty'),
  // The parser's own message quotes the input (possibly PHI): never pass it on.
  FST_ERR_CTP_INVALID_JSON_BODY: () => new AppError('MALFORMED_REQUEST', 'The request body is not valid JSON'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new AppError('MALFORMED_REQUEST', 'Content-Length does not match the body'),
  FST_ERR_BAD_URL: () => new AppError('MALFORMED_REQUEST', 'The URL is malformed'),
  FST_ERR_ASYNC_CONSTRAINT: () => new AppError('MALFORMED_REQUEST'),
};

const SOURCE_PREFIX: Record<string, string> = { body: '', querystring: '/query', params: '/params', headers: '/headers' };

/** Maps any thrown value to the AppError the client gets. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const fe = err as Partial<FastifyError> & { validationContext?: string };
  if (fe?.validation) {
    return new AppError('VALIDATION_FAILED', undefined, formatErrors(fe.validation as never, SOURCE_PREFIX[fe.validationContext ?? 'body'] ?? ''));
  }
  if (typeof fe?.code === 'string' && FRAMEWORK[fe.code]) return FRAMEWORK[fe.code]!();
  if (pgError(err)?.code === '57014') return new AppError('TIMEOUT', 'The database operation ran past its deadline');
  if (isDatabaseUnavailable(err)) return unavailable();
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError(fe.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : fe.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'MALFORMED_REQUEST');
  }
  return new AppError('INTERNAL');
}

const unavailable = () => new AppError('SERVICE_UNAVAILABLE', 'The database is unreachable; retry shortly', undefined, { 'Retry-After': '5' });

export function sendError(request: FastifyRequest, reply: FastifyReply, err: unknown) {
  const appErr = toAppError(err);
  request.errorCode = appErr.code;
  if (appErr.status >= 500) {
    request.log.error({ err, code: appErr.code }, 'request failed');
    // To the error tracker, when one runs (INTERNAL only): the route template and ids, never the URL, headers or body.
    reportRequestError(err, {
      method: request.method,
      route: routeOf(request).url ?? '(unmatched)',
      requestId: request.id,
      status: appErr.status,
      code: appErr.code,
      ...(request.principal ? { tenant: request.principal.tenantId, roles: [...request.principal.roles] } : {}),
      ...(request.trace ? { trace: request.trace } : {}),
    });
  }
  if (appErr.code === 'UNAUTHENTICATED') reply.header('WWW-Authenticate', 'Bearer');
  if (appErr.headers) reply.headers(appErr.headers);
  return reply.code(appErr.status).type('application/json; charset=utf-8').send(envelope(appErr, request.id));
}

interface RoutePattern {
  methods: string[];
  regex: RegExp;
}

export function registerErrorHandling(app: FastifyInstance) {
  // On every request, so that failed requests have the same shape as the others.
  app.decorateRequest('errorCode', undefined);
  // Remember every route so an unknown method on a known path is a 405 with Allow, not a 404.
  const routes: RoutePattern[] = [];
  app.addHook('onRoute', (r) => {
    const methods = ([] as string[]).concat(r.method);
    const source = r.url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+').replace(/\*/g, '.*');
    routes.push({ methods, regex: new RegExp(`^${source}/?$`) });
  });

  app.setErrorHandler((err, request, reply) => sendError(request, reply, err));

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = [...new Set(routes.filter((r) => r.regex.test(path)).flatMap((r) => r.methods))];
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      reply.header('Allow', allowed.sort().join(', '));
      return sendError(request, reply, new AppError('METHOD_NOT_ALLOWED'));
    }
    return sendError(request, reply, new AppError('NOT_FOUND', 'No such route'));
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    errorCode?: string;
  }
}
