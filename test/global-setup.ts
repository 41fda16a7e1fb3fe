// Runs once per `npm test`: a migrated PGlite data directory that every test server copies (a
// fresh PGlite takes seconds to create, a copy opens in well under one), and, when
// TEST_DATABASE_URL is set, a fresh migrated database on the real PostgreSQL, dropped at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createPgliteDb } from '../src/platform/db/pglite.js';
import { createPostgresDb } from '../src/platform/db/postgres.js';
import { migrate } from '../src/platform/db/migrate.js';
import { jobQueuePrefix } from '../src/platform/jobs/index.js';
import { deleteRedisKeys } from './helpers/redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
    postgresUrl: string | null;
    redisUrl: string | null;
  }
}

export default async function setup(project: TestProject) {
  const root = mkdtempSync(join(tmpdir(), 'carebase-test-'));
  const template = join(root, 'pglite-template');
  const lite = await createPgliteDb(template);
  await lite.withOwner((s) => migrate(s));
  await lite.close();
  project.provide('pgliteTemplate', template);
  project.provide('redisUrl', process.env.TEST_REDIS_URL || null);

  let dropDatabase = async () => {};
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (adminUrl) {
    const name = `carebase_test_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const db = await createPostgresDb({ url: url.toString(), poolSize: 1, connectTimeoutMs: 5000, statementTimeoutMs: 60_000 });
    await db.withOwner((s) => migrate(s));
    await db.close();
    project.provide('postgresUrl', url.toString());
    const redisUrl = process.env.TEST_REDIS_URL;
    dropDatabase = async () => {
      // The job queue every server-mode test server opened for this database (its prefix is the database's).
      // Leftover keys are harmless; a Redis gone by now is not the run's failure.
      if (redisUrl) await deleteRedisKeys(redisUrl, jobQueuePrefix({ kind: 'postgres', url: url.toString(), poolSize: 1, connectTimeoutMs: 1, statementTimeoutMs: 1 })).catch(() => undefined);
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    };
  } else {
    project.provide('postgresUrl', null);
  }

  return async () => {
    await dropDatabase();
    rmSync(root, { recursive: true, force: true });
  };
}
