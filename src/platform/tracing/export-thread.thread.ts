// The span export thread's loop (export-thread.ts): scrubs, encodes and sends each batch it is
// sent, answering with the exporter's result.
import { parentPort, workerData } from 'node:worker_threads';
import { ExportResultCode } from '@opentelemetry/core';
import type { TracingConfig } from '../../config.js';
import type { ExportJob, ExportAnswer } from './export-thread.js';
import { otlpExporter, resourceOf } from './otlp.js';
import { fromSpanData } from './span-data.js';

const config = workerData as TracingConfig;
const resource = resourceOf(config);
const exporter = otlpExporter(config);
const port = parentPort!;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

port.on('message', (job: ExportJob) => {
  const answer = (a: Omit<ExportAnswer, 'n'>) => port.postMessage({ n: job.n, ...a } satisfies ExportAnswer);
  if (job.op === 'export') {
    exporter.export(job.spans.map((s) => fromSpanData(s, resource)), (r) =>
      answer({ code: r.code, ...(r.error ? { error: message(r.error) } : {}) }),
    );
    return;
  }
  const done = job.op === 'flush' ? exporter.forceFlush!() : exporter.shutdown();
  done.then(
    () => answer({ code: ExportResultCode.SUCCESS }),
    (err: unknown) => answer({ code: ExportResultCode.FAILED, error: message(err) }),
  );
});
