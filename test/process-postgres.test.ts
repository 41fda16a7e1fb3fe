// The real `carebase serve` in server mode (DATABASE_URL): two processes started at the same time
// on a new, empty database both become ready, migrate it once and seed the demo tenant once.
// Runs only when TEST_DATABASE_URL is set (the harness then provides a postgresUrl).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { client } from './helpers/http.js';
import { cleanupDirs, keyFileToken, killAll, procScope, stop, tempDir } from './helpers/process.js';
import { loadMigrations } from '../src/platform/db/migrate.js';

const serverUrl = inject('postgresUrl');

describe.skipIf(!serverUrl)('carebase serve on PostgreSQL', () => {
  const name = `carebase_proc_${randomBytes(6).toString('hex')}`;
  let dbUrl = '';

  /** Runs fn with a connection as the URL's user (the owner) to the given database URL. */
  async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    await withClient(serverUrl!, (c) => c.query(`create database ${name}`));
    const u = new URL(serverUrl!);
    u.pathname = `/${name}`;
    dbUrl = u.toString();
  });

  afterAll(async () => {
    await killAll();
    cleanupDirs();
    await withClient(serverUrl!, (c) => c.query(`drop database if exists ${name} with (force)`));
  });

  it('two concurrent starts on an empty database: both ready, migrated once, demo seeded once', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const vars = { DATABASE_URL: dbUrl, SEED_DEMO: 'true', DATABASE_POOL_SIZE: '3', DATABASE_STATEMENT_TIMEOUT_MS: '2000' };
    // Each process has its own DATA_DIR (its own development signing key), as separate hosts would.
    const servers = await Promise.all([cli.serve(tempDir(), vars), cli.serve(tempDir(), vars)]);

    const logs = servers.map((s) => s.proc.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>));
    const migrated = logs.map((l) => l.find((e) => e.msg === 'database migrated'));
    const latest = loadMigrations().length;
    expect(migrated.map((m) => m?.schemaVersion)).toEqual([latest, latest]);
    // Exactly one of them applied the migrations; the other found nothing to do.
    expect(migrated.map((m) => (m?.applied as number[]).length).sort()).toEqual([0, latest]);
    expect(logs.map((l) => l.filter((e) => e.msg === 'demo data seeded').length).sort()).toEqual([0, 1]);

    await withClient(dbUrl, async (c) => {
      const versions = await c.query<{ version: number }>('select version from carebase_schema_migrations order by version');
      expect(versions.rows.map((r) => r.version)).toEqual(Array.from({ length: latest }, (_, i) => i + 1));
      const counts = await c.query<{ tenants: string; patients: string }>(
        "select (select count(*) from tenants where id = 'demo') as tenants, (select count(*) from patients where tenant_id = 'demo') as patients",
      );
      expect(counts.rows[0]).toEqual({ tenants: '1', patients: '50' });
    });

    // Both serve the same data; each pool stays within DATABASE_POOL_SIZE under concurrent load.
    for (const s of servers) {
      const api = client(s.url, await keyFileToken(s.dataDir, { tenant: 'demo', roles: ['clinician'], sub: 'alice' }));
      const results = await Promise.all(Array.from({ length: 12 }, () => api('GET', '/v1/patients?limit=100')));
      for (const r of results) {
        expect(r.status).toBe(200);
        expect(r.body.data).toHaveLength(50);
      }
    }
    const appConnections = await withClient(serverUrl!, async (c) =>
      Number((await c.query<{ n: string }>("select count(*) as n from pg_stat_activity where datname = $1 and application_name = 'carebase'", [name])).rows[0]!.n),
    );
    expect(appConnections).toBeGreaterThan(0);
    expect(appConnections).toBeLessThanOrEqual(2 * 3);

    const exits = await Promise.all(servers.map((s) => stop(s.proc)));
    expect(exits).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  });
});
