// Embedded-mode adapter: jobs run in the process that enqueues them, with BullMQ's semantics
// (retries with exponential backoff, concurrency, schedules, deduplication by id, a bounded list of
// failed jobs) so code and tests behave alike in both modes. Nothing survives the process: what is
// waiting when it stops is lost, and derived again from PostgreSQL by the next scheduled run.
import { COMPLETED_RETENTION, backoffDelay, type EnqueueOptions, type JobCounts, type JobPayload, type JobQueue, type JobQueueOptions, type JobRegistry } from './job-queue.js';
import { envelopeFor, PermanentJobFailure, runAttempt, type JobEnvelope } from './run-job.js';

interface MemJob {
  id: string;
  name: string;
  envelope: JobEnvelope;
  maxAttempts: number;
  attemptsMade: number;
  dueAt: number;
  /** The schedule that created it (at most one waiting job per schedule). */
  schedule?: string;
}

interface Finished {
  id: string;
  at: number;
}

export function createMemoryQueue(o: JobQueueOptions): JobQueue {
  const byId = new Map<string, MemJob | Finished>();
  const waiting: MemJob[] = [];
  const delayed = new Map<MemJob, NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  const completed: Finished[] = [];
  const failed: Finished[] = [];
  const schedules = new Map<string, { timer: NodeJS.Timeout; pending?: MemJob }>();
  const abort = new AbortController();
  let seq = 0;
  let registry: JobRegistry | undefined;
  let concurrency = 1;
  let keepAlive: NodeJS.Timeout | undefined;
  let closed = false;

  /** Drops finished jobs past their retention (oldest first), and their ids with them. */
  function trim(list: Finished[], maxAgeMs: number, maxCount: number): void {
    const cutoff = Date.now() - maxAgeMs;
    while (list.length > 0 && (list.length > maxCount || list[0]!.at < cutoff)) byId.delete(list.shift()!.id);
  }

  function add(job: MemJob): void {
    const delay = job.dueAt - Date.now();
    if (delay > 0) {
      const timer = setTimeout(() => {
        delayed.delete(job);
        waiting.push(job);
        pump();
      }, delay);
      timer.unref();
      delayed.set(job, timer);
    } else {
      waiting.push(job);
      // Not synchronously: the caller (a request) finishes its own work first, as with BullMQ.
      setImmediate(pump);
    }
  }

  function pump(): void {
    while (registry && !closed && running.size < concurrency && waiting.length > 0) start(waiting.shift()!, registry);
  }

  function start(job: MemJob, reg: JobRegistry): void {
    job.attemptsMade += 1;
    if (job.schedule && schedules.get(job.schedule)?.pending === job) schedules.get(job.schedule)!.pending = undefined;
    const attempt = { name: job.name, id: job.id, attempt: job.attemptsMade, maxAttempts: job.maxAttempts, data: job.envelope, dueAt: job.dueAt };
    const p: Promise<void> = runAttempt(reg, attempt, { log: o.log, backoffMs: o.backoffMs, signal: abort.signal, system: 'carebase', observe: o.observe })
      .then(
        () => finish(job, completed, COMPLETED_RETENTION.maxAgeMs, COMPLETED_RETENTION.maxCount),
        (err: unknown) => {
          if (err instanceof PermanentJobFailure || job.attemptsMade >= job.maxAttempts || closed) {
            finish(job, failed, o.failedRetention.maxAgeMs, o.failedRetention.maxCount);
          } else {
            job.dueAt = Date.now() + backoffDelay(o.backoffMs, job.attemptsMade);
            add(job);
          }
        },
      )
      .finally(() => {
        running.delete(p);
        pump();
      });
    running.add(p);
  }

  function finish(job: MemJob, list: Finished[], maxAgeMs: number, maxCount: number): void {
    const f = { id: job.id, at: Date.now() };
    byId.set(job.id, f);
    list.push(f);
    trim(list, maxAgeMs, maxCount);
  }

  function enqueueNow(name: string, envelope: JobEnvelope, attempts: number | undefined, opts: EnqueueOptions, schedule?: string): MemJob | undefined {
    if (closed) throw new Error('the job queue is closed');
    trim(completed, COMPLETED_RETENTION.maxAgeMs, COMPLETED_RETENTION.maxCount);
    trim(failed, o.failedRetention.maxAgeMs, o.failedRetention.maxCount);
    if (opts.jobId !== undefined && byId.has(opts.jobId)) return undefined;
    const id = opts.jobId ?? String(++seq);
    const job: MemJob = { id, name, envelope, maxAttempts: attempts ?? o.attempts, attemptsMade: 0, dueAt: Date.now() + (opts.delayMs ?? 0), ...(schedule ? { schedule } : {}) };
    byId.set(id, job);
    add(job);
    return job;
  }

  return {
    kind: 'memory',
    async enqueue(name: string, payload: JobPayload, opts: EnqueueOptions = {}) {
      const { envelope, attempts } = envelopeFor(o.catalog, name, payload, opts);
      return enqueueNow(name, envelope, attempts, opts)?.id ?? opts.jobId!;
    },
    async every(name: string, everyMs: number, payload: JobPayload = {}) {
      if (!(Number.isInteger(everyMs) && everyMs > 0)) throw new Error('everyMs must be a whole number of milliseconds > 0');
      // A schedule runs on its own, outside any request: no request ID, no trace context.
      const { envelope, attempts } = envelopeFor(o.catalog, name, payload);
      clearInterval(schedules.get(name)?.timer);
      const tick = () => {
        const s = schedules.get(name);
        // One waiting run per schedule: a stopped or busy worker does not pile them up.
        if (!s || s.pending || closed) return;
        s.pending = enqueueNow(name, structuredClone(envelope), attempts, {}, name);
      };
      const timer = setInterval(tick, everyMs);
      timer.unref();
      schedules.set(name, { timer });
      tick();
    },
    startWorker(reg: JobRegistry, opts: { concurrency: number }) {
      if (registry) throw new Error('the worker is already started');
      if (closed) throw new Error('the job queue is closed');
      registry = reg;
      concurrency = opts.concurrency;
      // A running worker keeps the process alive (like BullMQ's connections), until close().
      keepAlive = setInterval(() => undefined, 1 << 30);
      pump();
    },
    async counts(): Promise<JobCounts> {
      trim(completed, COMPLETED_RETENTION.maxAgeMs, COMPLETED_RETENTION.maxCount);
      trim(failed, o.failedRetention.maxAgeMs, o.failedRetention.maxCount);
      return { waiting: waiting.length, active: running.size, delayed: delayed.size, failed: failed.length, completed: completed.length };
    },
    async ping() {
      if (closed) throw new Error('the job queue is closed');
    },
    errors: () => 0,
    async close() {
      if (closed) return;
      closed = true;
      abort.abort();
      for (const s of schedules.values()) clearInterval(s.timer);
      for (const t of delayed.values()) clearTimeout(t);
      delayed.clear();
      // Running jobs finish; a failure now is final (no one is left to retry it).
      while (running.size > 0) await Promise.allSettled([...running]);
      clearInterval(keepAlive);
    },
  };
}
