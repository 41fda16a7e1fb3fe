// The OpenTelemetry SDK, started by bootstrap.ts when OTEL_EXPORTER_OTLP_ENDPOINT is set. Loaded
// only then: with tracing off none of this is imported.
//
// Spans, all started by our own code with an explicit parent (see tracing.ts for why): each request
// (a SERVER span, http/tracing.ts, the caller's traceparent as parent), each database operation of
// the Db port (traced-db.ts, either driver), each cache command (Redis in server mode:
// resource-cache.ts), each job attempt (a CONSUMER span continuing its producer's trace:
// platform/jobs/run-job.ts) and each outgoing call (the alert webhook, with traceparent sent).
// Exported over OTLP/HTTP (JSON) in batches, scrubbed of PHI first (scrub.ts). The provider is not
// registered globally: no context manager, no global propagator, nothing patched.
//
// Why not @opentelemetry/sdk-node: it pulls in every exporter (gRPC included) and slows the start.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Context, type Span, type TextMapGetter } from '@opentelemetry/api';
import { setGlobalErrorHandler, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../../config.js';
import { scrubbingExporter } from './scrub.js';
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

  const exporter = new OTLPTraceExporter({ url: c.tracesUrl, headers: { ...c.headers }, timeoutMillis: 10_000 });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ ...c.resourceAttributes, 'service.name': c.serviceName }),
    // Follows the caller's decision (traceparent's sampled flag); samples new traces at the ratio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(c.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(scrubbingExporter(exporter))],
  });
  const tracer = provider.getTracer('carebase');
  const propagator = new W3CTraceContextPropagator();
  const contextOf = (t: TraceContext | undefined): Context => (t instanceof Traced ? t.context : ROOT_CONTEXT);

  /** The span started under `parent`, or undefined (and nothing to end) when the sampler declined it. */
  function start(name: string, kind: SpanKind, attributes: SpanAttributes, parent: Context): Traced | undefined {
    const span = tracer.startSpan(name, { kind, attributes }, parent);
    return span.isRecording() ? new Traced(trace.setSpan(parent, span), span) : undefined;
  }
  const spanOf = (t: Traced) => trace.getSpan(t.context)!;

  installTracing({
    serverSpan(name, headers, attributes) {
      const t = start(name, SpanKind.SERVER, attributes, propagator.extract(ROOT_CONTEXT, headers, getter));
      if (!t) return undefined;
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
      const t = start(name, KINDS[kind], attributes, contextOf(parent));
      return t ? ended(spanOf(t), () => fn(t)) : fn(undefined);
    },
    consumerSpan(carrier, name, attributes, fn) {
      // Extracted onto the root context: the job's own producer is its parent, nothing else.
      const t = start(name, SpanKind.CONSUMER, attributes, propagator.extract(ROOT_CONTEXT, carrier, getter));
      return t ? ended(spanOf(t), () => fn(t)) : fn(undefined);
    },
    shutdown: () => provider.shutdown(),
  });
}
