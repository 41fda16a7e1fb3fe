import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { sweepExpiredKeys } from './idempotency.js';
import { rowsOf } from '../../../test/helpers/db.js';

describe.each(storageModes())('Idempotency-Key on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let api: Client;
  const key = (k: string) => ({ 'idempotency-key': k });
  const count = async (c: Client = api) => (await c('GET', '/v1/patients?limit=100')).body.data.length as number;

  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(() => srv?.close());

  const freshTenant = async (sub = 'alice') => {
    tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub }));
    return api;
  };

  it('50 concurrent identical POSTs with one key create one patient; all get the same 201 body, 49 marked replayed', async () => {
    await freshTenant();
    const body = patientInput();
    const results = await Promise.all(Array.from({ length: 50 }, () => api('POST', '/v1/patients', { body, headers: key('create-once') })));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(201));
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    expect(new Set(results.map((r) => r.headers.get('location'))).size).toBe(1);
    expect(results.filter((r) => r.headers.get('idempotency-replayed') === 'true')).toHaveLength(49);
    expect(results.every((r) => r.headers.get('etag') === 'W/"1"')).toBe(true);
    expect(await count()).toBe(1);
  });

  it('the same key with another body is 422 IDEMPOTENCY_KEY_REUSED and changes nothing; key order in the body does not matter', async () => {
    await freshTenant();
    const body = patientInput();
    expect((await api('POST', '/v1/patients', { body, headers: key('k1') })).status).toBe(201);
    expectError(await api('POST', '/v1/patients', { body: { ...body, gender: 'male' }, headers: key('k1') }), 422, 'IDEMPOTENCY_KEY_REUSED');
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const replay = await api('POST', '/v1/patients', { body: reordered, headers: key('k1') });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotency-replayed')).toBe('true');
    expect(await count()).toBe(1);
  });

  it('a retried PATCH replays its first answer instead of failing on the now-stale If-Match; concurrent ones too', async () => {
    await freshTenant();
    const p = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    const headers = { ...key('patch-1'), 'if-match': 'W/"1"' };
    const results = await Promise.all(Array.from({ length: 20 }, () => api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 000 1111' }, headers })));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    expect(results[0]!.body.version).toBe(2);
    expect(results.filter((r) => r.headers.get('idempotency-replayed') === 'true')).toHaveLength(19);
    const later = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 000 1111' }, headers });
    expect(later.status).toBe(200);
    expect(later.headers.get('etag')).toBe('W/"2"');
    expect((await api('GET', `/v1/patients/${p.id}`)).body.version).toBe(2);
    // Without a key the same stale request is refused, as always.
    expectError(await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 000 1111' }, headers: { 'if-match': 'W/"1"' } }), 412, 'VERSION_CONFLICT');
  });

  it('keys are scoped to the principal and the tenant', async () => {
    const alice = await freshTenant('alice');
    const bob = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'bob' }));
    const body = patientInput();
    expect((await alice('POST', '/v1/patients', { body, headers: key('shared') })).headers.get('idempotency-replayed')).toBeNull();
    expect((await bob('POST', '/v1/patients', { body, headers: key('shared') })).headers.get('idempotency-replayed')).toBeNull();
    expect(await count(alice)).toBe(2);
    const other = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['clinician'], sub: 'alice' }));
    expect((await other('POST', '/v1/patients', { body, headers: key('shared') })).headers.get('idempotency-replayed')).toBeNull();
    expect(await count(other)).toBe(1);
  });

  it.each([
    ['too long', 'k'.repeat(256)],
    ['a control character', 'bad\tkey'],
    ['non-ASCII', 'clé'],
    ['only spaces', '   '],
  ])('a key that is %s is 400 MALFORMED_REQUEST and creates nothing', async (_what, k) => {
    await freshTenant();
    expectError(await api('POST', '/v1/patients', { body: patientInput(), headers: { 'idempotency-key': encodeURI(k) === k ? k : k } }), 400, 'MALFORMED_REQUEST');
    expect(await count()).toBe(0);
  });

  it('a failed request records nothing: the key can then be used for a valid request', async () => {
    await freshTenant();
    expectError(await api('POST', '/v1/patients', { body: patientInput({ gender: 'x' }), headers: key('after-400') }), 400, 'VALIDATION_FAILED');
    const ok = await api('POST', '/v1/patients', { body: patientInput(), headers: key('after-400') });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('idempotency-replayed')).toBeNull();
  });

  it('an expired record no longer counts, and the sweeper deletes expired records of every tenant', async () => {
    await freshTenant();
    const insertExpired = (k: string) =>
      srv.deps.db.tx(tenant, (q) =>
        q.execute(sql`insert into idempotency_keys (tenant_id, principal, key, fingerprint, status, headers, body, created_at, expires_at)
          values (${tenant}, 'alice', ${k}, 'other-request', 201, '{}'::jsonb, '{}'::jsonb, now() - interval '2 days', now() - interval '1 day')`),
      );
    await insertExpired('old');
    const res = await api('POST', '/v1/patients', { body: patientInput(), headers: key('old') });
    expect(res.status).toBe(201);
    expect(res.headers.get('idempotency-replayed')).toBeNull();
    await insertExpired('old-2');
    // With a tenant set, the tenant policy would match live keys too: the guard makes it a no-op.
    expect(await srv.deps.db.tx(tenant, (q) => sweepExpiredKeys(q))).toBe(0);
    const swept = await srv.deps.db.tx('', (q) => sweepExpiredKeys(q));
    expect(swept).toBeGreaterThanOrEqual(1);
    expect(await rowsOf(srv, tenant, sql`select key from idempotency_keys where tenant_id = ${tenant} order by key`)).toEqual([{ key: 'old' }]);
  });

  it('documents Idempotency-Key on every POST and PATCH in OpenAPI', async () => {
    const doc = (await client(srv.url)('GET', '/v1/openapi.json')).body;
    for (const [path, ops] of Object.entries<Record<string, { parameters?: { in: string; name: string }[] }>>(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!path.startsWith('/v1/') || !['post', 'patch'].includes(method)) continue;
        expect(op.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key'), `${method} ${path}`).toBe(true);
      }
    }
  });
});
