// Signs closed batches of read records (batch-signing.ts) in a thread of their own.
//
// Making a record's id, canonical form and HMAC was most of what recording a cached read cost the
// thread that answers requests (~11 µs of ~16, profiled; bench/RESULTS.md, thirteenth session).
// Done per batch in this thread instead, a read only writes a line of JSON
// (pending-batch.ts), and the answering thread gets back its time; the signing runs on another core
// when one is free.
//
// Nothing is lost when the thread is not there: if it cannot start or exits, every batch it held
// and every later one is signed on the calling thread (logged once). The thread does not keep the
// process alive while it has nothing to do.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../platform/log.js';
import type { AuditKey } from './audit-record.js';
import { signBatch } from './batch-signing.js';
import type { Batch, UnsignedBatch } from './pending-batch.js';

export interface SignJob {
  n: number;
  batch: UnsignedBatch;
}
/** The thread's workerData: the key (a copy of exactly its bytes). */
export interface SignerData {
  keyId: string;
  secret: Uint8Array;
}
export type SignResult = { n: number; batch: Batch; error?: undefined } | { n: number; error: string };

export interface BatchSigner {
  sign(batch: UnsignedBatch): Promise<Batch>;
  /** Stops the thread; a batch still out is signed here, and so is every later one. */
  close(): Promise<void>;
}

interface Waiting {
  batch: UnsignedBatch;
  resolve(b: Batch): void;
  reject(err: Error): void;
}

/** `entry`: the thread's script (tests give one that fails). */
export function createBatchSigner(key: AuditKey, log: Logger, entry = new URL('./batch-signer.worker.mjs', import.meta.url)): BatchSigner {
  let worker: Worker | undefined;
  /** The thread failed or was closed: sign on the calling thread from now on. */
  let signHere = false;
  let next = 0;
  const waiting = new Map<number, Waiting>();

  /** Signs here every batch still out (an answer that arrives later finds it gone). */
  function signWaiting(): void {
    for (const [n, w] of waiting) {
      waiting.delete(n);
      try {
        w.resolve(signBatch(key, w.batch));
      } catch (err) {
        w.reject(err as Error);
      }
    }
  }

  function failed(reason: string): void {
    if (signHere) return;
    signHere = true;
    worker = undefined;
    log.warn({ reason, batches: waiting.size }, 'audit: the signing thread failed; signing batches on the request thread');
    signWaiting();
  }

  function start(): Worker {
    const workerData: SignerData = { keyId: key.id, secret: new Uint8Array(key.secret) };
    const w = new Worker(entry, { workerData });
    w.unref();
    w.on('message', (r: SignResult) => {
      const job = waiting.get(r.n);
      if (!job) return;
      waiting.delete(r.n);
      if (waiting.size === 0) w.unref();
      if (r.error === undefined) job.resolve(r.batch);
      else job.reject(new Error(`audit: signing a batch failed: ${r.error}`));
    });
    w.on('error', (err) => failed(err.message));
    w.on('exit', (code) => {
      if (worker === w) failed(`exited with code ${code}`);
    });
    return w;
  }

  return {
    sign(batch) {
      if (signHere) return Promise.resolve(signBatch(key, batch));
      worker ??= start();
      const n = next++;
      const w = worker;
      return new Promise<Batch>((resolve, reject) => {
        waiting.set(n, { batch, resolve, reject });
        // While a batch is out, the thread keeps the process alive (its answer is awaited).
        if (waiting.size === 1) w.ref();
        w.postMessage({ n, batch } satisfies SignJob);
      });
    },
    async close() {
      // After the auditor's last flush: normally nothing is out.
      signHere = true;
      const w = worker;
      worker = undefined;
      signWaiting();
      await w?.terminate();
    },
  };
}
