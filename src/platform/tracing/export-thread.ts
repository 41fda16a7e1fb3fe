// Exports finished spans from a thread of their own.
//
// A sampled cached read cost the thread that answers requests ~41 µs, most of it after the
// response: scrubbing, OTLP encoding, JSON and the HTTP request of the batch (bench/RESULTS.md,
// twelfth and fourteenth sessions). Here that thread only copies each span into plain data
// (span-data.ts) and posts the batch; the rest runs on another core when one is free. The batch
// processor in front of this exporter is unchanged: it still queues, drops when full and waits for
// each export's result, which now comes back from the thread.
//
// Nothing is lost when the thread is not there: if it cannot start or exits, every batch it held
// and every later one is exported on the calling thread (reported once through the SDK's error
// handler). The thread does not keep the process alive while it has nothing to do.
import { Worker } from 'node:worker_threads';
import { ExportResultCode, globalErrorHandler, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../../config.js';
import { otlpExporter } from './otlp.js';
import { toSpanData, type SpanData } from './span-data.js';

export type ExportJob = { n: number; op: 'export'; spans: SpanData[] } | { n: number; op: 'flush' | 'shutdown' };
export interface ExportAnswer {
  n: number;
  code: ExportResult['code'];
  error?: string;
}

interface Out {
  /** What to do on the calling thread instead, should the thread fail first. */
  here(exporter: SpanExporter): void;
  answered(a: ExportAnswer): void;
}

/** `entry`: the thread's script (tests give one that fails). */
export function threadExporter(c: TracingConfig, entry = new URL('./export-thread.worker.mjs', import.meta.url)): SpanExporter {
  let worker: Worker | undefined;
  /** Set when the thread failed or was shut down: export on the calling thread from now on. */
  let local: SpanExporter | undefined;
  let shutDown = false;
  let next = 0;
  const out = new Map<number, Out>();
  const exportHere = () => (local ??= otlpExporter(c));

  function failed(reason: string): void {
    if (local) return;
    worker = undefined;
    const exporter = exportHere();
    globalErrorHandler(new Error(`the span export thread failed (${reason}); exporting on the request thread`));
    for (const [n, o] of out) {
      out.delete(n);
      o.here(exporter);
    }
  }

  function start(): Worker {
    const w = new Worker(entry, { workerData: c });
    w.unref();
    w.on('message', (a: ExportAnswer) => {
      const o = out.get(a.n);
      if (!o) return;
      out.delete(a.n);
      if (out.size === 0) w.unref();
      o.answered(a);
    });
    w.on('error', (err) => failed(err.message));
    w.on('exit', (code) => {
      if (worker === w) failed(`exited with code ${code}`);
    });
    return w;
  }

  function send(job: ExportJob, o: Out): void {
    worker ??= start();
    out.set(job.n, o);
    // While an answer is awaited, the thread keeps the process alive.
    if (out.size === 1) worker.ref();
    worker.postMessage(job);
  }

  /** flush or shutdown, on the thread if it is there. */
  function settle(op: 'flush' | 'shutdown', here: (e: SpanExporter) => Promise<void>): Promise<void> {
    if (local) return here(local);
    if (!worker) return Promise.resolve(); // nothing was ever exported
    return new Promise((resolve, reject) =>
      send({ n: next++, op }, {
        here: (e) => here(e).then(resolve, reject),
        answered: (a) => (a.error === undefined ? resolve() : reject(new Error(a.error))),
      }),
    );
  }

  return {
    export(spans: ReadableSpan[], done: (r: ExportResult) => void) {
      if (shutDown) return done({ code: ExportResultCode.FAILED, error: new Error('the span exporter is shut down') });
      if (local) return local.export(spans, done);
      send(
        { n: next++, op: 'export', spans: spans.map(toSpanData) },
        {
          here: (e) => e.export(spans, done),
          answered: (a) => done({ code: a.code, ...(a.error !== undefined ? { error: new Error(a.error) } : {}) }),
        },
      );
    },
    forceFlush: () => settle('flush', (e) => e.forceFlush!()),
    async shutdown() {
      shutDown = true;
      await settle('shutdown', (e) => e.shutdown());
      const w = worker;
      worker = undefined;
      await w?.terminate();
    },
  };
}
