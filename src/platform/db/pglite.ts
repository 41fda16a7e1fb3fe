// Embedded adapter: PGlite (PostgreSQL compiled to WASM) persisted in a directory.
// PGlite has one session and serializes transactions, so every application access is a
// transaction that sets role and tenant locally: nothing can leak between tenants.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { APP_ROLE, withTimeout, type Db, type Querier } from './db.js';

export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * PGlite is one process's database: a second process opening the same directory would corrupt
 * it. A lock file holding the owner's pid keeps a second `serve` (or `migrate`) out; a lock left
 * by a process that died is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const file = `${dataDir}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(file, 'utf8'));
      if (owner > 0 && alive(owner)) {
        throw new DataDirInUseError(`the embedded database in ${dataDir} is in use by process ${owner}; stop it first (or set DATABASE_URL)`);
      }
      rmSync(file, { force: true });
    }
  }
  throw new DataDirInUseError(`could not lock ${dataDir}`);
}

export async function createPgliteDb(dataDir: string): Promise<Db> {
  mkdirSync(dataDir, { recursive: true });
  const unlock = lockDataDir(dataDir);
  let pg: PGlite;
  try {
    pg = await PGlite.create(dataDir);
  } catch (err) {
    unlock();
    throw err;
  }
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
    autocommit: scoped,
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
      try {
        await pg.close();
      } finally {
        unlock();
      }
    },
  };
}
