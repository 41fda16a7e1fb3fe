// What spans are exported with, the same on the export thread (export-thread.ts) and, should that
// thread fail, on the calling one: the process's resource, and OTLP/HTTP (JSON) with every span
// scrubbed of PHI first (scrub.ts).
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../../config.js';
import { scrubbingExporter } from './scrub.js';

export const resourceOf = (c: TracingConfig): Resource => resourceFromAttributes({ ...c.resourceAttributes, 'service.name': c.serviceName });

export const otlpExporter = (c: TracingConfig): SpanExporter =>
  scrubbingExporter(new OTLPTraceExporter({ url: c.tracesUrl, headers: { ...c.headers }, timeoutMillis: 10_000 }));
