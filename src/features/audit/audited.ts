// The audit choke point of the service layer. Every service function that touches patient data
// runs inside one of these, whichever transport called it, so a read, a write, a denial or a
// failure is recorded the same way from REST, WebSocket or a job.
//
// - auditedRead: records the read after it succeeded (one record per patient-data resource
//   returned), or the failure.
// - auditedWrite: records only failures; a successful write's record is part of the write's own
//   statement (shared/write-meta.ts, migration 0008), so the change and its record commit together.
import type { Ctx } from '../../context.js';
import { AppError, OutOfScope } from '../../errors.js';
import { IdempotentReplay } from '../idempotency/idempotency.js';
import type { AuditEntry, AuditOutcome } from './audit-record.js';

function failureOf(err: unknown): { outcome: AuditOutcome; detail: Record<string, unknown> } {
  if (err instanceof OutOfScope) return { outcome: 'denied', detail: { code: 'NOT_FOUND', reason: 'out of scope' } };
  if (err instanceof AppError) return { outcome: err.code === 'FORBIDDEN' ? 'denied' : 'error', detail: { code: err.code } };
  return { outcome: 'error', detail: { code: 'INTERNAL' } };
}

async function recordFailure(ctx: Ctx, target: AuditEntry, err: unknown): Promise<void> {
  // A replayed idempotent write hands out its stored answer again: a success, not a failure.
  const entry = err instanceof IdempotentReplay ? { ...target, detail: { replayed: true } } : { ...target, ...failureOf(err) };
  await ctx.audit.record(ctx, entry, ctx.now());
}

export async function auditedRead<T>(ctx: Ctx, target: AuditEntry, fn: () => Promise<T>, entriesOf: (result: T) => AuditEntry[] = () => [target]): Promise<T> {
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    await recordFailure(ctx, target, err);
    throw err;
  }
  const at = ctx.now();
  for (const e of entriesOf(result)) await ctx.audit.record(ctx, e, at);
  return result;
}

export async function auditedWrite<T>(ctx: Ctx, target: AuditEntry, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    await recordFailure(ctx, target, err);
    throw err;
  }
}
