// Starts this process's job worker: the handlers of every job (registry.ts) on the queue Deps
// holds, and the schedules of the recurring jobs. `carebase serve` calls it unless
// JOBS_IN_SERVE=false; `carebase worker` always. Stopping is Deps.close(): the queue finishes the
// running jobs before the database closes.
import type { Deps } from '../container.js';
import type { TenantList } from '../features/audit/sealer.js';
import { jobRegistry, type JobName } from './registry.js';

export interface JobWorkerOptions {
  /** Narrows audit sealing to these tenants (tests sharing a database with others). */
  sealTenants?: () => Promise<TenantList>;
}

export function startJobWorker(deps: Deps, o: JobWorkerOptions = {}): void {
  const { jobs: config } = deps.config;
  const registry = jobRegistry({ db: deps.db, auditKey: deps.audit.key, log: deps.log, now: deps.now, ...(o.sealTenants ? { sealTenants: o.sealTenants } : {}) });
  deps.jobs.startWorker(registry, { concurrency: config.concurrency });
  const schedules: [JobName, number][] = [
    ['audit.seal', config.schedules.auditSealMs],
    ['idempotency.sweep', config.schedules.idempotencySweepMs],
  ];
  for (const [name, everyMs] of schedules) {
    // With Redis away the queue stores the schedule when it is back (job-queue.ts, every()).
    deps.jobs.every(name, everyMs).catch((err: unknown) => deps.log.warn({ err, job: name }, 'job schedule not stored yet; stored when Redis is back'));
  }
  deps.log.info({ queue: deps.jobs.kind, concurrency: config.concurrency }, 'job worker started');
}
