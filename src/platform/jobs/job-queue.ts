// The job queue port: background work (audit sealing, key sweeps; later webhook deliveries, EHR
// syncs, notifications) enqueued by one process and run by a worker, with retries, exponential
// backoff and a bounded list of failed jobs (dead letters). Two adapters pass one contract suite
// (job-queue.contract.test.ts): BullMQ on Redis (server mode: any instance enqueues, every worker
// process takes jobs) and an in-process runner (embedded mode: the process that enqueues runs).
//
// A queue is not a source of truth. Durable intent lives in PostgreSQL (outbox, sync runs,
// deliveries, the audit records still unsealed), so a job lost with a process (in-process mode)
// or a Redis without persistence is derived again from there by the next scheduled run.
//
// Payloads hold ids and settings only, never PHI: they sit in Redis, in failed-job listings and
// in operators' tools. Job log lines carry the job's name, id, attempt, duration and outcome,
// never the payload.
import type { TSchema } from 'typebox';
import type { Logger } from '../log.js';
import type { TraceContext } from '../tracing/tracing.js';

/** A job's input: JSON, ids and settings only (never PHI). */
export type JobPayload = Record<string, unknown>;

/** What the queue needs to know of a job to accept it: its payload schema and retry budget. */
export interface JobType {
  /** TypeBox schema of the payload, checked when the job is enqueued and again when it runs. */
  readonly payload: TSchema;
  /** Runs at most this often (first run included); default: the queue's (JOBS_ATTEMPTS). */
  readonly attempts?: number;
}

/** Every job this code can enqueue, by name. */
export type JobCatalog = Readonly<Record<string, JobType>>;

export interface JobContext {
  readonly name: string;
  readonly id: string;
  /** 1 on the first run, 2 on the first retry, … */
  readonly attempt: number;
  /** The X-Request-ID of the request that enqueued the job, if one did. */
  readonly requestId?: string;
  /** Lines written here carry the job's name, id, attempt and request ID. */
  readonly log: Logger;
  /** Aborted when the worker is closing: a long handler stops at its next safe point. */
  readonly signal: AbortSignal;
  /** The attempt's span when it is traced: the handler's database work goes under it (tracedDb). */
  readonly trace?: TraceContext;
}

export interface JobDefinition extends JobType {
  /** Thin, like a route: calls feature functions. A throw is a failed attempt (retried while attempts remain). */
  handle(payload: never, ctx: JobContext): Promise<void>;
}

/** The jobs a worker runs, by name (src/jobs/registry.ts). */
export type JobRegistry = Readonly<Record<string, JobDefinition>>;

export interface EnqueueOptions {
  /**
   * Deduplication: while a job with this id is known to the queue (waiting, delayed, running, or
   * kept as completed or failed), another with the same id is not added. Letters, digits, `.`,
   * `_`, `-`; starts with a letter.
   */
  jobId?: string;
  /** Run no earlier than this many milliseconds from now. */
  delayMs?: number;
  /** The request that causes the job (CONTRACT: X-Request-ID is passed to the jobs it causes). */
  requestId?: string;
  /** The traced work that causes the job (Ctx.trace): the job's span continues its trace. */
  trace?: TraceContext;
}

export interface JobCounts {
  waiting: number;
  active: number;
  delayed: number;
  /** Failed for good (attempts exhausted or payload refused), kept for inspection: the dead letters. */
  failed: number;
  /** Completed and still kept (recent ones only). */
  completed: number;
}

/** One finished attempt, as metrics see it. */
export interface JobRun {
  readonly name: string;
  /** completed; retrying: failed with attempts left; failed: failed for good. */
  readonly outcome: 'completed' | 'retrying' | 'failed';
  readonly durationMs: number;
  /** First attempts only: how long the job waited after it was due. */
  readonly waitMs?: number;
}

export interface JobQueue {
  readonly kind: 'bullmq' | 'memory';
  /** Validates the payload against the catalog and adds the job; resolves with its id. */
  enqueue(name: string, payload: JobPayload, opts?: EnqueueOptions): Promise<string>;
  /**
   * Runs `name` every `everyMs` (the first run at once). One schedule per name across every
   * queue on the same store: registering it again (another instance, a restart) replaces it and
   * never doubles the runs. Resolves once stored; the queue keeps it and stores it again whenever
   * its store comes back (BullMQ: Redis reconnected), so a failure here is not final.
   */
  every(name: string, everyMs: number, payload?: JobPayload): Promise<void>;
  /** Starts taking jobs (once per queue). */
  startWorker(registry: JobRegistry, opts: { concurrency: number }): void;
  counts(): Promise<JobCounts>;
  /** Resolves when the queue's store answers within timeoutMs. */
  ping(timeoutMs: number): Promise<void>;
  /** Connection errors seen so far (Redis unreachable); 0 for the in-process runner. */
  errors(): number;
  /** Stops taking jobs and waits for the running ones to finish (their signal is aborted first). */
  close(): Promise<void>;
}

export interface JobQueueOptions {
  readonly catalog: JobCatalog;
  readonly log: Logger;
  /** Default runs per job (first run included). */
  readonly attempts: number;
  /** Exponential backoff: the n-th retry waits backoffMs · 2^(n-1). */
  readonly backoffMs: number;
  /** Failed jobs are kept this long, and at most this many. */
  readonly failedRetention: { readonly maxAgeMs: number; readonly maxCount: number };
  /** Called after every attempt (metrics). */
  readonly observe?: (run: JobRun) => void;
}

/** Completed jobs are kept briefly (deduplication by id, recent history), then trimmed. */
export const COMPLETED_RETENTION = { maxAgeMs: 3_600_000, maxCount: 1000 } as const;

/** The delay before retry n (n = the attempt that just failed). Same formula as BullMQ's exponential backoff. */
export const backoffDelay = (backoffMs: number, failedAttempt: number) => Math.round(2 ** (failedAttempt - 1) * backoffMs);
