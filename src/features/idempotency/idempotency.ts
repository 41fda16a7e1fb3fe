// Idempotent writes (CONTRACT: Idempotency-Key). Inside the write transaction, before the change:
// a transaction-scoped advisory lock on (tenant, principal, key) makes a concurrent duplicate wait
// for the first to commit or roll back; then an existing record is replayed (same request) or
// refused (different request). After the change, the response is recorded in the same
// transaction, so a 2xx and its record commit or vanish together. Failed requests record nothing:
// retrying them runs them again.
import { and, eq, gt, lte, sql } from 'drizzle-orm';
import { AppError } from '../../errors.js';
import type { Querier } from '../../platform/db/db.js';
import { idempotencyKeys } from './idempotency.table.js';

export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** What a transport hands the service layer for a request that carries an Idempotency-Key. */
export interface IdempotencyClaim {
  key: string;
  /** Hash of what makes two requests "the same": method, route, path parameters and body. */
  fingerprint: string;
  /** How the transport will answer with the service's result (recorded for replays). */
  respond(result: unknown): StoredResponse;
}

/** Thrown inside the transaction when the key was already used: the transport sends `response`. */
export class IdempotentReplay extends Error {
  constructor(readonly response: StoredResponse) {
    super('idempotent replay');
  }
}

interface Scope {
  tenantId: string;
  principal: string;
  now: Date;
}

export async function claimKey(q: Querier, s: Scope, c: IdempotencyClaim): Promise<void> {
  await q.execute(sql`select pg_advisory_xact_lock(hashtextextended(${JSON.stringify([s.tenantId, s.principal, c.key])}, 0))`);
  const where = and(eq(idempotencyKeys.tenantId, s.tenantId), eq(idempotencyKeys.principal, s.principal), eq(idempotencyKeys.key, c.key));
  const [row] = await q.select().from(idempotencyKeys).where(and(where, gt(idempotencyKeys.expiresAt, s.now)));
  if (row) {
    if (row.fingerprint !== c.fingerprint) throw new AppError('IDEMPOTENCY_KEY_REUSED');
    throw new IdempotentReplay({ status: row.status, headers: row.headers, body: row.body });
  }
  // An expired record of the same key no longer counts; make room for the new one.
  await q.delete(idempotencyKeys).where(and(where, lte(idempotencyKeys.expiresAt, s.now)));
}

export async function recordKey(q: Querier, s: Scope, c: IdempotencyClaim, result: unknown): Promise<void> {
  const r = c.respond(result);
  await q.insert(idempotencyKeys).values({
    tenantId: s.tenantId,
    principal: s.principal,
    key: c.key,
    fingerprint: c.fingerprint,
    status: r.status,
    headers: r.headers,
    body: r.body as object,
    createdAt: s.now,
    expiresAt: new Date(s.now.getTime() + IDEMPOTENCY_TTL_MS),
  });
}

/**
 * Deletes expired records of every tenant. Run with no tenant set: then only the expired_cleanup
 * policy matches. The statement names no column on purpose — a WHERE or RETURNING on a column
 * would make PostgreSQL apply SELECT policies too, which (rightly) show no tenant's rows — and its
 * guards make it a no-op unless it runs as the application role without a tenant.
 */
export async function sweepExpiredKeys(q: Querier): Promise<number> {
  const r = (await q.execute(
    sql`delete from idempotency_keys where current_user = 'carebase_app' and coalesce(current_setting('app.tenant_id', true), '') = ''`,
  )) as { rowCount?: number | null; affectedRows?: number };
  return Number(r.rowCount ?? r.affectedRows ?? 0);
}
