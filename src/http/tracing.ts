// Each request as a SERVER span (when tracing is on and the request is sampled): the caller's
// traceparent continued, named `<method> <route template>`, with the status, ended when the response
// has gone out. The span travels on as request.trace (and Ctx.trace), and the request's log lines
// carry its trace_id and span_id. With tracing off the hooks find no span and do nothing else.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { tagWithTrace, type Logger } from '../platform/log.js';
import { startServerSpan, tracingEnabled, type ServerSpan, type TraceContext } from '../platform/tracing/tracing.js';
import { routeOf } from './route.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's span when it is traced (sampled); see http/tracing.ts. */
    trace?: TraceContext;
  }
}

/** Requests nobody wants traced: probes and scrapes, every few seconds each. */
const UNTRACED = /^\/(?:health\/(?:live|ready)|metrics)(?:[/?#]|$)/;
const SERVER_SPAN = Symbol('carebase.serverSpan');
type Traced = FastifyRequest & { [SERVER_SPAN]?: ServerSpan };

/** A sampled request's span attributes at its start. */
function attributesOf(request: FastifyRequest) {
  return {
    'http.request.method': request.method,
    // The path holds resource ids (random UUIDs), never the query string (searches by name).
    'url.path': request.url.replace(/[?#].*$/s, ''),
    'url.scheme': request.protocol,
  };
}

export function registerTracing(app: FastifyInstance): void {
  // Declared on every request, set only on sampled ones: a property added to some requests and
  // not others would give requests two shapes, and every function that touches one slows down.
  app.decorateRequest('trace', undefined);
  app.decorateRequest(SERVER_SPAN, undefined);
  const end = (request: Traced, status: number | undefined) => {
    const span = request[SERVER_SPAN];
    if (!span) return;
    request[SERVER_SPAN] = undefined;
    const route = routeOf(request).url;
    span.end(
      route ? `${request.method} ${route}` : request.method,
      { ...(route ? { 'http.route': route } : {}), ...(status === undefined ? { 'carebase.aborted': true } : { 'http.response.status_code': status }) },
      status === undefined || status >= 500,
    );
  };
  app.addHook('onRequest', (request: Traced, _reply, done) => {
    if (tracingEnabled() && !UNTRACED.test(request.url)) {
      const span = startServerSpan(request.method, request.headers, attributesOf, request);
      if (span) {
        request[SERVER_SPAN] = span;
        request.trace = span.trace;
        tagWithTrace(request.log as Logger, span.trace);
        // A client that went away before the answer: its span still ends (as failed). Listened for
        // on traced requests only: fastify's onRequestAbort hook adds this listener to every
        // request (~2 µs each on a cached read, profiled).
        request.raw.once('close', () => {
          if (request.raw.aborted) end(request, undefined);
        });
      }
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    end(request, reply.statusCode);
    done();
  });
}
