// The export thread sends exactly what exporting on the calling thread sends (same OTLP body:
// resource, scope, ids, parent, trace state, times, status, scrubbed attributes and events); when
// the thread fails, spans are still exported (here), and the failure is reported once.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, setGlobalErrorHandler, loggingErrorHandler, type ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TracingConfig } from '../../config.js';
import { threadExporter } from './export-thread.js';
import { otlpExporter, resourceOf } from './otlp.js';

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

/** Real SDK spans: a server span continuing a remote caller (with trace state), and a failed child with an exception. */
function spans(): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: resourceOf(config), spanProcessors: [new SimpleSpanProcessor(memory)] });
  const tracer = provider.getTracer('carebase', '1.2.3');
  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: createTraceState('vendor=abc,other=1'),
  });
  const server = tracer.startSpan('GET /v1/patients', { kind: SpanKind.SERVER, attributes: { 'url.full': `http://h/v1/patients?name=${PHI}`, 'client.address': '10.1.2.3', 'http.response.status_code': 200 } }, remote);
  const child = tracer.startSpan('db.query', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.statement.values': [PHI] } }, trace.setSpan(remote, server));
  child.recordException(new Error(`duplicate key value (${PHI})`));
  child.setStatus({ code: SpanStatusCode.ERROR, message: `failed for ${PHI}` });
  child.end();
  server.end();
  return memory.getFinishedSpans();
}

const exported = (e: SpanExporter, s: ReadableSpan[]) => new Promise<ExportResult>((r) => e.export(s, r));

describe('span export thread', () => {
  it('sends the same OTLP body as exporting on this thread, scrubbed', async () => {
    const s = spans();
    expect(await exported(otlpExporter(config), s)).toEqual({ code: ExportResultCode.SUCCESS });
    const thread = threadExporter(config);
    expect(await exported(thread, s)).toEqual({ code: ExportResultCode.SUCCESS });
    await thread.shutdown();

    expect(bodies).toHaveLength(2);
    expect(bodies[1]).toEqual(bodies[0]);
    const text = JSON.stringify(bodies[1]);
    expect(text).not.toContain('Testpatient');
    expect(text).not.toContain('10.1.2.3');
    const [rs] = (bodies[1] as { resourceSpans: { resource: { attributes: { key: string }[] }; scopeSpans: { scope: { name: string; version: string }; spans: Record<string, unknown>[] }[] }[] }).resourceSpans;
    expect(rs!.resource.attributes.map((a) => a.key).sort()).toEqual(['deployment.environment', 'service.name']);
    const [ss] = rs!.scopeSpans;
    expect(ss!.scope).toMatchObject({ name: 'carebase', version: '1.2.3' });
    const byName = Object.fromEntries(ss!.spans.map((x) => [x.name, x]));
    expect(byName['GET /v1/patients']).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentSpanId: '00f067aa0ba902b7', traceState: 'vendor=abc,other=1', kind: 2 });
    expect(byName['db.query']).toMatchObject({ parentSpanId: (byName['GET /v1/patients'] as { spanId: string }).spanId, status: { code: SpanStatusCode.ERROR } });
    expect((byName['db.query'] as { events: { name: string }[] }).events.map((e) => e.name)).toEqual(['exception']);
  });

  it('flushes, and refuses to export after shutdown', async () => {
    const thread = threadExporter(config);
    await thread.forceFlush!();
    expect(await exported(thread, spans())).toEqual({ code: ExportResultCode.SUCCESS });
    await thread.forceFlush!();
    await thread.shutdown();
    expect(await exported(thread, spans())).toMatchObject({ code: ExportResultCode.FAILED });
    expect(bodies).toHaveLength(1);
  });

  it('exports on this thread when the thread fails, and says so once', async () => {
    const reported: string[] = [];
    setGlobalErrorHandler((err) => void reported.push(err instanceof Error ? err.message : String(err)));
    const thread = threadExporter(config, new URL('data:text/javascript,process.exit(3)'));
    const s = spans();
    expect(await exported(thread, s)).toEqual({ code: ExportResultCode.SUCCESS });
    expect(await exported(thread, s)).toEqual({ code: ExportResultCode.SUCCESS });
    await thread.shutdown();
    expect(bodies).toHaveLength(2);
    expect(JSON.stringify(bodies)).not.toContain('Testpatient');
    expect(reported).toEqual(['the span export thread failed (exited with code 3); exporting on the request thread']);
  });
});
