// A finished span as plain data, to cross to the export thread (export-thread.ts): a ReadableSpan
// holds functions and SDK objects that a thread message cannot carry. The resource is the same for
// every span of the process, so the thread makes its own once and it does not travel.
import { createTraceState, type HrTime, type Link, type SpanContext, type SpanStatus } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { InstrumentationScope } from '@opentelemetry/core';

/** A span context without the trace state's object (its header form instead). */
interface ContextData {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: string;
}

export interface SpanData {
  name: string;
  kind: ReadableSpan['kind'];
  context: ContextData;
  parent?: ContextData;
  startTime: HrTime;
  endTime: HrTime;
  duration: HrTime;
  status: SpanStatus;
  attributes: ReadableSpan['attributes'];
  links: { context: ContextData; attributes?: Link['attributes']; droppedAttributesCount?: number }[];
  events: TimedEvent[];
  scope: InstrumentationScope;
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
}

function contextData(c: SpanContext): ContextData {
  return {
    traceId: c.traceId,
    spanId: c.spanId,
    traceFlags: c.traceFlags,
    ...(c.isRemote !== undefined ? { isRemote: c.isRemote } : {}),
    ...(c.traceState ? { traceState: c.traceState.serialize() } : {}),
  };
}

function spanContext(d: ContextData): SpanContext {
  const { traceState, ...rest } = d;
  return traceState === undefined ? rest : { ...rest, traceState: createTraceState(traceState) };
}

export function toSpanData(s: ReadableSpan): SpanData {
  return {
    name: s.name,
    kind: s.kind,
    context: contextData(s.spanContext()),
    ...(s.parentSpanContext ? { parent: contextData(s.parentSpanContext) } : {}),
    startTime: s.startTime,
    endTime: s.endTime,
    duration: s.duration,
    status: s.status,
    attributes: s.attributes,
    links: s.links.map((l) => ({ ...l, context: contextData(l.context) })),
    events: s.events,
    scope: s.instrumentationScope,
    droppedAttributesCount: s.droppedAttributesCount,
    droppedEventsCount: s.droppedEventsCount,
    droppedLinksCount: s.droppedLinksCount,
  };
}

export function fromSpanData(d: SpanData, resource: Resource): ReadableSpan {
  const context = spanContext(d.context);
  return {
    name: d.name,
    kind: d.kind,
    spanContext: () => context,
    ...(d.parent ? { parentSpanContext: spanContext(d.parent) } : {}),
    startTime: d.startTime,
    endTime: d.endTime,
    duration: d.duration,
    ended: true,
    status: d.status,
    attributes: d.attributes,
    links: d.links.map((l) => ({ ...l, context: spanContext(l.context) })),
    events: d.events,
    resource,
    instrumentationScope: d.scope,
    droppedAttributesCount: d.droppedAttributesCount,
    droppedEventsCount: d.droppedEventsCount,
    droppedLinksCount: d.droppedLinksCount,
  };
}
