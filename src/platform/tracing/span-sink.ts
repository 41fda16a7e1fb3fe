// Where finished spans go once recorded (span-record.ts): the SDK's batch span processor, which
// queues them (dropping beyond its limit rather than growing without bound), and the OTLP exporter
// behind it (otlp.ts: scrubbed, then sent). It runs on the export thread (export-thread.ts), or on
// the calling thread should that thread fail.
import type { TracingConfig } from '../../config.js';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { otlpExporter, resourceOf } from './otlp.js';
import { decodeSpan, type EncodedSpan } from './span-record.js';

export interface SpanSink {
  add(spans: EncodedSpan[]): void;
  /** Exports everything queued. */
  forceFlush(): Promise<void>;
  /** Exports everything queued, then stops. */
  shutdown(): Promise<void>;
}

export const SCOPE = { name: 'carebase' };

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
