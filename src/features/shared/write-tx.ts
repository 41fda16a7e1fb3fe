// The ways services write. writeTx: a transaction scoped to the tenant that also claims and
// records the request's idempotency key (when it has one). writeOne: the same for a write that is
// a single statement, which needs no BEGIN/COMMIT of its own unless a key must be recorded with it.
// Later: the audit record and outbox event of the change belong here too, so no service can forget them.
import type { Ctx } from '../../context.js';
import type { Querier } from '../../platform/db/db.js';
import { claimKey, recordKey } from '../idempotency/idempotency.js';

export function writeTx<T>(ctx: Ctx, fn: (q: Querier) => Promise<T>): Promise<T> {
  const claim = ctx.idempotency;
  return ctx.db.tx(ctx.tenantId, async (q) => {
    const scope = claim && { tenantId: ctx.tenantId, principal: ctx.principal.sub, now: ctx.now(), keys: ctx.keys };
    if (claim && scope) await claimKey(q, scope, claim);
    const result = await fn(q);
    if (claim && scope) await recordKey(q, scope, claim, result);
    return result;
  });
}

/** fn must issue exactly one data-changing statement (reads before it are fine). */
export function writeOne<T>(ctx: Ctx, fn: (q: Querier) => Promise<T>): Promise<T> {
  return ctx.idempotency ? writeTx(ctx, fn) : ctx.db.autocommit(ctx.tenantId, fn);
}
