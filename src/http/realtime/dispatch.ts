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
// Credentials: the dispatched request carries no token. The connection's principal waits in this
// process's memory under a random nonce (122 bits) made for this one inject() call and sent in a
// header, which the auth hook (src/http/auth.ts) looks up; it is gone when the call ends. Sending
// the header from the network proves nothing: nobody outside this process can know a nonce, and
// one is good for one request while it runs. (Not an AsyncLocalStorage entry: entering one
// switches on Node 20's promise hooks for every request of the process, for good.)
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify';
import type { Principal } from '../../auth/principal.js';
import { validationFailed } from '../../errors.js';

const NONCE_HEADER = 'x-carebase-dispatch';
const pending = new Map<string, Principal>();

/** The principal of a request dispatched by dispatchRequest(), or undefined for any other request. */
export function dispatchedPrincipal(request: FastifyRequest): Principal | undefined {
  const nonce = request.headers[NONCE_HEADER];
  if (typeof nonce !== 'string') return undefined;
  return pending.get(nonce);
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
  let res: LightMyRequestResponse;
  pending.set(nonce, principal);
  try {
    res = await app.inject({ method: input.method as 'GET', url: input.path, headers, ...(payload !== undefined ? { payload } : {}), ...(meta.ip ? { remoteAddress: meta.ip } : {}) });
  } finally {
    pending.delete(nonce);
  }
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
