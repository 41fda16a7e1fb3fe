// Direct SQL in tests, as the application role in one tenant (row-level security applies), with
// the rows typed — the same on PGlite and PostgreSQL, whose drivers' result objects differ.
import { randomBytes } from 'node:crypto';
import type { SQL } from 'drizzle-orm';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate } from '../../src/platform/db/migrate.js';
import { createPostgresDb } from '../../src/platform/db/postgres.js';
import type { TestServer } from './server.js';

export async function rowsOf<T = Record<string, unknown>>(srv: TestServer, tenant: string, query: SQL): Promise<T[]> {
  const result = (await srv.deps.db.read(tenant, (q) => q.execute(query))) as unknown as { rows: T[] };
  return result.rows;
}

/** One statement on its own connection as the test PostgreSQL server's superuser (TEST_DATABASE_URL). */
export async function asAdmin(text: string): Promise<void> {
  const admin = inject('postgresUrl');
  if (!admin) throw new Error('asAdmin needs TEST_DATABASE_URL');
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

export interface OwnDatabase {
  url: string;
  /** Applies the migrations (as `carebase migrate` would). */
  migrate(): Promise<void>;
  drop(): Promise<void>;
}

/**
 * A new, empty database on the test PostgreSQL server (TEST_DATABASE_URL), for tests whose
 * processes act on every tenant (the sealing and sweeping jobs) and must not touch the tenants of
 * the other test files sharing the run's database.
 */
export async function ownDatabase(): Promise<OwnDatabase> {
  const admin = inject('postgresUrl');
  if (!admin) throw new Error('ownDatabase needs TEST_DATABASE_URL');
  const name = `carebase_own_${randomBytes(5).toString('hex')}`;
  await asAdmin(`create database ${name}`);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  const url = u.toString();
  return {
    url,
    async migrate() {
      const db = await createPostgresDb({ url, poolSize: 1, connectTimeoutMs: 5000, statementTimeoutMs: 60_000 });
      try {
        await db.withOwner((s) => migrate(s));
      } finally {
        await db.close();
      }
    },
    drop: () => asAdmin(`drop database if exists ${name} with (force)`),
  };
}
