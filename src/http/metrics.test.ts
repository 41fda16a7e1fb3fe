// GET /metrics: the series an operator's dashboards and alert rules (ops/) read, with route
// templates rather than ids in labels; the token; and a separate port in a real `carebase serve`.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../test/helpers/factories.js';
import { client } from '../../test/helpers/http.js';
import { openWs } from '../../test/helpers/realtime.js';
import { cleanupDirs, freePort, killAll, migratedDataDir, startServe } from '../../test/helpers/process.js';
import { startServer, storageModes, type TestServer } from '../../test/helpers/server.js';

/** The value of one series (exact labels as printed), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.each(storageModes())('metrics on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode, { EVENTS_DISPATCH_INTERVAL_MS: '20' });
  });
  afterAll(() => srv?.close());

  it('reports requests by route template, errors by code, conflicts, replays, database, cache, outbox and process metrics', async () => {
    const tenant = await srv.newTenant();
    const api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    for (let i = 0; i < 3; i++) expect((await api('GET', `/v1/patients/${p.body.id}`)).status).toBe(200);
    expect((await api('GET', `/v1/patients/${randomUUID()}`)).status).toBe(404);
    expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: '+1 555 010 0101' }, headers: { 'if-match': 'W/"9"' } })).status).toBe(412);
    const key = randomUUID();
    const body = patientInput();
    for (let i = 0; i < 2; i++) expect((await api('POST', '/v1/patients', { body, headers: { 'idempotency-key': key } })).status).toBe(201);

    const res = await fetch(`${srv.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(sample(text, 'http_request_duration_seconds_count{method="GET",route="/v1/patients/:id",status="200"}')).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'http_request_duration_seconds_count{method="GET",route="/v1/patients/:id",status="404"}')).toBeGreaterThanOrEqual(1);
    // No resource id ever becomes a label value.
    expect(text).not.toContain(p.body.id);
    expect(sample(text, 'http_errors_total{code="NOT_FOUND"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'http_errors_total{code="VERSION_CONFLICT"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'version_conflicts_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'idempotency_replays_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'db_query_duration_seconds_count{operation="read",outcome="ok"}')).toBeGreaterThan(0);
    expect(sample(text, 'cache_hits_total')).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'cache_misses_total')).toBeDefined();
    expect(sample(text, 'cache_errors_total')).toBe(0);
    expect(sample(text, 'outbox_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'audit_records_pending')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'realtime_connections')).toBe(0);
    // The job queue's depth (read from the queue itself) and this instance's runs.
    for (const g of ['jobs_waiting', 'jobs_active', 'jobs_delayed', 'jobs_failed']) expect(sample(text, g), g).toBeGreaterThanOrEqual(0);
    for (const family of ['jobs_completed_total', 'jobs_failed_total', 'jobs_queue_errors_total', 'job_duration_seconds', 'job_wait_seconds']) expect(text, family).toMatch(new RegExp(`^# TYPE ${family} `, 'm'));
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^process_resident_memory_bytes /m);
    if (mode === 'postgres') expect(sample(text, 'db_pool_waiting')).toBe(0);
    // Counters only grow between scrapes.
    const again = await (await fetch(`${srv.url}/metrics`)).text();
    expect(sample(again, 'cache_hits_total')).toBeGreaterThanOrEqual(sample(text, 'cache_hits_total')!);
  });

  it('counts open real-time connections by transport', async () => {
    const tenant = await srv.newTenant();
    const ws = await openWs(srv.url, { token: await srv.token({ tenant, roles: ['clinician'] }) });
    try {
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      expect(sample(text, 'realtime_connections')).toBe(1);
      expect(sample(text, 'realtime_connections_ws')).toBe(1);
      expect(sample(text, 'realtime_connections_sse')).toBe(0);
    } finally {
      ws.close();
    }
  });

  it('is not part of the /v1 API: no tenant token needed, and absent from the OpenAPI document', async () => {
    const doc = (await (await fetch(`${srv.url}/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).not.toContain('/metrics');
  });
});

describe('metrics behind a token', () => {
  let srv: TestServer;
  const token = 'metrics-token-0123456789abcdef';
  beforeAll(async () => {
    srv = await startServer('pglite', { METRICS_TOKEN: token });
  });
  afterAll(() => srv?.close());

  it('answers 401 in the error envelope without the token or with a wrong one, and the metrics with it', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789abcdef', `Basic ${token}`]) {
      const res = await fetch(`${srv.url}/metrics`, { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    }
    const ok = await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^http_request_duration_seconds_bucket/m);
  });

  it('refuses a token shorter than 24 characters at start', async () => {
    await expect(startServer('pglite', { METRICS_TOKEN: 'short' })).rejects.toThrow(/METRICS_TOKEN: must be at least 24 characters/);
  });
});

describe('metrics on their own port (carebase serve, METRICS_PORT)', () => {
  afterAll(async () => {
    await killAll();
    cleanupDirs();
  });

  it('serves /metrics on METRICS_PORT and not on the API port', { timeout: 120_000 }, async () => {
    const metricsPort = await freePort();
    const server = await startServe(migratedDataDir(), { METRICS_PORT: String(metricsPort), SEED_DEMO: 'false' });
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^process_cpu_seconds_total /m);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status).toBe(404);
  });
});
