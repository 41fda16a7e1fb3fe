// Every job Carebase runs: name → payload schema (checked when enqueued and when run; ids and
// settings only, never PHI) + handler. Handlers are thin, like routes: they call feature
// functions and log what happened in ids and counts.
import { Type, type Static, type TSchema } from 'typebox';
import type { AuditKey } from '../features/audit/audit-record.js';
import { cachedTenantList, sealPendingRecords, type TenantList } from '../features/audit/sealer.js';
import { sweepExpiredIdempotencyKeys } from '../features/idempotency/sweeper.js';
import type { Db } from '../platform/db/db.js';
import type { JobContext, JobDefinition, JobRegistry } from '../platform/jobs/job-queue.js';
import type { Logger } from '../platform/log.js';
import { tracedDb } from '../platform/tracing/traced-db.js';

/** What handlers get to work with (from Deps). */
export interface JobDeps {
  readonly db: Db;
  readonly auditKey: AuditKey;
  readonly log: Logger;
  readonly now: () => Date;
  /** The tenants the sealer covers; default every tenant (re-listed every minute). Tests narrow it. */
  readonly sealTenants?: () => Promise<TenantList>;
}

interface Job<S extends TSchema> {
  readonly payload: S;
  readonly attempts?: number;
  /** Per worker: returns the handler, which may keep state across runs (caches). */
  readonly bind: (deps: JobDeps) => (payload: Static<S>, ctx: JobContext) => Promise<void>;
}
const job = <S extends TSchema>(j: Job<S>) => j;

/** Nothing to say: the job reads its work from the database. */
const NoPayload = Type.Object({}, { additionalProperties: false });

export const JOBS = {
  // Seals every tenant's audit records of finished transactions (src/features/audit/sealer.ts).
  // Scheduled: a failed run is not retried, the next one (seconds later) is the retry; it still
  // counts as failed (jobs_failed_total) so a sealing that keeps failing is alerted on.
  'audit.seal': job({
    payload: NoPayload,
    attempts: 1,
    bind: (deps) => {
      const tenants = deps.sealTenants ?? cachedTenantList(deps.db, deps.log);
      return async (_payload, ctx) => {
        const r = await sealPendingRecords({ db: tracedDb(deps.db, ctx.trace), key: deps.auditKey, log: ctx.log, now: deps.now }, { tenants, signal: ctx.signal });
        if (r.sealed > 0 || r.failed > 0) ctx.log.info(r, 'audit sealing pass');
        if (r.failed > 0) throw new Error(`audit sealing failed for ${r.failed} of ${r.tenants} tenants`);
      };
    },
  }),
  // Deletes expired idempotency records of every tenant (src/features/idempotency/sweeper.ts).
  'idempotency.sweep': job({
    payload: NoPayload,
    attempts: 1,
    bind: (deps) => async (_payload, ctx) => {
      const deleted = await sweepExpiredIdempotencyKeys(tracedDb(deps.db, ctx.trace));
      if (deleted > 0) ctx.log.info({ deleted }, 'expired idempotency keys removed');
    },
  }),
} as const;

export type JobName = keyof typeof JOBS;

/** The handlers of every job, bound to this worker's dependencies. */
export function jobRegistry(deps: JobDeps): JobRegistry {
  const registry: Record<string, JobDefinition> = {};
  for (const [name, j] of Object.entries(JOBS) as [JobName, Job<TSchema>][]) {
    registry[name] = { payload: j.payload, ...(j.attempts ? { attempts: j.attempts } : {}), handle: j.bind(deps) as JobDefinition['handle'] };
  }
  return registry;
}
