// Embedded adapter: PGlite (PostgreSQL compiled to WASM) persisted in a directory.
// PGlite has one session and serializes transactions, so every application access is a
// transaction that sets role and tenant locally: nothing can leak between tenants.
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { APP_ROLE, withTimeout, type Db, type Querier } from './db.js';

export async function createPgliteDb(dataDir: string): Promise<Db> {
  mkdirSync(dataDir, { recursive: true });
  const pg = await PGlite.create(dataDir);
  const db = drizzle({ client: pg });
  let closed = false;

  const scoped = <T>(tenantId: string, fn: (q: Querier) => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new Error('database is closed'));
    return db.transaction(async (tx) => {
      await tx.execute(sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${tenantId}, true)`);
      return fn(tx as unknown as Querier);
    });
  };

  return {
    kind: 'pglite',
    read: scoped,
    tx: scoped,
    async withOwner(fn) {
      if (closed) throw new Error('database is closed');
      return fn({
        exec: async (text) => void (await pg.exec(text)),
        query: async <T extends Record<string, unknown>>(text: string, params?: unknown[]) =>
          (await pg.query<T>(text, params)).rows,
      });
    },
    async ping(timeoutMs) {
      if (closed) throw new Error('database is closed');
      await withTimeout(pg.query('select 1'), timeoutMs, 'database ping');
    },
    async close() {
      if (closed) return;
      closed = true;
      await pg.close();
    },
  };
}
