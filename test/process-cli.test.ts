// The real `carebase` CLI as a child process: configuration errors, usage, and `migrate` (fresh,
// repeated, refused when the database is newer than the code or an applied migration changed).
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../src/platform/db/migrate.js';
import { createPgliteDb } from '../src/platform/db/pglite.js';
import { cleanupDirs, cliEnv, killAll, migratedDataDir, procScope, tempDir } from './helpers/process.js';

// Each test kills its own children when it finishes (procScope); this is the file-wide safety net.
afterAll(async () => {
  await killAll();
  cleanupDirs();
});

const LATEST = loadMigrations().length;

/** Runs one statement as the owner on an embedded DATA_DIR, and closes it before any child opens it. */
async function asOwner(dataDir: string, sql: string): Promise<void> {
  const db = await createPgliteDb(join(dataDir, 'pg'));
  try {
    await db.withOwner((s) => s.exec(sql));
  } finally {
    await db.close();
  }
}

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

describe.concurrent('carebase CLI: configuration and usage', () => {
  it('reports every bad variable on its own line and exits 2', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const r = await cli.run(['serve'], cliEnv({ DATA_DIR: tempDir(), PORT: 'abc', DATABASE_URL: 'mysql://x' }));
    expect(r.code, r.stderr).toBe(2);
    expect(lines(r.stderr).filter((l) => /\bPORT\b/.test(l))).toHaveLength(1);
    expect(lines(r.stderr).filter((l) => /\bDATABASE_URL\b/.test(l))).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('worker: bad job settings are named, one line each, exit 2', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const r = await cli.run(['worker'], cliEnv({ DATA_DIR: tempDir(), JOBS_CONCURRENCY: '0', JOBS_IN_SERVE: 'false', AUDIT_SEAL_INTERVAL_MS: 'soon' }));
    expect(r.code, r.stderr).toBe(2);
    for (const name of ['JOBS_CONCURRENCY', 'JOBS_IN_SERVE', 'AUDIT_SEAL_INTERVAL_MS']) expect(lines(r.stderr).filter((l) => new RegExp(`\\b${name}\\b`).test(l)), name).toHaveLength(1);
    expect(r.stderr).toMatch(/JOBS_IN_SERVE: false needs REDIS_URL/);
  });

  it('refuses the development issuer in production (exit 2, naming AUTH_JWKS_URL)', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const r = await cli.run(['serve'], cliEnv({ DATA_DIR: tempDir(), NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1' }));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/AUTH_JWKS_URL/);
  });

  it('token without --tenant is a usage error (exit 2)', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const dir = tempDir();
    const r = await cli.run(['token', '--role', 'clinician', '--sub', 'alice'], cliEnv({ DATA_DIR: dir }));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--tenant/);
    expect(r.stdout).toBe('');
  });

  it('--help exits 0 and lists the commands', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const r = await cli.run(['--help'], cliEnv());
    expect(r.code, r.stderr).toBe(0);
    for (const cmd of ['serve', 'worker', 'migrate', 'seed', 'token']) expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
  });
});

describe.concurrent('carebase migrate on the embedded database', () => {
  it('migrates a fresh DATA_DIR, then applies nothing the second time', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const env = cliEnv({ DATA_DIR: tempDir() });
    const first = await cli.run(['migrate'], env, 150_000);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`Schema at version ${LATEST}; applied ${Array.from({ length: LATEST }, (_, i) => i + 1).join(', ')}.`);
    const again = await cli.run(['migrate'], env, 150_000);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`Schema at version ${LATEST}; applied nothing.`);
  });

  it('refuses a database whose schema is newer than the code, in migrate and in serve', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const a = migratedDataDir();
    await asOwner(a, `insert into carebase_schema_migrations (version, name, checksum) values (999, 'from_the_future', 'x')`);
    // One embedded database per process: serve gets its own copy.
    const b = tempDir();
    cpSync(join(a, 'pg'), join(b, 'pg'), { recursive: true });
    const [migrate, serve] = await Promise.all([
      cli.run(['migrate'], cliEnv({ DATA_DIR: a }), 150_000),
      cli.run(['serve'], cliEnv({ DATA_DIR: b, HOST: '127.0.0.1', PORT: '0' }), 150_000),
    ]);
    for (const r of [migrate, serve]) {
      expect(r.code, r.stdout + r.stderr).not.toBe(0);
      expect(r.signal).toBeNull();
      expect(r.stderr).toMatch(/schema is at version 999, newer than this code/);
    }
    expect(serve.stdout).not.toContain('Carebase is running');
  });

  it('refuses a database where an applied migration was changed (checksum)', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const dir = migratedDataDir();
    await asOwner(dir, `update carebase_schema_migrations set checksum = 'tampered' where version = 1`);
    const r = await cli.run(['migrate'], cliEnv({ DATA_DIR: dir }), 150_000);
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(/applied migration 1 .* was changed after it was applied/);
  });
});
