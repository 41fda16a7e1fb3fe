// A change that needs If-Match, as one compare-and-set statement: UPDATE … WHERE version =
// expected. The check and the change are atomic without a lock held across round trips — of
// concurrent writers holding the same version, PostgreSQL lets exactly one match — and the write
// is one statement instead of BEGIN, SELECT … FOR UPDATE, UPDATE, COMMIT.
//
// The version being changed is taken from what this process last wrote or read of the resource
// (recent-versions) when that is the version named, else from the cache when it holds that version
// or a newer one: either is a committed version, and a version's content never changes, so it is
// as good as the row. With an Idempotency-Key the read happens inside the transaction, after the key is
// claimed, so a retry of a change that already happened replays instead of failing the version check.
import type { PgTable } from 'drizzle-orm/pg-core';
import type { Ctx } from '../../context.js';
import { AppError } from '../../errors.js';
import type { Querier } from '../../platform/db/db.js';
import type { AuditEntry } from '../audit/audit-record.js';
import { recentAt } from './recent-versions.js';
import { cachePut } from './resource-cache.js';
import { updateIfVersion, type VersionedTable } from './versioned-repo.js';
import { writeTx } from './write-tx.js';
import { writeMeta, type ChangeEvent } from './write-meta.js';

export interface ConditionalChange<T extends { id: string; version: number }, R, O = T> {
  table: PgTable & VersionedTable;
  /** The cache type of the resource (see resource-cache). */
  type: string;
  id: string;
  expected: number;
  /** The current resource from the database; undefined when there is none. */
  load(q: Querier): Promise<T | undefined>;
  /**
   * Checks the change against the current resource — throws 404 (also outside the principal's
   * scope), 409, 412 (assertCurrent) or 400 — and returns the column values to set.
   */
  apply(current: T | undefined, env: ChangeEnv): Promise<Record<string, unknown>> | Record<string, unknown>;
  /** The resource as cached and remembered (and as load() and apply() see it). */
  toResource(row: R): T;
  /**
   * What the caller gets, and an Idempotency-Key records, when that differs from the cached form:
   * patients are cached with their sensitive identifiers encrypted and answered with them decrypted.
   */
  present?(resource: T): O;
  /** The audit entry and the event of the change (both written by the same statement). */
  audit(current: T): AuditEntry;
  event(current: T): ChangeEvent;
}

export interface ChangeEnv {
  /** The time of the change (also its updatedAt). */
  now: Date;
  /** Runs other reads the change needs: inside the write's transaction when there is one. */
  read<X>(fn: (q: Querier) => Promise<X>): Promise<X>;
}

export async function changeIfCurrent<T extends { id: string; version: number }, R, O = T>(ctx: Ctx, c: ConditionalChange<T, R, O>): Promise<O> {
  const present = c.present ?? ((resource: T) => resource as unknown as O);
  const now = ctx.now();
  const outside: ChangeEnv = { now, read: (fn) => ctx.db.read(ctx.tenantId, fn) };
  const inside = (q: Querier): ChangeEnv => ({ now, read: (fn) => fn(q) });
  const write = async (q: Querier, current: T | undefined, changes: Record<string, unknown>): Promise<T> => {
    const values = { ...changes, writeMeta: writeMeta(ctx, now, c.event(current!), c.audit(current!)) };
    const row = await updateIfVersion<R>(q, c.table, ctx.tenantId, c.id, c.expected, values, now);
    if (row) return c.toResource(row);
    // Another change or a delete committed after the read: answer as the new state warrants.
    await c.apply(await c.load(q), inside(q));
    throw new AppError('VERSION_CONFLICT');
  };
  if (ctx.idempotency) {
    let changed: T | undefined;
    // The transaction's result is what the key records: the presented form.
    const shown = await writeTx(ctx, async (q) => {
      const current = await c.load(q);
      changed = await write(q, current, await c.apply(current, inside(q)));
      return present(changed);
    });
    await cachePut(ctx, c.type, changed!);
    return shown;
  }
  const current = await cachedOrLoaded(ctx, c);
  const changes = await c.apply(current, outside);
  return present(await cachePut(ctx, c.type, await ctx.db.autocommit(ctx.tenantId, (q) => write(q, current, changes))));
}

async function cachedOrLoaded<T extends { id: string; version: number }>(ctx: Ctx, c: ConditionalChange<T, unknown, unknown>): Promise<T | undefined> {
  const recent = recentAt<T>(ctx.tenantId, c.type, c.id, c.expected);
  if (recent) return recent;
  const cached = await ctx.cache.get<T>(ctx.tenantId, c.type, c.id);
  // A tombstone is final; an entry older than the expected version may be behind the database.
  if (cached.hit && (cached.value === null || cached.value.version >= c.expected)) return cached.value ?? undefined;
  return ctx.db.read(ctx.tenantId, c.load);
}
