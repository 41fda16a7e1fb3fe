// Edge protections: security headers (helmet), CORS from an allow-list, JSON nesting depth,
// HTTPS-only deployments, and a deadline per request.
//
// - Headers: helmet's defaults, with a Content-Security-Policy that lets /docs load its own
//   scripts and styles and nothing else. They are the same for every response (no nonces), so
//   helmet computes them once at start and each request just copies them (helmet run per request
//   was ~5 % of a cached read). HSTS only where the service is reached over HTTPS
//   (TLS_CERT_FILE, or REQUIRE_HTTPS behind a TLS-terminating proxy): over plain HTTP it would be
//   a lie that browsers ignore anyway.
// - CORS: only origins in CORS_ORIGINS, with credentials (Authorization) allowed; `*` is accepted
//   only alone and then without credentials, since browsers refuse the combination. Preflights
//   are answered (204) with the methods and headers the API uses.
// - JSON deeper than JSON_MAX_DEPTH is refused before it is parsed (a stack-exhaustion vector);
//   prototype-poisoning keys are refused by Fastify's parser (app.ts).
// - REQUIRE_HTTPS: a request that did not arrive over HTTPS (X-Forwarded-Proto with TRUST_PROXY)
//   is refused with 403, except the health probes, which load balancers send over plain HTTP.
// - Compression (gzip, brotli, as the client asks) of JSON, NDJSON and the docs' text above 1 KiB;
//   never of event streams (each event must leave at once, not when a compressor's buffer fills).
// - REQUEST_TIMEOUT_MS: see deadlines.ts.
import compress from '@fastify/compress';
import cors from '@fastify/cors';
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as zlibConstants } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../container.js';
import { AppError } from '../errors.js';
import { registerDeadlines } from './deadlines.js';
import { dispatchedPrincipal } from './realtime/dispatch.js';

export const CORS_EXPOSED_HEADERS = ['ETag', 'Location', 'X-Request-ID', 'Retry-After', 'Idempotency-Replayed', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'];
const CORS_ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'If-Match', 'Idempotency-Key', 'X-Request-ID', 'Last-Event-ID'];

/** The deepest nesting of arrays and objects in a JSON text (strings skipped), stopping once past `limit`. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > limit) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/** The headers helmet sets, computed once by running its middleware against a recording response. */
export function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: unknown) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
    getHeader: (name: string) => headers[name.toLowerCase()],
  };
  helmet(options)({ headers: {} } as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
  });
  return headers;
}

export async function registerSecurity(app: FastifyInstance, deps: Deps): Promise<void> {
  const c = deps.config.security;
  const headers = helmetHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: c.https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  });
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers);
    done();
  });

  if (c.corsOrigins.length > 0) {
    const any = c.corsOrigins.includes('*');
    await app.register(cors, {
      origin: any ? '*' : [...c.corsOrigins],
      credentials: !any,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE'],
      allowedHeaders: CORS_ALLOWED_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: 600,
      strictPreflight: true,
    });
  }

  await app.register(compress, {
    global: true,
    threshold: 1024,
    encodings: ['br', 'gzip'],
    // Brotli's default quality (11) costs tens of ms on a large list; 4 compresses about as well as gzip, faster.
    brotliOptions: { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } },
    customTypes: /^(application\/(json|x-ndjson|fhir\+json|merge-patch\+json)|text\/(html|css|javascript|plain))\b/,
  });

  // Raw JSON is checked before parsing; the default parser (secure-json-parse) then parses it.
  const parse = app.getDefaultJsonParser('error', 'error');
  for (const type of ['application/json', 'application/merge-patch+json']) {
    app.removeContentTypeParser(type);
    app.addContentTypeParser(type, { parseAs: 'string' }, (request, body, done) => {
      if (jsonDepthExceeds(body as string, c.jsonMaxDepth)) {
        done(new AppError('MALFORMED_REQUEST', `The request body nests deeper than ${c.jsonMaxDepth} levels`), undefined);
        return;
      }
      parse(request, body as string, done);
    });
  }

  if (c.requireHttps) {
    app.addHook('onRequest', async (request) => {
      // A write sent over the WebSocket is dispatched in-process (no socket of its own): the
      // connection it came over was checked when it was opened.
      if (request.protocol === 'https' || request.url.startsWith('/health/') || dispatchedPrincipal(request)) return;
      throw new AppError('FORBIDDEN', 'This service is served over HTTPS only');
    });
  }

  registerDeadlines(app, c.requestTimeoutMs);
}
