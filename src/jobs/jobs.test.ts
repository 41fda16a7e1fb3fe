// The job platform in a running server, as `carebase serve` runs it (startJobWorker): audit
// records get sealed and expired idempotency keys swept by their scheduled jobs, with nobody
// calling sealTenant; the job metrics are exported; GET /v1/admin/health lists the queue. And with
// Redis at a closed port the server still serves, and reports the queue down.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownDatabase, rowsOf } from '../../test/helpers/db.js';
import { patientInput } from '../../test/helpers/factories.js';
import { client } from '../../test/helpers/http.js';
import { parseLogs } from '../../test/helpers/logs.js';
import { freePort, waitFor } from '../../test/helpers/process.js';
import { deleteKeys } from '../../test/helpers/redis.js';
import { clientAs, startServer, storageModes, type TestServer } from '../../test/helpers/server.js';
import { verifyTenant } from '../features/audit/verify.js';
import { jobQueuePrefix } from '../platform/jobs/index.js';
import { startJobWorker } from './worker.js';

describe.each(storageModes())('jobs in a running server on %s', (mode) => {
  let srv: TestServer;
  let drop = async () => {};
  beforeAll(async () => {
    // The sealing and sweeping jobs act on every tenant: on PostgreSQL, a database of this file's own.
    const own = mode === 'postgres' ? await ownDatabase() : undefined;
    if (own) {
      drop = async () => {
        await own.drop();
        await deleteKeys(jobQueuePrefix({ kind: 'postgres', url: own.url, poolSize: 1, connectTimeoutMs: 1, statementTimeoutMs: 1 }));
      };
      await own.migrate();
    }
    srv = await startServer(mode, { AUDIT_SEAL_INTERVAL_MS: '200', IDEMPOTENCY_SWEEP_INTERVAL_MS: '200', AUDIT_FLUSH_MS: '20', ...(own ? { DATABASE_URL: own.url } : {}) });
    startJobWorker(srv.deps);
  });
  afterAll(async () => {
    await srv?.close();
    await drop();
  });

  const jobLines = (name: string) => parseLogs(srv.logs).filter((l) => l.job === name && l.msg === 'job completed');

  it('seals audit records through the scheduled audit.seal job', async () => {
    const tenant = await srv.newTenant();
    const api = await clientAs(srv, tenant, 'clinician');
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    expect(p.status).toBe(201);
    expect((await api('GET', `/v1/patients/${p.body.id}`)).status).toBe(200);
    await srv.deps.audit.flush();
    await waitFor(async () => {
      const r = await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant);
      return r.ok && r.pending === 0 && r.sealed >= 2;
    }, 15_000, () => 'the records sealed by the job');
    const line = jobLines('audit.seal').at(-1);
    expect(line).toMatchObject({ jobId: expect.any(String), attempt: 1, outcome: 'completed', durationMs: expect.any(Number) });
  });

  it('sweeps expired idempotency keys through the scheduled idempotency.sweep job', async () => {
    const tenant = await srv.newTenant();
    await srv.deps.db.tx(tenant, (q) =>
      q.execute(sql`insert into idempotency_keys (tenant_id, principal, key, fingerprint, status, headers, body, created_at, expires_at)
        values (${tenant}, 'alice', 'expired-key', 'other-request', 201, '{}'::jsonb, '{}'::jsonb, now() - interval '2 days', now() - interval '1 day')`),
    );
    await waitFor(async () => (await rowsOf(srv, tenant, sql`select key from idempotency_keys where tenant_id = ${tenant}`)).length === 0, 15_000, () => 'the expired key swept');
    expect(jobLines('idempotency.sweep').length).toBeGreaterThan(0);
  });

  it('exports the job metrics and lists the queue in GET /v1/admin/health', async () => {
    await waitFor(() => jobLines('audit.seal').length > 0, 15_000, () => 'a completed job');
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    for (const family of ['jobs_waiting', 'jobs_active', 'jobs_delayed', 'jobs_failed', 'jobs_completed_total', 'jobs_failed_total', 'job_duration_seconds', 'job_wait_seconds', 'jobs_queue_errors_total']) {
      expect(text, family).toMatch(new RegExp(`^# TYPE ${family} `, 'm'));
    }
    expect(text).toMatch(/^jobs_completed_total\{name="audit\.seal"\} [1-9]/m);
    expect(text).toMatch(/^job_duration_seconds_count\{name="audit\.seal",outcome="completed"\} [1-9]/m);
    expect(text).toMatch(/^jobs_failed \d+$/m);
    const admin = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
    const health = await admin('GET', '/v1/admin/health');
    expect(health.status).toBe(200);
    expect(health.body.dependencies).toContainEqual(expect.objectContaining({ name: 'jobs', required: false, status: 'ok' }));
  });
});

describe('jobs with Redis at a closed port', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer('pglite', { REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    startJobWorker(srv.deps);
  });
  afterAll(() => srv?.close());

  it('the server starts and serves; the queue (and Redis) show down, the service degraded', async () => {
    expect(srv.deps.jobs.kind).toBe('bullmq');
    const tenant = await srv.newTenant();
    const api = await clientAs(srv, tenant, 'clinician');
    expect((await api('POST', '/v1/patients', { body: patientInput() })).status).toBe(201);
    const ready = await fetch(`${srv.url}/health/ready`);
    await ready.text();
    expect(ready.status).toBe(200);
    const admin = await clientAs(srv, tenant, 'admin');
    // A status changes after two agreeing checks.
    await admin('GET', '/v1/admin/health');
    const r = await admin('GET', '/v1/admin/health');
    expect(r.body.status).toBe('degraded');
    expect(r.body.dependencies).toContainEqual(expect.objectContaining({ name: 'jobs', status: 'down', lastError: expect.any(String) }));
    // A scrape answers at once (the counts are not waited for). Bodies are read: an unread
    // response keeps its connection busy, and the server's close would wait for it.
    const t0 = Date.now();
    const scrape = await fetch(`${srv.url}/metrics`);
    expect(await scrape.text()).toMatch(/^jobs_queue_errors_total [1-9]/m);
    expect(Date.now() - t0).toBeLessThan(2000);
    await expect(srv.deps.jobs.enqueue('idempotency.sweep', {})).rejects.toThrow(/not connected/);
  });
});
