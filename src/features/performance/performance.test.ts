// The performance window (percentiles, rates, the sliding window, cache and pool figures) and
// GET /v1/admin/performance on a real server.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client } from '../../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { createPerformanceWindow } from './performance-window.js';

describe('performance window', () => {
  it('reports rates, error shares and interpolated percentiles per route, the slowest first in `slowest`', () => {
    let t = 1_000_000;
    const cache = { hits: 10, misses: 5 };
    const w = createPerformanceWindow({ now: () => t, bucketMs: 1000, windowMs: 10_000, cacheStats: () => ({ ...cache }) });
    for (let i = 1; i <= 100; i++) w.observe('GET', '/v1/patients/:id', 200, i); // 1..100 ms
    for (let i = 0; i < 10; i++) w.observe('POST', '/v1/patients', i < 2 ? 500 : i < 5 ? 400 : 201, 300);
    cache.hits += 90;
    cache.misses += 10;
    t += 5000;
    const r = w.report();
    expect(r.windowSeconds).toBe(5);
    expect(r.requests).toBe(110);
    expect(r.requestsPerSecond).toBe(22);
    const get = r.routes.find((x) => x.route === '/v1/patients/:id')!;
    expect(get).toMatchObject({ method: 'GET', requests: 100, errorRate: 0, clientErrorRate: 0, meanMs: 50.5 });
    // Exact values are 50, 95 and 99 ms; bins are 30–50, 75–100: interpolated within them.
    expect(get.p50Ms).toBeGreaterThan(30);
    expect(get.p50Ms).toBeLessThanOrEqual(50);
    expect(get.p95Ms).toBeGreaterThan(75);
    expect(get.p95Ms).toBeLessThanOrEqual(100);
    expect(get.p99Ms).toBeGreaterThanOrEqual(get.p95Ms);
    const post = r.routes.find((x) => x.route === '/v1/patients')!;
    expect(post).toMatchObject({ requests: 10, errorRate: 0.2, clientErrorRate: 0.3 });
    expect(r.slowest[0]!.route).toBe('/v1/patients');
    expect(r.errorRate).toBeCloseTo(2 / 110, 4);
    expect(r.cache).toEqual({ hits: 90, misses: 10, hitRatio: 0.9 });
    expect(r.databasePool).toBeNull();
  });

  it('forgets what left the window', () => {
    let t = 0;
    const w = createPerformanceWindow({ now: () => t, bucketMs: 1000, windowMs: 3000, cacheStats: () => ({ hits: 0, misses: 0 }) });
    w.observe('GET', '/a', 200, 5);
    t = 2500;
    w.observe('GET', '/b', 200, 5);
    expect(w.report().routes.map((r) => r.route).sort()).toEqual(['/a', '/b']);
    t = 3500;
    expect(w.report().routes.map((r) => r.route)).toEqual(['/b']);
    t = 10_000;
    expect(w.report()).toMatchObject({ requests: 0, routes: [], cache: { hitRatio: null } });
  });

  it('averages pool use over its samples and keeps the most requests seen waiting', () => {
    let stats = { inUse: 2, idle: 8, waiting: 0 };
    const w = createPerformanceWindow({ cacheStats: () => ({ hits: 0, misses: 0 }), poolStats: () => stats });
    w.samplePool();
    stats = { inUse: 10, idle: 0, waiting: 4 };
    w.samplePool();
    expect(w.report().databasePool).toEqual({ utilization: 0.6, maxWaiting: 4 });
  });
});

describe.each(storageModes())('GET /v1/admin/performance on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(() => srv?.close());

  it('reports the requests this instance served by route template, for admins and managers only', async () => {
    const tenant = await srv.newTenant();
    const api = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    for (let i = 0; i < 5; i++) expect((await api('GET', `/v1/patients/${p.body.id}`)).status).toBe(200);
    expect((await api('GET', `/v1/patients/${randomUUID()}`)).status).toBe(404);
    const r = await api('GET', '/v1/admin/performance');
    expect(r.status).toBe(200);
    const byId = r.body.routes.find((x: { method: string; route: string }) => x.method === 'GET' && x.route === '/v1/patients/:id');
    expect(byId.requests).toBeGreaterThanOrEqual(6);
    expect(byId.clientErrorRate).toBeGreaterThan(0);
    expect(byId.p50Ms).toBeLessThanOrEqual(byId.p95Ms);
    expect(byId.p95Ms).toBeLessThanOrEqual(byId.p99Ms);
    expect(r.text).not.toContain(p.body.id);
    expect(r.body.slowest.length).toBeGreaterThan(0);
    expect(r.body.cache.hits).toBeGreaterThanOrEqual(4);
    expect(r.body.databasePool === null).toBe(mode === 'pglite');
    const clinician = await client(srv.url, await srv.token({ tenant, roles: ['clinician'] }))('GET', '/v1/admin/performance');
    expect(clinician.status).toBe(403);
  });
});
