// Requests sent over a WebSocket (`{"type":"request","method":"PATCH","path":…}`) are dispatched
// through the application's own HTTP stack with app.inject(), as the connection's principal.
//
// Why inject rather than calling the service functions from here: a REST write is more than its
// service call. The route's schema validation (and its exact error details), the body parser and
// limit, If-Match parsing, the Idempotency-Key fingerprint and replay, the ETag/Location headers,
// the error envelope, the request log line and the audit context (request ID, client IP, user
// agent) all live in the HTTP layer. Re-implementing them for WebSocket would give a second,
// drifting copy; dispatching through the same routes makes "a WS write behaves exactly like the
// REST write" true by construction, for every route, including ones added later. The cost is an
// in-memory request/response (no socket), small next to the write itself.
//
// Credentials: the dispatched request carries no token. The connection's principal travels in an
// AsyncLocalStorage entry scoped to this one inject() call, matched by a random per-request nonce
// header; the auth hook (src/http/auth.ts) accepts it only when both agree. A request from the
// network runs outside that async context, so sending the header from outside proves nothing.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify';
import type { Principal } from '../../auth/principal.js';
import { validationFailed } from '../../errors.js';

const NONCE_HEADER = 'x-carebase-dispatch';
const store = new AsyncLocalStorage<{ nonce: string; principal: Principal }>();

/** The principal of a request dispatched by dispatchRequest(), or undefined for any other request. */
export function dispatchedPrincipal(request: FastifyRequest): Principal | undefined {
  const s = store.getStore();
  if (!s) return undefined;
  return request.headers[NONCE_HEADER] === s.nonce ? s.principal : undefined;
}

export interface DispatchInput {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface DispatchResult {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** Request headers a WebSocket request may set; credentials come from the connection only. */
const FORWARDED = ['if-match', 'idempotency-key', 'content-type'] as const;
/** Response headers worth returning to a WebSocket client. */
const RETURNED = ['etag', 'location', 'idempotency-replayed', 'x-request-id', 'retry-after', 'allow'] as const;
/** Routes that open connections or issue tickets make no sense (and could recurse) inside one. */
const NOT_DISPATCHED = /^\/v1\/(ws|events|realtime)(\/|\?|$)/;

export function checkDispatchPath(path: string): void {
  // Same-origin API paths only: no scheme or host, no dot segments, nothing outside /v1.
  if (!path.startsWith('/v1/') || /(^|\/)\.\.?(\/|\?|$)/.test(path) || path.includes('//') || path.includes('#') || path.includes('\\')) {
    throw validationFailed([{ path: '/path', message: 'must be an API path under /v1/ (e.g. /v1/questionnaire-responses/<id>)' }]);
  }
  if (NOT_DISPATCHED.test(path)) throw validationFailed([{ path: '/path', message: 'real-time routes cannot be called over the WebSocket' }]);
}

export async function dispatchRequest(
  app: FastifyInstance,
  principal: Principal,
  input: DispatchInput,
  meta: { requestId: string; ip?: string; userAgent?: string },
): Promise<DispatchResult> {
  checkDispatchPath(input.path);
  const nonce = randomUUID();
  const headers: Record<string, string> = { [NONCE_HEADER]: nonce, 'x-request-id': meta.requestId };
  if (meta.userAgent) headers['user-agent'] = meta.userAgent;
  for (const h of FORWARDED) {
    const v = input.headers?.[h];
    if (v !== undefined) headers[h] = v;
  }
  let payload: string | undefined;
  if (input.body !== undefined) {
    payload = JSON.stringify(input.body);
    headers['content-type'] ??= 'application/json';
  }
  // The callback form of inject(): the promise form starts the request from a thenable job,
  // outside the AsyncLocalStorage context entered here (measured with Fastify 5.12).
  const res = await new Promise<LightMyRequestResponse>((resolve, reject) =>
    store.run({ nonce, principal }, () =>
      app.inject({ method: input.method as 'GET', url: input.path, headers, ...(payload !== undefined ? { payload } : {}), ...(meta.ip ? { remoteAddress: meta.ip } : {}) }, (err, r) =>
        err || !r ? reject(err ?? new Error('inject returned no response')) : resolve(r),
      ),
    ),
  );
  const out: Record<string, string> = {};
  for (const h of RETURNED) {
    const v = res.headers[h];
    if (typeof v === 'string') out[h] = v;
  }
  // JSON (every route but the NDJSON exports) comes back parsed; anything else as its text.
  let body: unknown = null;
  if (res.body.length > 0) {
    const json = /^application\/json/.test(String(res.headers['content-type'] ?? ''));
    body = res.body;
    if (json) {
      try {
        body = JSON.parse(res.body);
      } catch {
        body = res.body;
      }
    } else if (typeof res.headers['content-type'] === 'string') out['content-type'] = res.headers['content-type'];
  }
  return { status: res.statusCode, headers: out, body };
}
