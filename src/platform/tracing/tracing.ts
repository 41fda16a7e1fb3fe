// What the application asks of tracing, without importing OpenTelemetry: when tracing is off
// (no OTEL_EXPORTER_OTLP_ENDPOINT) nothing of it is loaded and every function here is a no-op.
// When it is on, bootstrap.ts starts the SDK (sdk.ts) before the application is imported and
// installs the real implementation here.
//
// Trace context is ambient (AsyncLocalStorage, like OpenTelemetry's own context), not a Ctx
// field: a write made from a REST route, a WebSocket message or a job carries the trace it runs
// in without each transport passing it along.

/** A carrier of W3C trace context: `traceparent` (and `tracestate`), e.g. a job's payload field. */
export type TraceCarrier = Record<string, string>;

export interface TracingImpl {
  traceparent(): string | undefined;
  inject(carrier: TraceCarrier): void;
  runWith<T>(carrier: Readonly<Record<string, unknown>>, fn: () => T): T;
  span<T>(name: string, attributes: Readonly<Record<string, string | number | boolean>>, fn: () => Promise<T>): Promise<T>;
  /** A CONSUMER span whose parent is the context in `carrier` (a new trace when it has none), never the ambient one. */
  consumerSpan<T>(carrier: Readonly<Record<string, unknown>>, name: string, attributes: Readonly<Record<string, string | number | boolean>>, fn: () => Promise<T>): Promise<T>;
  shutdown(): Promise<void>;
}

let impl: TracingImpl | undefined;

/** Called once, by sdk.ts, when tracing is on (and by tests, which undo it with undefined). */
export function installTracing(t: TracingImpl | undefined): void {
  impl = t;
}

export const tracingEnabled = (): boolean => impl !== undefined;

/**
 * The W3C `traceparent` of the active span (`00-<trace id>-<span id>-<flags>`), or undefined when
 * tracing is off or no sampled span is active. The outbox stores it with each event.
 */
export function currentTraceparent(): string | undefined {
  return impl?.traceparent();
}

/**
 * Writes the active trace context into `carrier` (nothing when tracing is off) and returns it.
 * For producers of work that runs elsewhere — a job's payload, a message — so that the consumer
 * continues the same trace with runWithTraceContext.
 */
export function injectTraceContext<C extends TraceCarrier>(carrier: C): C {
  impl?.inject(carrier);
  return carrier;
}

/**
 * Runs fn in the trace context a producer injected into `carrier` (a job handler's payload), so the
 * spans fn starts continue that trace; just runs fn when tracing is off or the carrier has none.
 */
export function runWithTraceContext<T>(carrier: Readonly<Record<string, unknown>>, fn: () => T): T {
  return impl ? impl.runWith(carrier, fn) : fn();
}

/**
 * Runs fn in a child span of the active span. No span when tracing is off or nothing is traced
 * at the moment (background loops stay out of traces unless a traced request or job started them).
 */
export function inChildSpan<T>(name: string, attributes: Readonly<Record<string, string | number | boolean>>, fn: () => Promise<T>): Promise<T> {
  return impl ? impl.span(name, attributes, fn) : fn();
}

/**
 * Runs a job in a span of its own: a child of the trace context its producer injected into
 * `carrier` (injectTraceContext at enqueue), or the root of a new trace when there is none (a
 * scheduled run). The context active when the job starts is ignored on purpose: in a process that
 * runs jobs it belongs to whatever happened to trigger the run (an enqueueing request of another
 * trace, a timer). Just runs fn when tracing is off.
 */
export function inJobSpan<T>(carrier: Readonly<Record<string, unknown>>, name: string, attributes: Readonly<Record<string, string | number | boolean>>, fn: () => Promise<T>): Promise<T> {
  return impl ? impl.consumerSpan(carrier, name, attributes, fn) : fn();
}

/** Exports the spans still buffered and stops tracing; gives up after timeoutMs (never throws). */
export async function shutdownTracing(timeoutMs: number): Promise<void> {
  const t = impl;
  if (!t) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    t.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
