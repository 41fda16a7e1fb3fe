// The span export thread's loop (export-thread.ts): hands each batch to the span sink, says it
// has taken it, and answers flushes and the shutdown once the sink has exported.
import { parentPort, workerData } from 'node:worker_threads';
import type { TracingConfig } from '../../config.js';
import type { ToParent, ToThread } from './export-thread.js';
import { reportSdkErrors } from './sdk-errors.js';
import { createSpanSink } from './span-sink.js';

reportSdkErrors();
const sink = createSpanSink(workerData as TracingConfig);
const port = parentPort!;
const answer = (a: ToParent) => port.postMessage(a);

port.on('message', (m: ToThread) => {
  if (m.op === 'spans') {
    sink.add(m.spans);
    answer({ n: m.n });
    return;
  }
  (m.op === 'flush' ? sink.forceFlush() : sink.shutdown()).then(
    () => answer({ n: m.n }),
    (err: unknown) => answer({ n: m.n, error: err instanceof Error ? err.message : String(err) }),
  );
});
