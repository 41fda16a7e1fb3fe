// The OpenTelemetry SDK, started by bootstrap.ts when OTEL_EXPORTER_OTLP_ENDPOINT is set, before
// the application (and with it pg, ioredis, pino, fastify) is imported. Loaded only then: with
// tracing off none of this is imported.
//
// Spans: each request (@fastify/otel's SERVER span, with the caller's traceparent as parent), each
// job attempt (a CONSUMER span, its producer's trace continued: platform/jobs/run-job.ts), HTTP client (node:http), fetch (undici: the alert webhook), Fastify's route,
// hooks and handlers (@fastify/otel), PostgreSQL queries (pg), Redis commands (ioredis), and one
// span per database operation of the Db port (instrumented-db.ts; PGlite too). Exported over
// OTLP/HTTP (JSON) in batches, scrubbed of PHI first (scrub.ts). W3C trace context is read from
// incoming requests and written into outgoing ones; pino log lines get trace_id and span_id.
//
// Why not @opentelemetry/sdk-node: it pulls in every exporter (gRPC included) and slows the start.
import { register } from 'node:module';
import type { TracingConfig } from '../../config.js';
import { installTracing } from './tracing.js';

/**
 * Packages the application imports from ES modules that instrumentations patch. Node's CommonJS
 * hook (require-in-the-middle) does not see a package imported from ESM, so these go through
 * import-in-the-middle's loader; everything else is left to tsx and Node as it is.
 */
const ESM_HOOKED = ['pg', 'ioredis', 'pino'];

/** Requests nobody wants traced: probes and scrapes, every few seconds each. */
const UNTRACED = /^\/(?:health\/(?:live|ready)|metrics)(?:[/?#]|$)/;

export async function startTracing(c: TracingConfig): Promise<void> {
  // Chained in front of tsx's loader (registered earlier by bin/carebase.mjs): import-in-the-middle
  // resolves through tsx and wraps only the packages listed.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: ESM_HOOKED } });

  const [api, core, { resourceFromAttributes }, node, { OTLPTraceExporter }, { registerInstrumentations }, http, undici, pg, ioredis, pino, { FastifyOtelInstrumentation }, { scrubbingExporter }] =
    await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/core'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/instrumentation'),
      import('@opentelemetry/instrumentation-http'),
      import('@opentelemetry/instrumentation-undici'),
      import('@opentelemetry/instrumentation-pg'),
      import('@opentelemetry/instrumentation-ioredis'),
      import('@opentelemetry/instrumentation-pino'),
      import('@fastify/otel'),
      import('./scrub.js'),
    ]);
  const { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, isSpanContextValid } = api;

  // The SDK's errors — mostly failed exports (collector down: those spans are lost) — go to
  // stderr, at most one line a minute.
  let lastReport = 0;
  core.setGlobalErrorHandler((err) => {
    if (Date.now() - lastReport < 60_000) return;
    lastReport = Date.now();
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${JSON.stringify({ level: 'warn', time: new Date().toISOString(), service: 'carebase', msg: 'tracing: the OpenTelemetry SDK failed (spans may be lost)', err: { message: message.slice(0, 300) } })}\n`);
  });

  const exporter = new OTLPTraceExporter({ url: c.tracesUrl, headers: { ...c.headers }, timeoutMillis: 10_000 });
  const provider = new node.NodeTracerProvider({
    resource: resourceFromAttributes({ ...c.resourceAttributes, 'service.name': c.serviceName }),
    // Follows the caller's decision (traceparent's sampled flag); samples new traces at the ratio.
    sampler: new node.ParentBasedSampler({ root: new node.TraceIdRatioBasedSampler(c.sampleRatio) }),
    spanProcessors: [new node.BatchSpanProcessor(scrubbingExporter(exporter))],
  });
  provider.register({ propagator: new core.W3CTraceContextPropagator() });

  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new http.HttpInstrumentation({
        // Outgoing calls only. Each request's SERVER span is @fastify/otel's (below): the http
        // instrumentation's own binds every request's and response's event emitters to the
        // context, which halved cached-read throughput even for requests not sampled (bench/RESULTS.md).
        // (Not ignoreIncomingRequestHook: an ignored request runs with tracing suppressed throughout.)
        disableIncomingRequestInstrumentation: true,
        // No headers as attributes (the default), so Authorization and cookies never reach a span.
      }),
      // fetch: the alert webhook; traceparent goes out with each call.
      new undici.UndiciInstrumentation(),
      new FastifyOtelInstrumentation({
        // Registers its plugin on every Fastify instance as it is created (app.ts needs no change).
        registerOnInitialization: true,
        ignorePaths: (route) => UNTRACED.test(route.url),
        // A span per request and per route handler. Not one per hook: ours are anonymous, so ~15
        // spans a request named alike; what hooks do (Redis, PostgreSQL) has spans of its own.
        instrumentHooks: false,
        // Anonymous handlers would be named after their plugin's source code: name them by route.
        lifecycleHook: (span, { hookName, request }) => {
          const name = `${hookName} - ${request.routeOptions.url ?? '(unmatched)'}`;
          span.updateName(name);
          span.setAttribute('hook.name', name);
        },
      }),
      new pg.PgInstrumentation({
        // Statements only ever hold placeholders; parameter values (PHI) are not recorded.
        enhancedDatabaseReporting: false,
        // The outbox dispatcher and the health checks query every few milliseconds: only queries
        // made on behalf of a traced request or job make spans.
        requireParentSpan: true,
      }),
      new ioredis.IORedisInstrumentation({
        requireParentSpan: true,
        // Keys hold tenant and resource ids, values cached resources: the command name only.
        dbStatementSerializer: (command) => command,
      }),
      new pino.PinoInstrumentation({
        disableLogSending: true,
        logKeys: { traceId: 'trace_id', spanId: 'span_id', traceFlags: 'trace_flags' },
      }),
    ],
  });

  const tracer = provider.getTracer('carebase');
  const sampledSpanContext = () => {
    const sc = trace.getSpan(context.active())?.spanContext();
    return sc && isSpanContextValid(sc) && (sc.traceFlags & TraceFlags.SAMPLED) !== 0 ? sc : undefined;
  };
  const getter = {
    keys: (carrier: Readonly<Record<string, unknown>>) => Object.keys(carrier),
    get: (carrier: Readonly<Record<string, unknown>>, key: string) => {
      const v = carrier[key];
      return typeof v === 'string' ? v : undefined;
    },
  };

  /** Runs fn and ends the span with its outcome (an error's type and stack are kept; scrub.ts drops its message). */
  async function ended<T>(span: import('@opentelemetry/api').Span, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      if (err instanceof Error) span.recordException(err);
      throw err;
    } finally {
      span.end();
    }
  }

  installTracing({
    traceparent() {
      if (!sampledSpanContext()) return undefined;
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      return carrier.traceparent;
    },
    inject(carrier) {
      propagation.inject(context.active(), carrier);
    },
    runWith(carrier, fn) {
      return context.with(propagation.extract(context.active(), carrier, getter), fn);
    },
    span(name, attributes, fn) {
      if (!trace.getSpan(context.active())?.isRecording()) return fn();
      return tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes: { ...attributes } }, (span) => ended(span, fn));
    },
    consumerSpan(carrier, name, attributes, fn) {
      // Extracted onto the root context: the job's own producer is its parent, nothing else.
      const parent = propagation.extract(ROOT_CONTEXT, carrier, getter);
      return tracer.startActiveSpan(name, { kind: SpanKind.CONSUMER, attributes: { ...attributes } }, parent, (span) => ended(span, fn));
    },
    shutdown: () => provider.shutdown(),
  });
}
