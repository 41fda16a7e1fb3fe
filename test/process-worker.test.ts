// The real `carebase worker` process: runs jobs without an API listener and without migrating,
// refuses a database it cannot run against, waits for a deployment's migrations, takes jobs
// enqueued by other processes (server mode: with their request ID in its log lines), and exits 0
// on SIGTERM.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { JOBS } from '../src/jobs/registry.js';
import { createPgliteDb } from '../src/platform/db/pglite.js';
import { createBullmqQueue } from '../src/platform/jobs/bullmq-queue.js';
import { createLogger } from '../src/platform/log.js';
import { ownDatabase } from './helpers/db.js';
import { deleteKeys } from './helpers/redis.js';
import { cleanupDirs, cliEnv, freePort, killAll, migratedDataDir, procScope, stop, tempDir, waitFor, type Proc } from './helpers/process.js';

afterAll(async () => {
  await killAll();
  cleanupDirs();
});

const postgresUrl = inject('postgresUrl');
const redisUrl = inject('redisUrl');

const logLines = (p: Proc) =>
  p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Whether anything accepts connections on the port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

describe.concurrent('carebase worker', () => {
  it('embedded: runs the scheduled jobs without listening, and exits 0 on SIGTERM', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const port = await freePort();
    const worker = cli.spawn(['worker'], cliEnv({ DATA_DIR: migratedDataDir(), PORT: String(port), NODE_ENV: 'test', LOG_LEVEL: 'info', AUDIT_SEAL_INTERVAL_MS: '200' }));
    await waitFor(() => logLines(worker).filter((l) => l.job === 'audit.seal' && l.msg === 'job completed').length >= 2, 60_000, () => `two audit.seal runs\n${worker.stdout()}\n${worker.stderr()}`);
    expect(logLines(worker).find((l) => l.msg === 'job worker started')).toMatchObject({ queue: 'memory', concurrency: 4 });
    expect(logLines(worker).some((l) => l.job === 'idempotency.sweep' && l.msg === 'job completed')).toBe(true);
    // No API, and no migrations applied by it.
    expect(await listening(port)).toBe(false);
    expect(logLines(worker).some((l) => l.msg === 'database migrated')).toBe(false);
    expect(await stop(worker)).toEqual({ code: 0, signal: null });
    expect(worker.stdout()).toContain('shutdown complete');
  });

  it('refuses a database migrated by newer code: exit 1, saying so', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const dir = migratedDataDir();
    const db = await createPgliteDb(join(dir, 'pg'));
    await db.withOwner((s) => s.exec(`insert into carebase_schema_migrations (version, name, checksum) values (999, 'from_the_future', 'x')`));
    await db.close();
    const r = await cli.run(['worker'], cliEnv({ DATA_DIR: dir, NODE_ENV: 'test' }));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^carebase: database schema is at version 999, newer than this code/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it.runIf(postgresUrl && redisUrl)('server mode: waits for migrations, runs a job another process enqueued with its request ID, exits 0 on SIGTERM', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const own = await ownDatabase();
    onTestFinished(() => own.drop());
    const prefix = `carebase-test:jobs:${randomBytes(6).toString('hex')}`;
    onTestFinished(() => deleteKeys(prefix));
    const worker = cli.spawn(['worker'], cliEnv({ DATA_DIR: tempDir(), NODE_ENV: 'test', LOG_LEVEL: 'info', DATABASE_URL: own.url, DATABASE_POOL_SIZE: '3', REDIS_URL: redisUrl!, JOBS_PREFIX: prefix, JOBS_SCHEMA_WAIT_MS: '60000' }));
    await waitFor(() => logLines(worker).some((l) => l.msg === 'waiting for the database to be migrated'), 60_000, () => `the wait\n${worker.stdout()}\n${worker.stderr()}`);
    expect(worker.hasExited()).toBe(false);
    // The deployment's migration (carebase migrate, or the first serve) lands meanwhile.
    await own.migrate();
    await waitFor(() => logLines(worker).some((l) => l.msg === 'job worker started'), 30_000, () => `the worker start\n${worker.stdout()}\n${worker.stderr()}`);

    // Another process (an API instance) enqueues on the same queue.
    const producer = createBullmqQueue({
      catalog: JOBS,
      log: createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() })),
      attempts: 1,
      backoffMs: 100,
      failedRetention: { maxAgeMs: 60_000, maxCount: 10 },
      url: redisUrl!,
      prefix,
    });
    try {
      const id = await producer.enqueue('idempotency.sweep', {}, { requestId: 'req-worker-test' });
      await waitFor(() => logLines(worker).some((l) => l.jobId === id && l.msg === 'job completed'), 30_000, () => `the job's run\n${worker.stdout()}`);
      expect(logLines(worker).find((l) => l.jobId === id && l.msg === 'job completed')).toMatchObject({ job: 'idempotency.sweep', attempt: 1, outcome: 'completed', reqId: 'req-worker-test', durationMs: expect.any(Number) });
      expect(logLines(worker).find((l) => l.msg === 'job worker started')).toMatchObject({ queue: 'bullmq' });
    } finally {
      await producer.close();
    }
    expect(await stop(worker)).toEqual({ code: 0, signal: null });
  });
});
