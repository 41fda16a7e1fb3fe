// Sends finished spans (span-record.ts) to a thread of their own, which batches, scrubs, encodes
// and exports them (span-sink.ts), so that the thread answering requests only records them.
//
// Spans are posted in batches (at most BATCH, or what a second gathered): one message per span
// would cost more than the span. The thread says when it has taken a batch; until then the batch
// is kept here, so that if the thread cannot start or exits, every batch it had not taken and
// every later one is exported on the calling thread instead (reported once through the SDK's
// error handler). A thread that is there but stops taking batches costs bounded memory: beyond
// MAX_OUT untaken batches, spans are dropped (reported once). The thread does not keep the
// process alive, except while a flush or the shutdown waits for it.
import { Worker } from 'node:worker_threads';
import { globalErrorHandler } from '@opentelemetry/core';
import type { TracingConfig } from '../../config.js';
import type { EncodedSpan } from './span-record.js';
import type { SpanSink } from './span-sink.js';

export type ToThread = { n: number; op: 'spans'; spans: EncodedSpan[] } | { n: number; op: 'flush' | 'shutdown' };
export interface ToParent {
  n: number;
  error?: string;
}

export interface SpanExport {
  add(span: EncodedSpan): void;
  /** Exports every span added so far. */
  forceFlush(): Promise<void>;
  /** Exports every span added so far and stops; later spans are dropped. */
  shutdown(): Promise<void>;
}

const BATCH = 256;
const DELAY_MS = 1000;
/** Batches the thread may leave untaken before more are dropped (a thread that stopped answering must not grow this one's memory). */
const MAX_OUT = 64;

interface Out {
  /** Does on the calling thread what the thread was asked, should it fail first. */
  redo(sink: SpanSink): void;
  answered(a: ToParent): void;
}

/** `entry`: the thread's script (tests give one that fails). */
export function spanExport(c: TracingConfig, entry = new URL('./export-thread.worker.mjs', import.meta.url)): SpanExport {
  let worker: Worker | undefined;
  /**
   * Set when the thread failed: spans are exported on this thread from then on. The SDK is
   * loaded here only then: loaded for nothing, it made the request thread slower.
   */
  let local: Promise<SpanSink> | undefined;
  let closed = false;
  let dropping = false;
  let buffer: EncodedSpan[] = [];
  let timer: NodeJS.Timeout | undefined;
  let next = 0;
  const out = new Map<number, Out>();
  /** Flushes and the shutdown waiting for the thread: while there are any, it keeps the process alive. */
  let awaited = 0;

  function failed(reason: string): void {
    if (local) return;
    worker = undefined;
    const here = import('./span-sink.js').then((m) => m.createSpanSink(c));
    here.catch((err: unknown) => globalErrorHandler(err as Error));
    local = here;
    globalErrorHandler(new Error(`the span export thread failed (${reason}); exporting on the request thread`));
    for (const [n, o] of out) {
      out.delete(n);
      here.then((sink) => o.redo(sink), () => {});
    }
  }

  function start(): Worker {
    const w = new Worker(entry, { workerData: c });
    w.unref();
    w.on('message', (a: ToParent) => {
      const o = out.get(a.n);
      if (!o) return;
      out.delete(a.n);
      o.answered(a);
    });
    w.on('error', (err) => failed(err.message));
    w.on('exit', (code) => {
      if (worker === w) failed(`exited with code ${code}`);
    });
    return w;
  }

  function post(job: ToThread, o: Out): void {
    out.set(job.n, o);
    worker!.postMessage(job);
  }

  function send(): void {
    clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return;
    const spans = buffer;
    buffer = [];
    if (local) return void local.then((sink) => sink.add(spans), () => {});
    if (out.size >= MAX_OUT) {
      if (!dropping) globalErrorHandler(new Error(`the span export thread has not taken ${out.size} batches; dropping spans until it does`));
      dropping = true;
      return;
    }
    dropping = false;
    post({ n: next++, op: 'spans', spans }, { redo: (sink) => sink.add(spans), answered: () => {} });
  }

  function settle(op: 'flush' | 'shutdown'): Promise<void> {
    send();
    if (local) return local.then((sink) => (op === 'flush' ? sink.forceFlush() : sink.shutdown()));
    if (!worker) return Promise.resolve(); // shut down already
    const w = worker;
    if (awaited++ === 0) w.ref();
    return new Promise<void>((resolve, reject) =>
      post({ n: next++, op }, {
        redo: (sink) => void (op === 'flush' ? sink.forceFlush() : sink.shutdown()).then(resolve, reject),
        answered: (a) => (a.error === undefined ? resolve() : reject(new Error(a.error))),
      }),
    ).finally(() => {
      if (--awaited === 0) w.unref();
    });
  }

  // Started now, not at the first batch: loading the SDK there takes a while (seconds on a busy
  // machine), and spans ended just before a shutdown must not wait for it within the shutdown's
  // few seconds.
  worker = start();

  return {
    add(span) {
      if (closed) return;
      buffer.push(span);
      if (buffer.length >= BATCH) send();
      else timer ??= setTimeout(send, DELAY_MS).unref();
    },
    forceFlush: () => settle('flush'),
    async shutdown() {
      if (closed) return;
      closed = true;
      await settle('shutdown');
      const w = worker;
      worker = undefined;
      await w?.terminate();
    },
  };
}
