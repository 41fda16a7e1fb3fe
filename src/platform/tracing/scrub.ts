// Spans leave the process without PHI or secrets, whatever set their attributes: every span is
// scrubbed on its way to the exporter. Our spans record no values in the first place (no SQL, no
// Redis keys, no headers or query strings: http/tracing.ts, traced-db.ts, resource-cache.ts);
// this is the one place that holds for all of them, including attributes set after a span
// started and those of spans added later.
//
// - Query strings go (`?name=` searches, `?identifier=system|value`, tickets): `url.query` is
//   dropped, and `url.full`, `url.path`, `http.target`, `http.url` lose everything from `?`/`#`.
//   Paths stay: ours hold resource ids (random UUIDs), which the logs' route templates do not, but
//   traces are for finding the one slow request.
// - Outgoing calls keep only their origin: a webhook URL's path is its credential (Slack's are).
// - The client's address goes (server spans): an IP address is an identifier under HIPAA.
// - Request and response headers, SQL parameter values: dropped should anything record them.
// - Error messages go (span status, exception events): a database error can quote a value.
//   Exception events keep the error's type and stack frames.
import { SpanKind, type Attributes, type AttributeValue } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter, TimedEvent } from '@opentelemetry/sdk-trace-base';

const DROP = new Set([
  'url.query',
  'client.address',
  'http.client_ip',
  'db.postgresql.values',
  'db.statement.values',
  'http.request.body',
  'http.response.body',
  'enduser.id',
  'user.email',
  'user.name',
]);
const DROP_PREFIXES = ['http.request.header.', 'http.response.header.', 'db.query.parameter.', 'db.operation.parameter.'];
// An outgoing call keeps its origin only (url.full below).
const DROP_ON_CLIENT = new Set(['url.path', 'http.target']);
// The peer of a server span is the client.
const DROP_ON_SERVER = new Set(['network.peer.address', 'network.peer.port', 'net.peer.ip', 'net.peer.port', 'net.sock.peer.addr', 'net.sock.peer.port']);
const URL_ATTRIBUTES = new Set(['url.full', 'http.url']);
const PATH_ATTRIBUTES = new Set(['url.path', 'http.target']);

const withoutQuery = (v: string) => v.replace(/[?#].*$/s, '');

/** scheme://host[:port] of a URL, without user info; '' when unparsable. */
function originOf(v: string): string {
  try {
    return new URL(v).origin;
  } catch {
    return '';
  }
}

function withoutQueryAndUserInfo(v: string): string {
  try {
    const u = new URL(v);
    return `${u.origin}${u.pathname}`;
  } catch {
    return withoutQuery(v).replace(/\/\/[^/@]*@/, '//');
  }
}

export function scrubAttributes(attributes: Attributes, kind: SpanKind): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || DROP.has(key) || DROP_PREFIXES.some((p) => key.startsWith(p))) continue;
    if (kind === SpanKind.SERVER && DROP_ON_SERVER.has(key)) continue;
    if (kind === SpanKind.CLIENT && DROP_ON_CLIENT.has(key)) continue;
    out[key] = scrubValue(key, value, kind);
  }
  return out;
}

function scrubValue(key: string, value: AttributeValue, kind: SpanKind): AttributeValue {
  if (typeof value !== 'string') return value;
  if (URL_ATTRIBUTES.has(key)) return kind === SpanKind.CLIENT ? originOf(value) : withoutQueryAndUserInfo(value);
  if (PATH_ATTRIBUTES.has(key)) return withoutQuery(value);
  if (key === 'db.connection_string') return withoutQueryAndUserInfo(value);
  return value;
}

function scrubEvent(e: TimedEvent, kind: SpanKind): TimedEvent {
  if (e.name !== 'exception' || !e.attributes) return { ...e, ...(e.attributes ? { attributes: scrubAttributes(e.attributes, kind) } : {}) };
  const { 'exception.type': type, 'exception.stacktrace': stack } = e.attributes;
  const frames = typeof stack === 'string' ? stack.split('\n').filter((l) => /^\s+at /.test(l)).join('\n') : undefined;
  return { ...e, attributes: { ...(type !== undefined ? { 'exception.type': type } : {}), ...(frames ? { 'exception.stacktrace': frames } : {}) } };
}

/** A copy of the span that holds no query strings, client addresses, headers, values or error messages. */
export function scrubSpan(span: ReadableSpan): ReadableSpan {
  return {
    name: withoutQuery(span.name),
    kind: span.kind,
    spanContext: () => span.spanContext(),
    ...(span.parentSpanContext ? { parentSpanContext: span.parentSpanContext } : {}),
    startTime: span.startTime,
    endTime: span.endTime,
    status: { code: span.status.code },
    attributes: scrubAttributes(span.attributes, span.kind),
    links: span.links.map((l) => ({ context: l.context, ...(l.attributes ? { attributes: scrubAttributes(l.attributes, span.kind) } : {}) })),
    events: span.events.map((e) => scrubEvent(e, span.kind)),
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** Wraps an exporter so that every span it sends is scrubbed first. */
export function scrubbingExporter(inner: SpanExporter): SpanExporter {
  return {
    export: (spans, done) => inner.export(spans.map(scrubSpan), done),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}
