// The job queue's Prometheus series. Counters and histograms count this instance's runs (sum them
// across instances); the gauges read the queue itself (BullMQ: Redis, the same numbers from every
// instance — take max, not sum), cached briefly so that scrapes from several Prometheus servers do
// not each cost Redis round trips. Label values are job names (a fixed set), never job ids.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Metrics } from '../metrics/metrics.js';
import type { JobCounts, JobQueue, JobRun } from './job-queue.js';

export interface JobMetrics {
  observe(run: JobRun): void;
  /** Registers the gauges read from the queue when Prometheus scrapes. */
  watch(queue: JobQueue): void;
}

export function createJobMetrics(m: Metrics, countsCacheMs = 2000): JobMetrics {
  const registers = [m.registry];
  const completed = new Counter({ name: 'jobs_completed_total', help: 'Jobs completed by this instance, by job name', labelNames: ['name'], registers });
  const failed = new Counter({ name: 'jobs_failed_total', help: 'Jobs that failed for good in this instance (attempts exhausted, or payload refused), by job name', labelNames: ['name'], registers });
  const duration = new Histogram({
    name: 'job_duration_seconds',
    help: 'Job attempts by job name and outcome (completed, retrying, failed)',
    labelNames: ['name', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  });
  const wait = new Histogram({
    name: 'job_wait_seconds',
    help: 'Time from when a job was due until a worker started it (first attempts), by job name',
    labelNames: ['name'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
    registers,
  });
  return {
    observe(run) {
      duration.observe({ name: run.name, outcome: run.outcome }, run.durationMs / 1000);
      if (run.outcome === 'completed') completed.inc({ name: run.name });
      if (run.outcome === 'failed') failed.inc({ name: run.name });
      if (run.waitMs !== undefined) wait.observe({ name: run.name }, run.waitMs / 1000);
    },
    watch(queue) {
      let last: JobCounts | undefined;
      let readAt = -Infinity;
      let reading: Promise<JobCounts | undefined> | undefined;
      // One read per cache period for all four gauges; when the queue does not answer (Redis
      // down) the last values stay (the health check and jobs_queue_errors_total say why).
      const counts = (): Promise<JobCounts | undefined> => {
        if (Date.now() - readAt < countsCacheMs) return Promise.resolve(last);
        reading ??= queue
          .counts()
          .then(
            (c) => {
              last = c;
              readAt = Date.now();
              return c;
            },
            () => last,
          )
          .finally(() => (reading = undefined));
        return reading;
      };
      const gauge = (name: string, help: string, key: keyof JobCounts) =>
        new Gauge({
          name,
          help,
          registers,
          async collect() {
            const c = await counts();
            if (c) this.set(c[key]);
          },
        });
      gauge('jobs_waiting', 'Jobs ready to run, waiting for a worker', 'waiting');
      gauge('jobs_active', 'Jobs running now', 'active');
      gauge('jobs_delayed', 'Jobs waiting for their time (delayed, or a retry after backoff)', 'delayed');
      gauge('jobs_failed', 'Failed jobs kept for inspection (dead letters; JOBS_FAILED_RETENTION_DAYS)', 'failed');
      m.cumulative('jobs_queue_errors_total', 'Job queue connection errors (Redis unreachable); jobs wait meanwhile', () => queue.errors());
    },
  };
}
