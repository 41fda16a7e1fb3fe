// Dependency health: the monitor's debounced status changes and their alerts; GET
// /v1/admin/health; and, with a real Redis behind a proxy the test can cut, an alert delivered to
// a local webhook when Redis goes away and a recovery message when it is back.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../../../test/helpers/http.js';
import { waitFor } from '../../../test/helpers/process.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { tcpProxy } from '../../../test/helpers/tcp-proxy.js';
import { createLogger } from '../../platform/log.js';
import { createHealthMonitor } from './health-monitor.js';

describe('health monitor', () => {
  it('changes a status only after two agreeing checks, alerts each change once, and keeps the last error', async () => {
    let up = true;
    const sent: string[] = [];
    const monitor = createHealthMonitor({
      checks: [{ name: 'redis', required: false, run: async () => (up ? undefined : Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6390'))) }],
      log: createLogger('silent'),
      intervalMs: 0,
      webhookUrl: 'http://alerts.invalid/hook',
      service: 'test-instance',
      post: async (_url, body) => void sent.push(body.text),
    });
    expect((await monitor.check())[0]).toMatchObject({ status: 'ok', lastError: null });
    up = false;
    expect((await monitor.check())[0]).toMatchObject({ status: 'ok', lastError: 'connect ECONNREFUSED 127.0.0.1:6390' });
    expect(sent).toEqual([]); // one failure is not an outage
    expect((await monitor.check())[0]).toMatchObject({ status: 'down', latencyMs: null });
    await monitor.check();
    expect(sent).toEqual([':red_circle: test-instance: redis is DOWN (degraded: the service goes on without it) — connect ECONNREFUSED 127.0.0.1:6390']);
    up = true;
    await monitor.check();
    expect(sent).toHaveLength(1);
    const [recovered] = await monitor.check();
    expect(recovered).toMatchObject({ status: 'ok', lastError: 'connect ECONNREFUSED 127.0.0.1:6390' });
    expect(recovered!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(sent[1]).toBe(':large_green_circle: test-instance: redis recovered');
    await monitor.close();
  });

  it('a webhook that fails is logged, not thrown', async () => {
    const monitor = createHealthMonitor({
      checks: [{ name: 'postgresql', required: true, run: () => Promise.reject(new Error('down')) }],
      log: createLogger('silent'),
      intervalMs: 0,
      confirm: 1,
      webhookUrl: 'http://127.0.0.1:1/hook',
    });
    expect((await monitor.check())[0]).toMatchObject({ status: 'down', required: true });
    await monitor.close();
  });
});

describe.each(storageModes())('GET /v1/admin/health on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(() => srv?.close());

  it('reports each dependency to admins and managers, and refuses others', async () => {
    const tenant = await srv.newTenant();
    const admin = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    const r = await admin('GET', '/v1/admin/health');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const names = mode === 'postgres' && srv.deps.config.redisUrl ? ['postgresql', 'redis', 'jobs'] : ['postgresql', 'jobs'];
    expect(r.body).toMatchObject({ status: 'ok', dependencies: names.map((name) => ({ name, status: 'ok', lastError: null })) });
    expect(r.body.dependencies[0]).toMatchObject({ required: true, latencyMs: expect.any(Number), checkedAt: expect.any(String) });
    expect((await client(srv.url, await srv.token({ tenant, roles: ['manager'] }))('GET', '/v1/admin/health')).status).toBe(200);
    const clinician = await client(srv.url, await srv.token({ tenant, roles: ['clinician'] }))('GET', '/v1/admin/health');
    expect(clinician.status).toBe(403);
    expect(clinician.body.error.code).toBe('FORBIDDEN');
    expect((await client(srv.url)('GET', '/v1/admin/health')).status).toBe(401);
  });
});

describe.runIf(storageModes().includes('postgres'))('dependency alerts (a real Redis behind a proxy)', () => {
  let srv: TestServer;
  let hook: HttpServer;
  let proxy: Awaited<ReturnType<typeof tcpProxy>>;
  const received: { text: string }[] = [];
  beforeAll(async () => {
    hook = await new Promise<HttpServer>((resolve) => {
      const s = createHttpServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c));
        req.on('end', () => {
          received.push(JSON.parse(body) as { text: string });
          res.writeHead(200).end('ok');
        });
      }).listen(0, '127.0.0.1', () => resolve(s));
    });
    proxy = await tcpProxy(6379);
    srv = await startServer('postgres', {
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`,
      HEALTH_CHECK_INTERVAL_MS: '100',
    });
  });
  afterAll(async () => {
    await srv?.close();
    await proxy?.close();
    await new Promise((r) => hook?.close(r));
  });

  it('posts a message when Redis goes away and another when it is back; the API reports degraded meanwhile', async () => {
    const tenant = await srv.newTenant();
    const admin = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    // The cache and the job queue both use this Redis: each is reported, in either order.
    const texts = () => received.map((m) => m.text);
    await proxy.cut();
    await waitFor(() => received.length >= 2, 10_000, () => 'two DOWN messages');
    for (const dep of ['redis', 'jobs']) expect(texts()).toContainEqual(expect.stringMatching(new RegExp(`^:red_circle: .*${dep} is DOWN \\(degraded: the service goes on without it\\) — `)));
    const during = await admin('GET', '/v1/admin/health');
    expect(during.body).toMatchObject({
      status: 'degraded',
      dependencies: [{ name: 'postgresql', status: 'ok' }, { name: 'redis', status: 'down', lastError: expect.any(String) }, { name: 'jobs', status: 'down', lastError: expect.any(String) }],
    });
    // Reads go on from PostgreSQL.
    expect((await admin('GET', '/v1/patients')).status).toBe(200);
    await proxy.restore();
    await waitFor(() => received.length >= 4, 15_000, () => 'two recovery messages');
    expect(texts().slice(2).sort()).toEqual([expect.stringMatching(/jobs recovered$/), expect.stringMatching(/redis recovered$/)]);
    expect(received).toHaveLength(4);
    expect((await admin('GET', '/v1/admin/health')).body.status).toBe('ok');
  });
});
