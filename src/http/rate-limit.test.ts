// Rate limits: per route group, per tenant + user or per client IP, with the contract's headers
// and 429 envelope; failed authentications throttled by IP; shared across instances through Redis;
// and still enforced (in memory, counted and logged) when Redis is unreachable.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../test/helpers/db.js';
import { patientInput } from '../../test/helpers/factories.js';
import { client } from '../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../test/helpers/server.js';
import { groupOf } from './rate-limit.js';

const limits = (points: Record<string, number>) => Object.fromEntries(Object.entries(points).map(([g, n]) => [`RATE_LIMIT_${g}_POINTS`, String(n)]));

describe('route groups', () => {
  it.each([
    ['GET', '/v1/patients/:id', 'READ'],
    ['HEAD', '/v1/patients', 'READ'],
    ['POST', '/v1/patients', 'WRITE'],
    ['PATCH', '/v1/questionnaire-responses/:id', 'WRITE'],
    ['DELETE', '/v1/providers/:id', 'WRITE'],
    ['GET', '/v1/patients/:id/export', 'EXPORT'],
    ['GET', '/v1/audit-events/export', 'EXPORT'],
    ['GET', '/v1/events', 'REALTIME'],
    ['GET', '/v1/ws', 'REALTIME'],
    ['POST', '/v1/realtime/tickets', 'AUTH'],
  ])('%s %s is %s', (method, url, group) => {
    expect(groupOf(method, url)).toBe(group);
  });
});

describe.each(storageModes())('rate limits on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode, { ...limits({ READ: 3, WRITE: 2, AUTH: 2, EXPORT: 1 }), TRUST_PROXY: 'true' });
  });
  afterAll(() => srv?.close());

  it('counts reads per tenant and user, with RateLimit-* headers; the next one is 429 with Retry-After in the envelope', async () => {
    const tenant = await srv.newTenant();
    const alice = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'alice' }));
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await alice('GET', '/v1/patients');
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit-limit')).toBe('3');
      seen.push(r.headers.get('ratelimit-remaining')!);
      expect(Number(r.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    }
    expect(seen).toEqual(['2', '1', '0']);
    const refused = await alice('GET', '/v1/patients', { headers: { 'x-request-id': 'rl-read-1' } });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(refused.body).toMatchObject({ error: { code: 'RATE_LIMITED', requestId: 'rl-read-1' } });
    // Another user of the tenant, and the same user name in another tenant, have their own counts.
    const bob = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'bob' }));
    expect((await bob('GET', '/v1/patients')).status).toBe(200);
    const other = await srv.newTenant();
    const alice2 = client(srv.url, await srv.token({ tenant: other, roles: ['clinician'], sub: 'alice' }));
    expect((await alice2('GET', '/v1/patients')).status).toBe(200);
    // Writes are their own group: alice may still write.
    expect((await alice('POST', '/v1/patients', { body: patientInput() })).status).toBe(201);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toMatch(/^rate_limit_rejections_total\{group="READ"\} [1-9]/m);
  });

  it('a refused write changes nothing', async () => {
    const tenant = await srv.newTenant();
    const api = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'writer' }));
    for (let i = 0; i < 2; i++) expect((await api('POST', '/v1/patients', { body: patientInput() })).status).toBe(201);
    const refused = await api('POST', '/v1/patients', { body: patientInput() });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(await rowsOf(srv, tenant, sql`select id from patients`)).toHaveLength(2);
  });

  it('exports have their own, smaller budget', async () => {
    const tenant = await srv.newTenant();
    const api = client(srv.url, await srv.token({ tenant, roles: ['admin'], sub: 'exporter' }));
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    expect((await api('GET', `/v1/patients/${p.body.id}/export`)).status).toBe(200);
    expect((await api('GET', `/v1/patients/${p.body.id}/export`)).status).toBe(429);
    expect((await api('GET', `/v1/patients/${p.body.id}`)).status).toBe(200);
  });

  it('anonymous requests count by client IP (X-Forwarded-For believed only with TRUST_PROXY)', async () => {
    const ip = `198.51.100.${Math.floor(Math.random() * 200) + 1}`;
    const anon = client(srv.url);
    for (let i = 0; i < 3; i++) expect((await anon('GET', '/v1/openapi.json', { headers: { 'x-forwarded-for': ip } })).status).toBe(200);
    expect((await anon('GET', '/v1/openapi.json', { headers: { 'x-forwarded-for': ip } })).status).toBe(429);
    expect((await anon('GET', '/v1/openapi.json', { headers: { 'x-forwarded-for': `${ip}1` } })).status).toBe(200);
  });

  it('failed authentications are throttled by IP: once spent, even a valid token from that IP waits', async () => {
    const tenant = await srv.newTenant();
    const ip = `203.0.113.${Math.floor(Math.random() * 200) + 1}`;
    const bad = client(srv.url, 'not-a-valid-token');
    for (let i = 0; i < 2; i++) expect((await bad('GET', '/v1/patients', { headers: { 'x-forwarded-for': ip } })).status).toBe(401);
    const good = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'behind-the-same-ip' }));
    const refused = await good('GET', '/v1/patients', { headers: { 'x-forwarded-for': ip } });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Other addresses are unaffected.
    expect((await good('GET', '/v1/patients', { headers: { 'x-forwarded-for': `${ip}9` } })).status).toBe(200);
  });
});

describe('without TRUST_PROXY', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer('pglite', limits({ READ: 2 }));
  });
  afterAll(() => srv?.close());

  it('ignores X-Forwarded-For: a client cannot pick a fresh address per request', async () => {
    const anon = client(srv.url);
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await anon('GET', '/v1/openapi.json', { headers: { 'x-forwarded-for': `192.0.2.${i + 1}` } })).status);
    expect(codes).toEqual([200, 200, 429]);
  });
});

describe.runIf(storageModes().includes('postgres'))('rate limits across instances (Redis)', () => {
  let a: TestServer;
  let b: TestServer;
  let down: TestServer;
  beforeAll(async () => {
    [a, b, down] = await Promise.all([
      startServer('postgres', limits({ READ: 3 })),
      startServer('postgres', limits({ READ: 3 })),
      startServer('postgres', { ...limits({ READ: 3 }), REDIS_URL: 'redis://127.0.0.1:1' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), down?.close()]);
  });

  it('a limit holds across instances', async () => {
    const tenant = await a.newTenant();
    // Each test server has its own development issuer: the same user gets a token from each.
    const codes = [];
    for (const srv of [a, b, a, b]) codes.push((await client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'roaming' }))('GET', '/v1/patients')).status);
    expect(codes).toEqual([200, 200, 200, 429]);
  });

  it('a busy client leases points in chunks, yet never gets more than the limit across instances, and its headers count down one by one', async () => {
    const [x, y] = await Promise.all([startServer('postgres', limits({ READ: 300 })), startServer('postgres', limits({ READ: 300 }))]);
    try {
      const tenant = await x.newTenant();
      const apis = [client(x.url, await x.token({ tenant, roles: ['clinician'], sub: 'busy' })), client(y.url, await y.token({ tenant, roles: ['clinician'], sub: 'busy' }))];
      const remaining: number[] = [];
      let allowed = 0;
      for (let i = 0; i < 330; i++) {
        const r = await apis[i % 2]!('GET', '/v1/patients');
        if (r.status === 200) allowed++;
        else expect(r.status).toBe(429);
        if (i < 20 && i % 2 === 0) remaining.push(Number(r.headers.get('ratelimit-remaining')));
      }
      // Never more than the limit; at most a chunk per instance (300 / 100 = 3) left unused in a lease.
      expect(allowed).toBeLessThanOrEqual(300);
      expect(allowed).toBeGreaterThanOrEqual(300 - 2 * 3);
      // On one instance, the remaining count goes down as requests are made (other instances' use included).
      for (let i = 1; i < remaining.length; i++) expect(remaining[i]!).toBeLessThan(remaining[i - 1]!);
      // Through one instance alone, exactly the limit: near it, points are taken one at a time.
      const solo = client(x.url, await x.token({ tenant, roles: ['clinician'], sub: 'solo' }));
      const codes = await Promise.all(Array.from({ length: 310 }, () => solo('GET', '/v1/patients').then((r) => r.status)));
      expect(codes.filter((c) => c === 200)).toHaveLength(300);
    } finally {
      await Promise.all([x.close(), y.close()]);
    }
  });

  it('under a high limit a lease holds at most 100 points', async () => {
    const [x, y] = await Promise.all([startServer('postgres', limits({ READ: 1_000_000 })), startServer('postgres', limits({ READ: 1_000_000 }))]);
    try {
      const tenant = await x.newTenant();
      const viaX = client(x.url, await x.token({ tenant, roles: ['clinician'], sub: 'heavy' }));
      for (let i = 0; i < 150; i++) expect((await viaX('GET', '/v1/patients')).status).toBe(200);
      // x took 1 point (no count known yet), then two leases of 100 (1 % of the limit would be
      // 10,000): 201 of the shared count. y's first request takes one more and reports the rest.
      const viaY = client(y.url, await y.token({ tenant, roles: ['clinician'], sub: 'heavy' }));
      expect((await viaY('GET', '/v1/patients')).headers.get('ratelimit-remaining')).toBe(String(1_000_000 - 202));
    } finally {
      await Promise.all([x.close(), y.close()]);
    }
  });

  it('with Redis unreachable the instance still limits (in memory), counts and logs it', async () => {
    const tenant = await down.newTenant();
    const api = client(down.url, await down.token({ tenant, roles: ['clinician'], sub: 'no-redis' }));
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await api('GET', '/v1/patients')).status);
    expect(codes).toEqual([200, 200, 200, 429]);
    const metrics = await (await fetch(`${down.url}/metrics`)).text();
    expect(metrics).toMatch(/^rate_limit_fallbacks_total [1-9]/m);
    expect(down.logs.some((l) => l.includes('rate limit: Redis unavailable'))).toBe(true);
  });
});
