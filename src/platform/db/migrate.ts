// Forward-only, versioned migrations: numbered plain .sql files applied in order, each in its own
// transaction, under an advisory lock so concurrent starts are safe. Applied files are immutable
// (checksum), and a database migrated by newer code is refused rather than run against.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { OwnerSession } from './db.js';

const DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const LOCK_KEY = 727_100_001; // arbitrary, fixed: one migrator per database at a time

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export class MigrationError extends Error {}

export function loadMigrations(dir = DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  return files.map((file, i) => {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new MigrationError(`migration file name ${file} must look like 0001_name.sql`);
    const version = Number(m[1]);
    if (version !== i + 1) throw new MigrationError(`migration ${file} is out of sequence (expected version ${i + 1})`);
    const sql = readFileSync(`${dir}${file}`, 'utf8');
    return { version, name: m[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') };
  });
}

export interface MigrationReport {
  applied: number[];
  current: number;
}

export async function migrate(s: OwnerSession, migrations = loadMigrations()): Promise<MigrationReport> {
  await s.query('select pg_advisory_lock($1)', [LOCK_KEY]);
  try {
    await s.exec(`create table if not exists carebase_schema_migrations (
      version integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now())`);
    const done = await s.query<{ version: number; name: string; checksum: string }>(
      'select version, name, checksum from carebase_schema_migrations order by version',
    );
    const latest = migrations.length;
    const newest = done.at(-1)?.version ?? 0;
    if (newest > latest) {
      throw new MigrationError(
        `database schema is at version ${newest}, newer than this code (${latest}); deploy the newer code instead`,
      );
    }
    for (const row of done) {
      const m = migrations[row.version - 1];
      if (!m || m.checksum !== row.checksum) {
        throw new MigrationError(`applied migration ${row.version} (${row.name}) was changed after it was applied; migrations are forward-only`);
      }
    }
    const applied: number[] = [];
    for (const m of migrations.slice(newest)) {
      await s.exec('begin');
      try {
        await s.exec(m.sql);
        await s.query('insert into carebase_schema_migrations (version, name, checksum) values ($1, $2, $3)', [m.version, m.name, m.checksum]);
        await s.exec('commit');
      } catch (err) {
        await s.exec('rollback');
        throw new MigrationError(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
      }
      applied.push(m.version);
    }
    return { applied, current: latest };
  } finally {
    await s.query('select pg_advisory_unlock($1)', [LOCK_KEY]);
  }
}

/** The schema version the database is at (0 when never migrated). */
export async function schemaVersion(s: OwnerSession): Promise<number> {
  // Two statements: one naming a table that does not exist fails when parsed, whatever a CASE says.
  const [exists] = await s.query<{ t: string | null }>("select to_regclass('carebase_schema_migrations')::text as t");
  if (!exists?.t) return 0;
  const rows = await s.query<{ v: number | null }>('select coalesce(max(version), 0) as v from carebase_schema_migrations');
  return Number(rows[0]?.v ?? 0);
}
