// Spans recorded by span-record.ts and sent through the export thread reach an OTLP receiver
// exactly as the SDK exports them on the calling thread (same body: resource, scope, ids, parent,
// trace state, kinds, times, status, events), scrubbed; batches of any size all arrive; a thread
// that stops taking batches costs bounded memory; when the thread fails, spans are still exported
// (here), and the failure is reported once.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { loggingErrorHandler, setGlobalErrorHandler } from '@opentelemetry/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TracingConfig } from '../../config.js';
import { spanExport } from './export-thread.js';
import { RecordingSpan, type EncodedSpan } from './span-record.js';
import { createSpanSink } from './span-sink.js';

const PHI = 'Jane Q. Testpatient';
let bodies: unknown[] = [];
let server: ReturnType<typeof createServer>;
let config: TracingConfig;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  config = {
    tracesUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    headers: { 'x-team': 'ops' },
    serviceName: 'carebase-test',
    resourceAttributes: { 'deployment.environment': 'test' },
    sampleRatio: 1,
  };
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
afterEach(() => {
  bodies = [];
  setGlobalErrorHandler(loggingErrorHandler());
});

const CALLER = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', isRemote: true, traceState: 'vendor=abc,other=1' };

/** A server span continuing a remote caller (with trace state), and a failed client child with an exception. */
function spans(): EncodedSpan[] {
  const request = new RecordingSpan('GET', SpanKind.SERVER, { 'url.full': `http://h/v1/patients?name=${PHI}`, 'client.address': '10.1.2.3' }, CALLER);
  const child = new RecordingSpan('db.read', SpanKind.CLIENT, { 'db.system': 'postgresql', 'db.statement.values': PHI }, request);
  child.fail(new Error(`duplicate key value (${PHI})`));
  return [child.end(), request.end('GET /v1/patients', { 'http.route': '/v1/patients', 'http.response.status_code': 200 })];
}

type Body = { resourceSpans: { resource: { attributes: { key: string }[] }; scopeSpans: { scope: { name: string }; spans: Record<string, unknown>[] }[] }[] };
const spansIn = (b: unknown) => (b as Body).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));

describe('span export', () => {
  it('sends what the SDK sends when it exports on this thread, scrubbed', async () => {
    const s = spans();
    const here = createSpanSink(config);
    here.add(s);
    await here.shutdown();
    const thread = spanExport(config);
    for (const x of s) thread.add(x);
    await thread.shutdown();

    expect(bodies).toHaveLength(2);
    expect(bodies[1]).toEqual(bodies[0]);
    const text = JSON.stringify(bodies[1]);
    expect(text).not.toContain('Testpatient');
    expect(text).not.toContain('10.1.2.3');
    const [rs] = (bodies[1] as Body).resourceSpans;
    expect(rs!.resource.attributes.map((a) => a.key).sort()).toEqual(['deployment.environment', 'service.name']);
    expect(rs!.scopeSpans.map((ss) => ss.scope.name)).toEqual(['carebase']);
    const byName = Object.fromEntries(spansIn(bodies[1]).map((x) => [x.name, x as Record<string, unknown> & { spanId: string; startTimeUnixNano: string; endTimeUnixNano: string }]));
    const request = byName['GET /v1/patients']!;
    const child = byName['db.read']!;
    // OTLP kinds are the API's plus one: 2 server, 3 client.
    expect(request).toMatchObject({ traceId: CALLER.traceId, parentSpanId: CALLER.spanId, traceState: CALLER.traceState, kind: 2, status: { code: SpanStatusCode.UNSET } });
    expect(request.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(child).toMatchObject({ traceId: CALLER.traceId, parentSpanId: request.spanId, kind: 3, status: { code: SpanStatusCode.ERROR } });
    expect((child as unknown as { events: { name: string; attributes: { key: string }[] }[] }).events.map((e) => [e.name, e.attributes.map((a) => a.key)])).toEqual([['exception', ['exception.type', 'exception.stacktrace']]]);
    const ns = (v: string) => Number(BigInt(v) / 1_000_000n);
    expect(Math.abs(ns(request.startTimeUnixNano) - Date.now())).toBeLessThan(60_000);
    expect(ns(request.endTimeUnixNano)).toBeGreaterThanOrEqual(ns(child.endTimeUnixNano));
    expect(ns(child.startTimeUnixNano)).toBeGreaterThanOrEqual(ns(request.startTimeUnixNano));
  });

  it('new traces get fresh random ids', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => new RecordingSpan('x', SpanKind.INTERNAL, {}, undefined)).flatMap((s) => [s.traceId, s.spanId]));
    expect(ids.size).toBe(4000);
    for (const id of ids) expect(id).toMatch(/^(?:[0-9a-f]{16}|[0-9a-f]{32})$/);
  });

  it('sends full batches at once and the rest on a flush; nothing after the shutdown', async () => {
    const thread = spanExport(config);
    const n = 700;
    for (let i = 0; i < n; i++) thread.add(new RecordingSpan(`s${i}`, SpanKind.INTERNAL, { i }, undefined).end());
    await thread.forceFlush();
    expect(new Set(bodies.flatMap(spansIn).map((s) => s.name)).size).toBe(n);
    await thread.shutdown();
    thread.add(spans()[0]!);
    await thread.forceFlush();
    expect(bodies.flatMap(spansIn)).toHaveLength(n);
  });

  it('drops spans, and says so once, while the thread leaves batches untaken', async () => {
    const reported: string[] = [];
    setGlobalErrorHandler((err) => void reported.push(err instanceof Error ? err.message : String(err)));
    // A thread that takes nothing and never exits (it is unref'd: it does not hold the test up).
    const thread = spanExport(config, new URL('data:text/javascript,setInterval(() => {}, 60000)'));
    for (let i = 0; i < 256 * 70; i++) thread.add(new RecordingSpan('s', SpanKind.INTERNAL, {}, undefined).end());
    expect(reported).toEqual(['the span export thread has not taken 64 batches; dropping spans until it does']);
  });

  it('exports on this thread when the thread fails, and says so once', async () => {
    const reported: string[] = [];
    setGlobalErrorHandler((err) => void reported.push(err instanceof Error ? err.message : String(err)));
    const thread = spanExport(config, new URL('data:text/javascript,process.exit(3)'));
    for (const x of spans()) thread.add(x);
    await thread.forceFlush();
    for (const x of spans()) thread.add(x);
    await thread.shutdown();
    expect(bodies.flatMap(spansIn)).toHaveLength(4);
    expect(JSON.stringify(bodies)).not.toContain('Testpatient');
    expect(reported).toEqual(['the span export thread failed (exited with code 3); exporting on the request thread']);
  });
});
