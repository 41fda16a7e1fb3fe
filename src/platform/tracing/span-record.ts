// A sampled span as this process records it, and as it travels to the export thread.
//
// Spans are recorded here, not by the OpenTelemetry SDK's tracer: on the thread that answers
// requests the SDK's span (its tracer, sampler, attribute checks, self-metrics, span processor)
// and the copy of it for the export thread cost a sampled cached read far more than the read
// itself (bench/RESULTS.md, fourteenth session). Our spans are few and made by our own code only
// (tracing.ts), with attributes typed as the specification allows, so what the SDK checks cannot
// go wrong here. The SDK still does everything after a span ends, on the export thread
// (span-sink.ts, which also turns these tuples back into the SDK's spans): batching, queue
// limits, OTLP encoding, scrubbing and sending; none of that is loaded on this thread.
//
// A finished span crosses to that thread as a flat tuple: a structured clone copies nested
// objects several times slower than an array of strings and numbers.
import { randomFillSync } from 'node:crypto';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { SpanAttributes } from './tracing.js';

/** An event, as recorded: name, time (epoch ms), attributes. */
type EncodedEvent = [name: string, atMs: number, attributes: SpanAttributes];

export type EncodedSpan = [
  name: string,
  kind: SpanKind,
  traceId: string,
  spanId: string,
  /** '' for the root of a trace. */
  parentSpanId: string,
  parentIsRemote: boolean,
  /** The W3C tracestate continued from the caller ('' when none). */
  traceState: string,
  startMs: number,
  endMs: number,
  status: SpanStatusCode,
  attributes: SpanAttributes,
  events: EncodedEvent[] | 0,
];

/** The span that a new one continues: the caller's (remote) or one of ours. */
export interface ParentContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly isRemote: boolean;
  readonly traceState: string;
}

// Random ids from a pool refilled by the system's CSPRNG: one call per 256 span ids.
const pool = Buffer.allocUnsafe(2048);
let used = pool.length;
function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString('hex', used, (used += bytes));
  // All zeros is not a valid id (W3C trace context): vanishingly rare, drawn again.
  return /[^0]/.test(hex) ? hex : randomHex(bytes);
}

/** Wall-clock time in ms with sub-millisecond precision (monotonic within the process). */
const nowMs = () => performance.timeOrigin + performance.now();

export class RecordingSpan implements ParentContext {
  readonly traceId: string;
  readonly spanId = randomHex(8);
  readonly isRemote = false;
  readonly traceState: string;
  readonly traceparent: string;
  private readonly startMs = nowMs();
  private status = SpanStatusCode.UNSET;
  private events: EncodedEvent[] | 0 = 0;

  constructor(
    private name: string,
    private readonly kind: SpanKind,
    private attributes: SpanAttributes,
    private readonly parent: ParentContext | undefined,
  ) {
    this.traceId = parent?.traceId ?? randomHex(16);
    this.traceState = parent?.traceState ?? '';
    this.traceparent = `00-${this.traceId}-${this.spanId}-01`;
  }

  /** Marks the span failed; with the error, an `exception` event (its message is dropped before export: scrub.ts). */
  fail(err?: unknown): void {
    this.status = SpanStatusCode.ERROR;
    if (!(err instanceof Error)) return;
    const attributes: Record<string, string> = { 'exception.type': err.name, 'exception.message': err.message };
    if (err.stack) attributes['exception.stacktrace'] = err.stack;
    (this.events ||= []).push(['exception', nowMs(), attributes]);
  }

  /** Ends the span, renamed and with more attributes if given. */
  end(name?: string, attributes?: SpanAttributes): EncodedSpan {
    if (name !== undefined) this.name = name;
    if (attributes) this.attributes = { ...this.attributes, ...attributes };
    const p = this.parent;
    return [this.name, this.kind, this.traceId, this.spanId, p?.spanId ?? '', p?.isRemote ?? false, this.traceState, this.startMs, nowMs(), this.status, this.attributes, this.events];
  }
}
