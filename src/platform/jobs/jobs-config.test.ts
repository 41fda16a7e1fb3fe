// The JOBS_* settings (and the intervals of the scheduled jobs) as loadConfig reads them.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { configProblems } from '../../../test/helpers/config.js';
import { jobQueuePrefix } from './index.js';

describe('job settings', () => {
  it('has defaults: a worker in serve, 4 at a time, 5 attempts from 1 s, failed jobs kept 7 days, sealing every 5 s, sweeping every 10 min', () => {
    expect(loadConfig({}).jobs).toEqual({
      concurrency: 4,
      inServe: true,
      attempts: 5,
      backoffMs: 1000,
      failedRetentionMs: 7 * 86_400_000,
      schemaWaitMs: 60_000,
      schedules: { auditSealMs: 5000, idempotencySweepMs: 600_000 },
    });
  });

  it('reads every variable', () => {
    const c = loadConfig({
      REDIS_URL: 'redis://cache:6379',
      JOBS_CONCURRENCY: '8',
      JOBS_IN_SERVE: 'false',
      JOBS_ATTEMPTS: '3',
      JOBS_BACKOFF_MS: '250',
      JOBS_FAILED_RETENTION_DAYS: '30',
      JOBS_PREFIX: 'carebase:jobs:eu-1',
      JOBS_SCHEMA_WAIT_MS: '0',
      AUDIT_SEAL_INTERVAL_MS: '1000',
      IDEMPOTENCY_SWEEP_INTERVAL_MS: '60000',
    });
    expect(c.jobs).toEqual({
      concurrency: 8,
      inServe: false,
      attempts: 3,
      backoffMs: 250,
      failedRetentionMs: 30 * 86_400_000,
      prefix: 'carebase:jobs:eu-1',
      schemaWaitMs: 0,
      schedules: { auditSealMs: 1000, idempotencySweepMs: 60_000 },
    });
  });

  it('refuses bad values, one line per variable naming it', () => {
    const p = configProblems({
      JOBS_CONCURRENCY: '0',
      JOBS_IN_SERVE: 'maybe',
      JOBS_ATTEMPTS: 'many',
      JOBS_BACKOFF_MS: '-1',
      JOBS_FAILED_RETENTION_DAYS: '1000',
      JOBS_PREFIX: 'has spaces',
      AUDIT_SEAL_INTERVAL_MS: '10',
      IDEMPOTENCY_SWEEP_INTERVAL_MS: '1.5',
    });
    expect(p.map((l) => l.split(':')[0])).toEqual([
      'JOBS_CONCURRENCY',
      'JOBS_IN_SERVE',
      'JOBS_ATTEMPTS',
      'JOBS_BACKOFF_MS',
      'JOBS_FAILED_RETENTION_DAYS',
      'JOBS_PREFIX',
      'AUDIT_SEAL_INTERVAL_MS',
      'IDEMPOTENCY_SWEEP_INTERVAL_MS',
    ]);
  });

  it('refuses JOBS_IN_SERVE=false without REDIS_URL: nothing else could run the jobs serve enqueues', () => {
    expect(configProblems({ JOBS_IN_SERVE: 'false' })).toEqual([expect.stringMatching(/^JOBS_IN_SERVE: false needs REDIS_URL/)]);
    expect(configProblems({ JOBS_IN_SERVE: 'false', REDIS_URL: 'redis://cache:6379' })).toEqual([]);
  });

  it('derives one queue prefix per database, without the password', () => {
    const a = jobQueuePrefix({ kind: 'postgres', url: 'postgres://app:one@db:5432/carebase', poolSize: 1, connectTimeoutMs: 1, statementTimeoutMs: 1 });
    const b = jobQueuePrefix({ kind: 'postgres', url: 'postgres://app:two@db:5432/carebase', poolSize: 1, connectTimeoutMs: 1, statementTimeoutMs: 1 });
    const c = jobQueuePrefix({ kind: 'postgres', url: 'postgres://app:one@db:5432/other', poolSize: 1, connectTimeoutMs: 1, statementTimeoutMs: 1 });
    expect(a).toMatch(/^carebase:jobs:[0-9a-f]{16}$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(jobQueuePrefix({ kind: 'pglite', dataDir: './data/pg' })).not.toBe(a);
  });
});
