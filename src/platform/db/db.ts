// The database port. Two adapters (PGlite, PostgreSQL pool) behind one interface and one query
// layer (drizzle), so repositories never know which one they run on.
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';

/** What repositories receive: a drizzle handle already scoped to one tenant (and, in tx(), one transaction). */
export type Querier = PgDatabase<PgQueryResultHKT>;

/** A connection with the migrating (owner) role, for migrations and maintenance only. */
export interface OwnerSession {
  /** Runs one or more statements without parameters (migration files). */
  exec(sqlText: string): Promise<void>;
  query<T extends Record<string, unknown>>(sqlText: string, params?: unknown[]): Promise<T[]>;
}

export interface Db {
  readonly kind: 'pglite' | 'postgres';
  /** Runs fn as the application role with the tenant set (reads; no explicit transaction on PostgreSQL). */
  read<T>(tenantId: string, fn: (q: Querier) => Promise<T>): Promise<T>;
  /**
   * Runs fn's one data-changing statement as the application role with the tenant set, without
   * BEGIN/COMMIT around it (a single statement is atomic on its own): two round trips fewer.
   */
  autocommit<T>(tenantId: string, fn: (q: Querier) => Promise<T>): Promise<T>;
  /** Runs fn in one transaction as the application role with the tenant set. */
  tx<T>(tenantId: string, fn: (q: Querier) => Promise<T>): Promise<T>;
  /** Runs fn on a connection with the owner role (migrations, seeding checks, tests). */
  withOwner<T>(fn: (s: OwnerSession) => Promise<T>): Promise<T>;
  /** The connection pool's state (PostgreSQL; PGlite has one connection and no pool). */
  poolStats?(): { inUse: number; idle: number; waiting: number };
  /** Resolves when the database answers a trivial query within timeoutMs. */
  ping(timeoutMs: number): Promise<void>;
  /**
   * How far a standby is behind its primary, in seconds (0 when it has replayed everything it
   * received); null on a server that is not a standby. PostgreSQL only.
   */
  replicationLagSeconds?(timeoutMs: number): Promise<number | null>;
  close(): Promise<void>;
}

/**
 * The role every application query runs as: no superuser, no BYPASSRLS, so row-level security
 * applies even when DATABASE_URL names a superuser. Created by the first migration.
 */
export const APP_ROLE = 'carebase_app';

/** The rows of a raw `q.execute(sql…)`: both drivers' results hold them in `rows`. */
export const rowsOf = <T>(result: unknown): T[] => (result as { rows: T[] }).rows;

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
