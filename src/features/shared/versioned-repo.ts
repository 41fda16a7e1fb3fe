// SQL shared by every versioned table. The tenant filter is explicit in every query even though
// row-level security enforces it too: two walls, either of which stops a cross-tenant read.
import { and, asc, eq, getTableName, gt, isNull, sql, type SQL } from 'drizzle-orm';
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

// Reads by id are the hottest query: prepared once per handle (on PostgreSQL a pooled
// connection keeps its handle, so the statement is parsed and planned once per connection).
const prepared = new WeakMap<Querier, Map<PgTable, { execute(p: { tenantId: string; id: string }): Promise<unknown[]> }>>();

function preparedFindLive(q: Querier, t: PgTable & VersionedTable) {
  let byTable = prepared.get(q);
  if (!byTable) prepared.set(q, (byTable = new Map()));
  let stmt = byTable.get(t);
  if (!stmt) {
    const where = and(eq(t.tenantId, sql.placeholder('tenantId')), eq(t.id, sql.placeholder('id')), isNull(t.deletedAt));
    stmt = q.select().from(t).where(where).prepare(`carebase_find_live_${getTableName(t)}`);
    byTable.set(t, stmt);
  }
  return stmt;
}

/** One live row, optionally locked for the rest of the transaction. */
export async function findLive<R>(q: Querier, t: PgTable & VersionedTable, tenantId: string, id: string, forUpdate = false): Promise<R | undefined> {
  const rows = forUpdate
    ? await q.select().from(t).where(liveById(t, tenantId, id)).for('update')
    : await preparedFindLive(q, t).execute({ tenantId, id });
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

/** Marks the row deleted, bumping its version; returns the version it was deleted at. */
export async function softDeleteLocked(q: Querier, t: PgTable & VersionedTable, tenantId: string, id: string, now: Date): Promise<number> {
  const [row] = await q
    .update(t)
    .set({ deletedAt: now, updatedAt: now, version: sql`${t.version} + 1` } as never)
    .where(liveById(t, tenantId, id))
    .returning({ version: t.version });
  return (row as { version: number }).version;
}
