// The OpenTelemetry SDK, started by bootstrap.ts when OTEL_EXPORTER_OTLP_ENDPOINT is set. Loaded
// only then: with tracing off none of this is imported.
//
// Spans, all started by our own code with an explicit parent (see tracing.ts for why): each request
// (a SERVER span, http/tracing.ts, the caller's traceparent as parent), each database operation of
// the Db port (traced-db.ts, either driver), each cache command (Redis in server mode:
// resource-cache.ts), each job attempt (a CONSUMER span continuing its producer's trace:
// platform/jobs/run-job.ts) and each outgoing call (the alert webhook, with traceparent sent).
// Exported over OTLP/HTTP (JSON) in batches from a thread of their own (export-thread.ts), scrubbed
// of PHI first (scrub.ts). The provider is not registered globally: no context manager, no global
// propagator, nothing patched.
//
// Why not @opentelemetry/sdk-node: it pulls in every exporter (gRPC included) and slows the start.
import { isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Context, type Span, type TextMapGetter } from '@opentelemetry/api';
import { setGlobalErrorHandler, W3CTraceContextPropagator } from '@opentelemetry/core';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../../config.js';
import { threadExporter } from './export-thread.js';
import { resourceOf } from './otlp.js';
import { installTracing, type SpanAttributes, type TraceContext } from './tracing.js';

const getter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    return typeof v === 'string' ? v : undefined;
  },
};

const KINDS = { internal: SpanKind.INTERNAL, client: SpanKind.CLIENT } as const;

/** A sampled span as the application passes it around: its ids, and the context to parent children on. */
class Traced implements TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceparent: string;
  constructor(readonly context: Context, span: Span) {
    const sc = span.spanContext();
    this.traceId = sc.traceId;
    this.spanId = sc.spanId;
    this.traceparent = `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & TraceFlags.SAMPLED}`;
  }
}

/** Runs fn and ends the span with its outcome (an error's type and stack are kept; scrub.ts drops its message). */
async function ended<T>(span: Span, fn: () => Promise<T>): Promise<T> {
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

export async function startTracing(c: TracingConfig): Promise<void> {
  // The SDK's errors — mostly failed exports (collector down: those spans are lost) — go to
  // stderr, at most one line a minute.
  let lastReport = 0;
  setGlobalErrorHandler((err) => {
    if (Date.now() - lastReport < 60_000) return;
    lastReport = Date.now();
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${JSON.stringify({ level: 'warn', time: new Date().toISOString(), service: 'carebase', msg: 'tracing: the OpenTelemetry SDK failed (spans may be lost)', err: { message: message.slice(0, 300) } })}\n`);
  });

  const provider = new BasicTracerProvider({
    resource: resourceOf(c),
    // Whether a trace is sampled is decided before a span is asked for (parentFor below): only
    // sampled work starts spans, and their children follow them.
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new BatchSpanProcessor(threadExporter(c))],
  });
  const tracer = provider.getTracer('carebase');
  const propagator = new W3CTraceContextPropagator();
  const contextOf = (t: TraceContext | undefined): Context => (t instanceof Traced ? t.context : ROOT_CONTEXT);

  /**
   * The parent of the span of work that `carrier` may continue: the caller's span when its
   * traceparent says sampled; none (nothing is traced) when it says not sampled; otherwise the root
   * of a new trace for OTEL_TRACES_SAMPLER_ARG of the work. Decided here, before the SDK is asked
   * for anything, so that work that is not sampled allocates no span, ids or attributes at all
   * (the SDK's own sampling path cost ~10 µs a request).
   */
  function parentFor(carrier: Readonly<Record<string, unknown>>): Context | undefined {
    if (typeof carrier.traceparent === 'string') {
      const extracted = propagator.extract(ROOT_CONTEXT, carrier, getter);
      const sc = trace.getSpanContext(extracted);
      if (sc && isSpanContextValid(sc)) return sc.traceFlags & TraceFlags.SAMPLED ? extracted : undefined;
    }
    return Math.random() < c.sampleRatio ? ROOT_CONTEXT : undefined;
  }

  function start(name: string, kind: SpanKind, attributes: SpanAttributes, parent: Context): Traced {
    const span = tracer.startSpan(name, { kind, attributes }, parent);
    return new Traced(trace.setSpan(parent, span), span);
  }
  const spanOf = (t: Traced) => trace.getSpan(t.context)!;

  installTracing({
    serverSpan(name, headers, attributes) {
      const parent = parentFor(headers);
      if (!parent) return undefined;
      const t = start(name, SpanKind.SERVER, attributes(), parent);
      return {
        trace: t,
        end(finalName, endAttributes, failed) {
          const span = spanOf(t);
          span.updateName(finalName);
          span.setAttributes(endAttributes);
          if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        },
      };
    },
    span(parent, name, kind, attributes, fn) {
      // Without a parent: the root of a new trace, if the ratio takes it.
      const context = parent ? contextOf(parent) : parentFor({});
      if (!context) return fn(undefined);
      const t = start(name, KINDS[kind], attributes, context);
      return ended(spanOf(t), () => fn(t));
    },
    consumerSpan(carrier, name, attributes, fn) {
      // The job's own producer is its parent, nothing else.
      const context = parentFor(carrier);
      if (!context) return fn(undefined);
      const t = start(name, SpanKind.CONSUMER, attributes, context);
      return ended(spanOf(t), () => fn(t));
    },
    shutdown: () => provider.shutdown(),
  });
}
