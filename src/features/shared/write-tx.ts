// The one way services write: a transaction scoped to the tenant that also claims and records
// the request's idempotency key (when it has one). Later: the audit record and outbox event of
// the change belong here too, so no service can forget them.
import type { Ctx } from '../../context.js';
import type { Querier } from '../../platform/db/db.js';
import { claimKey, recordKey } from '../idempotency/idempotency.js';

export function writeTx<T>(ctx: Ctx, fn: (q: Querier) => Promise<T>): Promise<T> {
  const claim = ctx.idempotency;
  return ctx.db.tx(ctx.tenantId, async (q) => {
    const scope = claim && { tenantId: ctx.tenantId, principal: ctx.principal.sub, now: ctx.now() };
    if (claim && scope) await claimKey(q, scope, claim);
    const result = await fn(q);
    if (claim && scope) await recordKey(q, scope, claim, result);
    return result;
  });
}
