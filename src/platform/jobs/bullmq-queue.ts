// Server-mode adapter: BullMQ on Redis. Any instance enqueues; every worker process (`carebase
// serve` by default, `carebase worker`) takes jobs from the one queue of the deployment, named by
// its key prefix (index.ts: derived from the database, so deployments sharing a Redis stay apart).
//
// Connections: the producer's (enqueue, schedules, counts, ping) fails fast while Redis is away
// (no offline queue, one try, command timeout) so a request that enqueues gets an error instead of
// hanging; the worker's is the blocking kind BullMQ requires (maxRetriesPerRequest: null, offline
// queue on: it waits for Redis), and BullMQ adds a duplicate of it for its blocking fetch. Both
// reconnect for ever. An outage is logged (throttled) and counted, never thrown at the process;
// the worker resumes when Redis is back, and schedules are stored again on every reconnect (a
// Redis restarted without persistence forgets them). The BullMQ Worker is created only once its
// connection is ready: a BullMQ Worker that never reached Redis cannot be closed.
import { once } from 'node:events';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { withTimeout } from '../db/db.js';
import { COMPLETED_RETENTION, type EnqueueOptions, type JobCounts, type JobPayload, type JobQueue, type JobQueueOptions, type JobRegistry } from './job-queue.js';
import { envelopeFor, PermanentJobFailure, runAttempt, type JobEnvelope } from './run-job.js';

export interface BullmqQueueOptions extends JobQueueOptions {
  readonly url: string;
  /** Redis key prefix: one queue per deployment. */
  readonly prefix: string;
  /** Longest an enqueue, a schedule or a count may take (Redis unreachable or hung). Default 5000 ms. */
  readonly opTimeoutMs?: number;
  /** At most one line per this interval about Redis errors (they come in bursts). Default 60 s. */
  readonly logIntervalMs?: number;
  /**
   * At close, how long BullMQ may take, once the running jobs have finished, to record their
   * outcome. Only an unreachable Redis makes it wait that long; then the process goes without
   * recording, and those jobs are found stalled and run again by another worker (handlers are
   * idempotent). Default 3000 ms.
   */
  readonly closeGraceMs?: number;
}

/** The one queue name; the prefix tells deployments apart. */
export const QUEUE_NAME = 'jobs';

const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 10), 2000);

export function createBullmqQueue(o: BullmqQueueOptions): JobQueue {
  const opTimeout = o.opTimeoutMs ?? 5000;
  const logInterval = o.logIntervalMs ?? 60_000;
  const abort = new AbortController();
  const schedules = new Map<string, { everyMs: number; envelope: JobEnvelope; attempts: number | undefined }>();
  let errors = 0;
  let suppressed = 0;
  let lastLogAt = -Infinity;
  const inFlight = new Set<Promise<void>>();
  let worker: Worker | undefined;
  let workerConnection: Redis | undefined;
  let closed = false;

  /** Connection errors are counted once (from our clients); BullMQ's own 'error' events are only logged. */
  const onError = (source: string, count = true) => (err: Error) => {
    if (count) errors += 1;
    if (closed) return;
    if (Date.now() - lastLogAt < logInterval) {
      suppressed += 1;
      return;
    }
    o.log.warn({ err, source, suppressed }, 'job queue error (BullMQ retries on its own; while Redis is away, jobs wait)');
    lastLogAt = Date.now();
    suppressed = 0;
  };

  const producer = new Redis(o.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: opTimeout,
    retryStrategy,
    connectionName: 'carebase-jobs',
    disableClientInfo: true,
  });
  const defaults = {
    attempts: o.attempts,
    backoff: { type: 'exponential', delay: o.backoffMs },
    removeOnComplete: { age: Math.ceil(COMPLETED_RETENTION.maxAgeMs / 1000), count: COMPLETED_RETENTION.maxCount },
    removeOnFail: { age: Math.ceil(o.failedRetention.maxAgeMs / 1000), count: o.failedRetention.maxCount },
  };
  let producerFailed = false;
  const countProducerError = onError('queue');
  producer.on('error', (err: Error) => {
    producerFailed = true;
    countProducerError(err);
  });
  const queue = new Queue(QUEUE_NAME, { connection: producer, prefix: o.prefix, defaultJobOptions: defaults });
  queue.on('error', onError('queue', false));

  /**
   * Fails at once while Redis is away (BullMQ would wait for it), so enqueueing callers and scrapes
   * get an answer; only the first connection, still being made at start, is waited for.
   */
  let everReady = false;
  producer.once('ready', () => (everReady = true));
  const connected = async () => {
    if (closed) throw new Error('the job queue is closed');
    if (producer.status === 'ready') return;
    if (everReady || producerFailed) throw new Error('Redis (job queue) is not connected');
    // Rejects at the first connection error.
    await withTimeout(once(producer, 'ready'), opTimeout, 'connecting to Redis (job queue)');
  };
  const store = (name: string) => {
    const s = schedules.get(name)!;
    return withTimeout(
      queue.upsertJobScheduler(name, { every: s.everyMs }, { name, data: s.envelope, opts: { ...defaults, ...(s.attempts ? { attempts: s.attempts } : {}) } }),
      opTimeout,
      'storing a job schedule',
    );
  };
  // Every (re)connection stores the schedules again: idempotent, and Redis may have lost them.
  producer.on('ready', () => {
    for (const name of schedules.keys()) store(name).catch(onError('schedule'));
  });

  async function runJob(job: Job, registry: JobRegistry): Promise<void> {
    const attempt = {
      name: job.name,
      id: String(job.id),
      attempt: job.attemptsMade + 1,
      maxAttempts: job.opts.attempts ?? 1,
      data: job.data,
      dueAt: job.timestamp + (job.opts.delay ?? 0),
    };
    const run = runAttempt(registry, attempt, { log: o.log, backoffMs: o.backoffMs, signal: abort.signal, system: 'bullmq', observe: o.observe });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    inFlight.add(settled);
    void settled.finally(() => inFlight.delete(settled));
    try {
      await run;
    } catch (err) {
      // BullMQ's way of saying "do not retry".
      if (err instanceof PermanentJobFailure) throw new UnrecoverableError(err.message);
      throw err;
    }
  }

  return {
    kind: 'bullmq',
    async enqueue(name: string, payload: JobPayload, opts: EnqueueOptions = {}) {
      const { envelope, attempts } = envelopeFor(o.catalog, name, payload, opts);
      await connected();
      const job = await withTimeout(
        queue.add(name, envelope, { ...(opts.jobId ? { jobId: opts.jobId } : {}), ...(opts.delayMs ? { delay: opts.delayMs } : {}), ...(attempts ? { attempts } : {}) }),
        opTimeout,
        'enqueueing a job',
      );
      return String(job.id);
    },
    async every(name: string, everyMs: number, payload: JobPayload = {}) {
      if (!(Number.isInteger(everyMs) && everyMs > 0)) throw new Error('everyMs must be a whole number of milliseconds > 0');
      // A schedule runs on its own, outside any request: no request ID, no trace context.
      const { envelope, attempts } = envelopeFor(o.catalog, name, payload);
      schedules.set(name, { everyMs, envelope, attempts });
      await connected();
      await store(name);
    },
    startWorker(registry: JobRegistry, opts: { concurrency: number }) {
      if (workerConnection) throw new Error('the worker is already started');
      if (closed) throw new Error('the job queue is closed');
      const connection = new Redis(o.url, { maxRetriesPerRequest: null, connectTimeout: 2000, retryStrategy, connectionName: 'carebase-jobs-worker', disableClientInfo: true });
      workerConnection = connection;
      connection.on('error', onError('worker'));
      connection.once('ready', () => {
        if (closed) return;
        worker = new Worker(QUEUE_NAME, (job: Job) => runJob(job, registry), {
          connection,
          prefix: o.prefix,
          concurrency: opts.concurrency,
          // Trimming happens as jobs finish; the job's own options (defaults above) say how much to keep.
          removeOnComplete: defaults.removeOnComplete,
          removeOnFail: defaults.removeOnFail,
        });
        worker.on('error', onError('worker', false));
      });
    },
    async counts(): Promise<JobCounts> {
      await connected();
      const c = await withTimeout(queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed'), opTimeout, 'counting jobs');
      return { waiting: c.waiting ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, failed: c.failed ?? 0, completed: c.completed ?? 0 };
    },
    async ping(timeoutMs: number) {
      await withTimeout(producer.ping(), timeoutMs, 'Redis (job queue) ping');
    },
    errors: () => errors,
    async close() {
      if (closed) return;
      closed = true;
      abort.abort();
      // The worker first: it stops fetching, the running jobs finish and their outcome is recorded.
      if (worker) {
        const closing = worker.close().then(
          () => true,
          () => true,
        );
        await Promise.all([...inFlight]);
        let timer: NodeJS.Timeout | undefined;
        const recorded = await Promise.race([closing, new Promise<false>((r) => (timer = setTimeout(() => r(false), o.closeGraceMs ?? 3000)))]);
        clearTimeout(timer);
        if (!recorded) o.log.warn('job queue: Redis unreachable at shutdown; outcomes of the last jobs not recorded (they run again once found stalled)');
      }
      await queue.close();
      for (const c of [workerConnection, producer]) {
        if (!c) continue;
        await Promise.race([c.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 500).unref())]);
        c.disconnect();
      }
    },
  };
}
