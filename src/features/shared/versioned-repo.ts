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

// The hot statements (read by id, insert, compare-and-set update) are prepared once per handle:
// on PostgreSQL a pooled connection keeps its handle, so a statement is built by drizzle, parsed
// and planned once per connection instead of on every request (together ~25 % of a write's CPU).
// A statement's name stands for its SQL text (one name per shape, the same on every connection).
interface Prepared {
  execute(params: Record<string, unknown>): Promise<unknown>;
}
const preparedByHandle = new WeakMap<Querier, Map<string, Prepared>>();
const statementNames = new Map<string, string>();

function prepared(q: Querier, shape: string, build: (name: string) => Prepared): Prepared {
  let byShape = preparedByHandle.get(q);
  if (!byShape) preparedByHandle.set(q, (byShape = new Map()));
  let stmt = byShape.get(shape);
  if (!stmt) {
    let name = statementNames.get(shape);
    if (!name) statementNames.set(shape, (name = `carebase_${statementNames.size + 1}`));
    byShape.set(shape, (stmt = build(name)));
  }
  return stmt;
}

const placeholders = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, sql.placeholder(k)]));

function preparedFindLive(q: Querier, t: PgTable & VersionedTable) {
  return prepared(q, `find:${getTableName(t)}`, (name) => {
    const where = and(eq(t.tenantId, sql.placeholder('tenantId')), eq(t.id, sql.placeholder('id')), isNull(t.deletedAt));
    return q.select().from(t).where(where).prepare(name);
  });
}

/** Inserts one row (every row of a table must have the same keys: the statement is prepared per key set). */
export async function insertRow(q: Querier, t: PgTable, row: Record<string, unknown>): Promise<void> {
  const keys = Object.keys(row);
  await prepared(q, `insert:${getTableName(t)}:${keys.join(',')}`, (name) => q.insert(t).values(placeholders(keys) as never).prepare(name)).execute(row);
}

/** One live row, optionally locked for the rest of the transaction. */
export async function findLive<R>(q: Querier, t: PgTable & VersionedTable, tenantId: string, id: string, forUpdate = false): Promise<R | undefined> {
  const rows = forUpdate
    ? await q.select().from(t).where(liveById(t, tenantId, id)).for('update')
    : ((await preparedFindLive(q, t).execute({ tenantId, id })) as unknown[]);
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

/** Compare-and-set: applies values and bumps the version only if the row is live at `expected`; the new version, or undefined if not. */
export async function updateIfVersion(q: Querier, t: PgTable & VersionedTable, tenantId: string, id: string, expected: number, values: Record<string, unknown>, now: Date): Promise<number | undefined> {
  const keys = Object.keys(values);
  const stmt = prepared(q, `update:${getTableName(t)}:${keys.join(',')}`, (name) =>
    q
      .update(t)
      .set({ ...placeholders(keys), version: sql`${t.version} + 1`, updatedAt: sql.placeholder('__updatedAt') } as never)
      .where(and(eq(t.tenantId, sql.placeholder('__tenantId')), eq(t.id, sql.placeholder('__id')), eq(t.version, sql.placeholder('__expected')), isNull(t.deletedAt)))
      .returning({ version: t.version })
      .prepare(name),
  );
  const rows = (await stmt.execute({ ...values, __updatedAt: now, __tenantId: tenantId, __id: id, __expected: expected })) as { version: number }[];
  return rows[0]?.version;
}

/** Marks the row deleted, bumping its version; returns the version it was deleted at. */
export async function softDeleteLocked(q: Querier, t: PgTable & VersionedTable, tenantId: string, id: string, now: Date, also: Record<string, unknown> = {}): Promise<number> {
  const [row] = await q
    .update(t)
    .set({ ...also, deletedAt: now, updatedAt: now, version: sql`${t.version} + 1` } as never)
    .where(liveById(t, tenantId, id))
    .returning({ version: t.version });
  return (row as { version: number }).version;
}
