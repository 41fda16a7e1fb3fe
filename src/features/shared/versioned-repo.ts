// SQL shared by every versioned table. The tenant filter is explicit in every query even though
// row-level security enforces it too: two walls, either of which stops a cross-tenant read.
import { and, asc, eq, gt, isNull, sql, type SQL } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { Querier } from '../../platform/db/db.js';

export interface VersionedTable {
  tenantId: PgColumn;
  id: PgColumn;
  version: PgColumn;
  updatedAt: PgColumn;
  deletedAt: PgColumn;
}

export function liveById(t: VersionedTable, tenantId: string, id: string): SQL {
  return and(eq(t.tenantId, tenantId), eq(t.id, id), isNull(t.deletedAt))!;
}

/** One live row, optionally locked for the rest of the transaction. */
export async function findLive<R>(q: Querier, t: PgTable & VersionedTable, tenantId: string, id: string, forUpdate = false): Promise<R | undefined> {
  const base = q.select().from(t).where(liveById(t, tenantId, id));
  const rows = forUpdate ? await base.for('update') : await base;
  return rows[0] as R | undefined;
}

/** A page of live rows after the cursor id, limit + 1 of them (see toPage). */
export async function listLive<R>(q: Querier, t: PgTable & VersionedTable, tenantId: string, limit: number, afterId: string | undefined, filters: (SQL | undefined)[] = []): Promise<R[]> {
  const where = and(eq(t.tenantId, tenantId), isNull(t.deletedAt), afterId ? gt(t.id, afterId) : undefined, ...filters);
  return (await q.select().from(t).where(where).orderBy(asc(t.id)).limit(limit + 1)) as R[];
}

/** Applies values and bumps the version; the caller has locked the row and checked its version. */
export async function updateLocked<R>(q: Querier, t: PgTable & VersionedTable, tenantId: string, id: string, values: Record<string, unknown>, now: Date): Promise<R> {
  const rows = await q
    .update(t)
    .set({ ...values, version: sql`${t.version} + 1`, updatedAt: now } as never)
    .where(liveById(t, tenantId, id))
    .returning();
  return rows[0] as R;
}

export async function softDeleteLocked(q: Querier, t: PgTable & VersionedTable, tenantId: string, id: string, now: Date): Promise<void> {
  await q
    .update(t)
    .set({ deletedAt: now, updatedAt: now, version: sql`${t.version} + 1` } as never)
    .where(liveById(t, tenantId, id));
}
