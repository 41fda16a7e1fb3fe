import type { Db } from '../../platform/db/db.js';
import type { Logger } from '../../platform/log.js';
import { sweepExpiredKeys } from './idempotency.js';

/** Deletes expired idempotency records now and then; every instance may run it (deletes are idempotent). */
export function startKeySweeper(db: Db, log: Logger, intervalMs = 10 * 60_000): () => void {
  const sweep = () =>
    // No tenant: the expired_cleanup policy alone lets these rows be deleted.
    db.tx('', (q) => sweepExpiredKeys(q)).then(
      (n) => n > 0 && log.info({ deleted: n }, 'expired idempotency keys removed'),
      (err: unknown) => log.warn({ err }, 'idempotency key sweep failed'),
    );
  void sweep();
  const timer = setInterval(sweep, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
