// Tracing, started by bootstrap.ts when OTEL_EXPORTER_OTLP_ENDPOINT is set. Loaded only then:
// with tracing off none of this is imported.
//
// Spans, all started by our own code with an explicit parent (see tracing.ts for why): each request
// (a SERVER span, http/tracing.ts, the caller's traceparent as parent), each database operation of
// the Db port (traced-db.ts, either driver), each cache command (Redis in server mode:
// resource-cache.ts), each job attempt (a CONSUMER span continuing its producer's trace:
// platform/jobs/run-job.ts) and each outgoing call (the alert webhook, with traceparent sent).
//
// They are recorded by span-record.ts and exported by the OpenTelemetry SDK on a thread of their
// own (export-thread.ts, span-sink.ts): OTLP/HTTP (JSON) in batches, scrubbed of PHI first
// (scrub.ts). Nothing is registered globally: no context manager, no global propagator, nothing
// patched.
import { isSpanContextValid, ROOT_CONTEXT, SpanKind, trace, TraceFlags, type TextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { TracingConfig } from '../../config.js';
import { spanExport, type SpanExport } from './export-thread.js';
import { reportSdkErrors } from './sdk-errors.js';
import { RecordingSpan, type ParentContext } from './span-record.js';
import { installTracing, type TraceContext } from './tracing.js';

const getter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    return typeof v === 'string' ? v : undefined;
  },
};

const KINDS = { internal: SpanKind.INTERNAL, client: SpanKind.CLIENT } as const;

/** Runs fn in `span`, then ends it with fn's outcome (an error's type and stack are kept; scrub.ts drops its message). */
async function ended<T>(exporter: SpanExport, span: RecordingSpan, fn: (t: TraceContext) => Promise<T>): Promise<T> {
  try {
    return await fn(span);
  } catch (err) {
    span.fail(err);
    throw err;
  } finally {
    exporter.add(span.end());
  }
}

export async function startTracing(c: TracingConfig): Promise<void> {
  reportSdkErrors(); // for the export thread's stand-in, should it fail (export-thread.ts)
  const exporter = spanExport(c);
  const propagator = new W3CTraceContextPropagator();

  /**
   * The parent of the span of work that `carrier` may continue: the caller's span when its
   * traceparent says sampled; undefined (nothing is traced) when it says not sampled; otherwise
   * null, the root of a new trace, for OTEL_TRACES_SAMPLER_ARG of the work. Work that is not
   * sampled allocates no span, ids or attributes at all.
   */
  function parentFor(carrier: Readonly<Record<string, unknown>>): ParentContext | null | undefined {
    if (typeof carrier.traceparent === 'string') {
      const sc = trace.getSpanContext(propagator.extract(ROOT_CONTEXT, carrier, getter));
      if (sc && isSpanContextValid(sc)) {
        if (!(sc.traceFlags & TraceFlags.SAMPLED)) return undefined;
        return { traceId: sc.traceId, spanId: sc.spanId, isRemote: true, traceState: sc.traceState?.serialize() ?? '' };
      }
    }
    return Math.random() < c.sampleRatio ? null : undefined;
  }

  installTracing({
    serverSpan(name, headers, attributes, of) {
      const parent = parentFor(headers);
      if (parent === undefined) return undefined;
      const span = new RecordingSpan(name, SpanKind.SERVER, attributes(of), parent ?? undefined);
      return {
        trace: span,
        end(finalName, endAttributes, failed) {
          if (failed) span.fail();
          exporter.add(span.end(finalName, endAttributes));
        },
      };
    },
    span(parent, name, kind, attributes, fn) {
      // A parent of ours is continued; without one, the root of a new trace if the ratio takes it.
      const p = parent ? (parent instanceof RecordingSpan ? parent : null) : parentFor({});
      if (p === undefined) return fn(undefined);
      return ended(exporter, new RecordingSpan(name, KINDS[kind], attributes, p ?? undefined), fn);
    },
    consumerSpan(carrier, name, attributes, fn) {
      // The job's own producer is its parent, nothing else.
      const p = parentFor(carrier);
      if (p === undefined) return fn(undefined);
      return ended(exporter, new RecordingSpan(name, SpanKind.CONSUMER, attributes, p ?? undefined), fn);
    },
    shutdown: () => exporter.shutdown(),
  });
}
