// What the application asks of tracing, without importing OpenTelemetry: when tracing is off
// (no OTEL_EXPORTER_OTLP_ENDPOINT) nothing of it is loaded and every function here is a no-op.
// When it is on, bootstrap.ts starts tracer.ts, which installs the real implementation here.
//
// Trace context is explicit, not ambient: a request's or job's sampled span travels as a value
// (Ctx.trace, JobContext.trace) and spans are started under it by name. Ambient context
// (AsyncLocalStorage, i.e. promise hooks on Node 20) and the auto-instrumentations' wrappers cost
// every request about half its CPU, sampled or not (bench/RESULTS.md); explicit context costs a
// request that is not sampled nothing beyond the sampling decision.

/** A carrier of W3C trace context: `traceparent` (and `tracestate`), e.g. a job's payload field. */
export type TraceCarrier = Record<string, string>;

export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** A sampled span that work can continue: what is passed to whatever that work does or causes. */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  /** The span's W3C `traceparent` (`00-<trace id>-<span id>-01`). */
  readonly traceparent: string;
}

/** A request's SERVER span, ended when the response has been sent (named then: the route is known). */
export interface ServerSpan {
  readonly trace: TraceContext;
  end(name: string, attributes: SpanAttributes, failed: boolean): void;
}

export type SpanKindName = 'internal' | 'client';

export interface TracingImpl {
  /**
   * A SERVER span continuing the caller's `traceparent` in `headers`, with `attributes(of)`;
   * undefined when not sampled (then `attributes` is not even called). A function and its
   * argument rather than a closure: a closure would be made for every request, sampled or not.
   */
  serverSpan<A>(name: string, headers: Readonly<Record<string, unknown>>, attributes: (of: A) => SpanAttributes, of: A): ServerSpan | undefined;
  /** A child span of `parent` (or, without one, the root of a new trace if it is sampled) around fn. */
  span<T>(parent: TraceContext | undefined, name: string, kind: SpanKindName, attributes: SpanAttributes, fn: (trace: TraceContext | undefined) => Promise<T>): Promise<T>;
  /** A CONSUMER span whose parent is the context in `carrier` (a new trace when it has none). */
  consumerSpan<T>(carrier: Readonly<Record<string, unknown>>, name: string, attributes: SpanAttributes, fn: (trace: TraceContext | undefined) => Promise<T>): Promise<T>;
  shutdown(): Promise<void>;
}

let impl: TracingImpl | undefined;

/** Called once, by tracer.ts, when tracing is on (and by tests, which undo it with undefined). */
export function installTracing(t: TracingImpl | undefined): void {
  impl = t;
}

export const tracingEnabled = (): boolean => impl !== undefined;

/** Starts a request's SERVER span (undefined when tracing is off or the request is not sampled). */
export function startServerSpan<A>(name: string, headers: Readonly<Record<string, unknown>>, attributes: (of: A) => SpanAttributes, of: A): ServerSpan | undefined {
  return impl?.serverSpan(name, headers, attributes, of);
}

/**
 * Runs fn in a child span of `parent`; without a parent (work that is not traced) just runs fn —
 * background loops stay out of traces unless a traced request or job started them.
 */
export function inSpan<T>(parent: TraceContext | undefined, name: string, attributes: SpanAttributes, fn: (trace: TraceContext | undefined) => Promise<T>, kind: SpanKindName = 'internal'): Promise<T> {
  return impl && parent ? impl.span(parent, name, kind, attributes, fn) : fn(undefined);
}

/**
 * An outgoing call as a CLIENT span: a child of `parent`, or, for a call no request or job made
 * (the alert webhook), the root of a new trace when the sampler takes it. fn gets the headers that
 * carry the trace to the callee (none when nothing is traced).
 */
export function outgoingCall<T>(parent: TraceContext | undefined, name: string, attributes: SpanAttributes, fn: (headers: TraceCarrier) => Promise<T>): Promise<T> {
  if (!impl) return fn({});
  return impl.span(parent, name, 'client', attributes, (trace) => fn(trace ? { traceparent: trace.traceparent } : {}));
}

/**
 * Runs a job in a span of its own: a child of the trace context its producer put into `carrier`
 * (see traceCarrier), or the root of a new trace when there is none (a scheduled run). fn gets the
 * job's span, to pass on. Just runs fn when tracing is off.
 */
export function inJobSpan<T>(carrier: Readonly<Record<string, unknown>>, name: string, attributes: SpanAttributes, fn: (trace: TraceContext | undefined) => Promise<T>): Promise<T> {
  return impl ? impl.consumerSpan(carrier, name, attributes, fn) : fn(undefined);
}

/** The W3C trace context of `trace` for work that runs elsewhere (a job's envelope); empty when untraced. */
export function traceCarrier(trace: TraceContext | undefined): TraceCarrier {
  return trace ? { traceparent: trace.traceparent } : {};
}

/** The trace fields of a log line written for traced work (none for untraced work). */
export function traceLogFields(trace: TraceContext | undefined): Record<string, string> {
  return trace ? { trace_id: trace.traceId, span_id: trace.spanId } : {};
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
