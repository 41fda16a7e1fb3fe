// Where finished spans go once recorded (span-record.ts): the SDK's batch span processor, which
// queues them (dropping beyond its limit rather than growing without bound), and the OTLP exporter
// behind it (otlp.ts: scrubbed, then sent). It runs on the export thread (export-thread.ts), or on
// the calling thread should that thread fail (loaded only then).
import { createTraceState, TraceFlags } from '@opentelemetry/api';
import { hrTimeDuration, millisToHrTime } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../../config.js';
import { otlpExporter, resourceOf } from './otlp.js';
import type { EncodedSpan } from './span-record.js';

export interface SpanSink {
  add(spans: EncodedSpan[]): void;
  /** Exports everything queued. */
  forceFlush(): Promise<void>;
  /** Exports everything queued, then stops. */
  shutdown(): Promise<void>;
}

const SCOPE = { name: 'carebase' };

/** The SDK's view of an encoded span, for its span processor and exporter. */
function decodeSpan(s: EncodedSpan, resource: Resource, scope: ReadableSpan['instrumentationScope']): ReadableSpan {
  const [name, kind, traceId, spanId, parentSpanId, parentIsRemote, traceState, startMs, endMs, status, attributes, events] = s;
  const state = traceState ? createTraceState(traceState) : undefined;
  const context = { traceId, spanId, traceFlags: TraceFlags.SAMPLED, ...(state ? { traceState: state } : {}) };
  const startTime = millisToHrTime(startMs);
  const endTime = millisToHrTime(endMs);
  return {
    name,
    kind,
    spanContext: () => context,
    ...(parentSpanId ? { parentSpanContext: { traceId, spanId: parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: parentIsRemote, ...(state ? { traceState: state } : {}) } } : {}),
    startTime,
    endTime,
    duration: hrTimeDuration(startTime, endTime),
    ended: true,
    status: { code: status },
    attributes,
    links: [],
    events: events ? events.map(([n, at, a]): TimedEvent => ({ name: n, time: millisToHrTime(at), attributes: a, droppedAttributesCount: 0 })) : [],
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

export function createSpanSink(c: TracingConfig): SpanSink {
  const resource = resourceOf(c);
  const processor = new BatchSpanProcessor(otlpExporter(c));
  return {
    add(spans) {
      for (const s of spans) processor.onEnd(decodeSpan(s, resource, SCOPE));
    },
    forceFlush: () => processor.forceFlush(),
    shutdown: () => processor.shutdown(),
  };
}
