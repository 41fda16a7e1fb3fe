// What spans are exported with, the same on the export thread (export-thread.ts) and, should that
// thread fail, on the calling one: the process's resource, OTLP/HTTP (JSON) with every span
// scrubbed of PHI first (scrub.ts), and where the SDK's errors go.
import { setGlobalErrorHandler } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../../config.js';
import { scrubbingExporter } from './scrub.js';

export const resourceOf = (c: TracingConfig): Resource => resourceFromAttributes({ ...c.resourceAttributes, 'service.name': c.serviceName });

export const otlpExporter = (c: TracingConfig): SpanExporter =>
  scrubbingExporter(new OTLPTraceExporter({ url: c.tracesUrl, headers: { ...c.headers }, timeoutMillis: 10_000 }));

/**
 * The SDK's errors — mostly failed exports (collector down: those spans are lost) — go to stderr,
 * at most one line a minute per thread. Each thread has its own SDK, so each installs this.
 */
export function reportSdkErrors(): void {
  let lastReport = 0;
  setGlobalErrorHandler((err) => {
    if (Date.now() - lastReport < 60_000) return;
    lastReport = Date.now();
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${JSON.stringify({ level: 'warn', time: new Date().toISOString(), service: 'carebase', msg: 'tracing: the OpenTelemetry SDK failed (spans may be lost)', err: { message: message.slice(0, 300) } })}\n`);
  });
}
