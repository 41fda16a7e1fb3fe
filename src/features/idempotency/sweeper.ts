import type { Db } from '../../platform/db/db.js';
import { sweepExpiredKeys } from './idempotency.js';

/**
 * Deletes the expired idempotency records of every tenant; returns how many. Run by the
 * idempotency.sweep job (src/jobs) every IDEMPOTENCY_SWEEP_INTERVAL_MS; any number of processes may
 * run it at once (deletes are idempotent).
 */
export function sweepExpiredIdempotencyKeys(db: Db): Promise<number> {
  // No tenant: the expired_cleanup policy alone lets these rows be deleted.
  return db.tx('', (q) => sweepExpiredKeys(q));
}
