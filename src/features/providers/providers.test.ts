// Providers over real HTTP: CRUD, ETag / If-Match, soft delete, pagination, concurrency and role
// permissions, on PGlite and (with TEST_DATABASE_URL) on the real PostgreSQL.
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../auth/principal.js';
import { client, expectError, type Client, type Res, ifMatch } from '../../../test/helpers/http.js';
import { locationInput, providerInput } from '../../../test/helpers/factories.js';
import { clientAs, startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

describe.each(storageModes())('providers CRUD on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['manager'] }));
  });
  afterAll(() => srv?.close());

  const create = async (over: Record<string, unknown> = {}) => {
    const res = await api('POST', '/v1/providers', { body: providerInput(over) });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };

  it('creates with 201, Location and ETag W/"1", and reads back exactly what was saved', async () => {
    const loc = (await api('POST', '/v1/locations', { body: locationInput() })).body;
    const input = providerInput({ name: { given: ['Mary', 'Ann'], family: 'Jackson' }, specialty: 'Neurology', locationIds: [loc.id] });
    const res = await api('POST', '/v1/providers', { body: input });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('location')).toBe(`/v1/providers/${res.body.id}`);
    expect(res.body).toEqual({ ...input, id: expect.any(String), version: 1, createdAt: expect.any(String), updatedAt: expect.any(String) });
    const got = await api('GET', `/v1/providers/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBe('W/"1"');
    expect(got.body).toEqual(res.body);
  });

  it('defaults locationIds to [] and omits an absent specialty', async () => {
    const { specialty: _s, locationIds: _l, ...input } = providerInput();
    const res = await api('POST', '/v1/providers', { body: input });
    expect(res.status).toBe(201);
    expect(res.body.locationIds).toEqual([]);
    expect(res.body).not.toHaveProperty('specialty');
    expect((await api('GET', `/v1/providers/${res.body.id}`)).body).toEqual(res.body);
  });

  it('GET of an unknown id is 404 and of a malformed id 400', async () => {
    expectError(await api('GET', `/v1/providers/${uuidv7()}`), 404, 'NOT_FOUND');
    expectError(await api('GET', '/v1/providers/123'), 400, 'VALIDATION_FAILED');
  });

  it('PATCH is a merge patch that needs If-Match: 428 without, 412 when stale, 200 with version +1', async () => {
    const p = await create();
    expectError(await api('PATCH', `/v1/providers/${p.id}`, { body: { specialty: 'Oncology' } }), 428, 'PRECONDITION_REQUIRED');
    const stale = await api('PATCH', `/v1/providers/${p.id}`, { body: { specialty: 'Oncology' }, headers: ifMatch(3) });
    expectError(stale, 412, 'VERSION_CONFLICT');
    expect(stale.headers.get('etag')).toBe('W/"1"');
    expect((await api('GET', `/v1/providers/${p.id}`)).body).toEqual(p);

    const ok = await api('PATCH', `/v1/providers/${p.id}`, {
      body: { specialty: 'Oncology', name: { family: 'Murray' } },
      headers: { ...ifMatch(1), 'content-type': 'application/merge-patch+json' },
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.headers.get('etag')).toBe('W/"2"');
    expect(ok.body).toEqual({ ...p, specialty: 'Oncology', name: { given: p.name.given, family: 'Murray' }, version: 2, updatedAt: expect.any(String) });
    expect((await api('GET', `/v1/providers/${p.id}`)).body).toEqual(ok.body);

    expectError(await api('PATCH', `/v1/providers/${p.id}`, { body: { specialty: 'X' }, headers: ifMatch(1) }), 412, 'VERSION_CONFLICT');
    const cleared = await api('PATCH', `/v1/providers/${p.id}`, { body: { specialty: null }, headers: ifMatch(2) });
    expect(cleared.status).toBe(200);
    expect(cleared.body.version).toBe(3);
    expect(cleared.body).not.toHaveProperty('specialty');
    expect(cleared.headers.get('etag')).toBe('W/"3"');
  });

  it('rejects invalid PATCHes with 400 and leaves the provider unchanged', async () => {
    const p = await create();
    const cases: [unknown, string][] = [
      [{ npi: '123' }, '/npi'],
      [{ npi: null }, '/npi'],
      [{ name: { given: [] } }, '/name/given'],
      [{ name: { nickname: 'G' } }, '/name/nickname'],
      [{ locationIds: ['nope'] }, '/locationIds/0'],
      [{ locationIds: [uuidv7()] }, '/locationIds/0'],
      [{ specialty: 'Bad\nLine' }, '/specialty'],
      [{ id: uuidv7() }, '/id'],
      [{}, '/'],
    ];
    for (const [body, path] of cases) {
      const err = expectError(await api('PATCH', `/v1/providers/${p.id}`, { body, headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
      expect(err.details?.map((d) => d.path), JSON.stringify(body)).toContain(path);
    }
    const after = await api('GET', `/v1/providers/${p.id}`);
    expect(after.body).toEqual(p);
    expect(after.headers.get('etag')).toBe('W/"1"');
  });

  it('DELETE is soft and needs If-Match: 428, 412, 204, then 404 everywhere', async () => {
    const p = await create();
    expectError(await api('DELETE', `/v1/providers/${p.id}`), 428, 'PRECONDITION_REQUIRED');
    expectError(await api('DELETE', `/v1/providers/${p.id}`, { headers: ifMatch(2) }), 412, 'VERSION_CONFLICT');
    expect((await api('GET', `/v1/providers/${p.id}`)).status).toBe(200);
    const del = await api('DELETE', `/v1/providers/${p.id}`, { headers: ifMatch(1) });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expectError(await api('GET', `/v1/providers/${p.id}`), 404, 'NOT_FOUND');
    expectError(await api('PATCH', `/v1/providers/${p.id}`, { body: { specialty: 'X' }, headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expectError(await api('DELETE', `/v1/providers/${p.id}`, { headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expect((await api('GET', '/v1/providers?limit=100')).body.data.map((x: { id: string }) => x.id)).not.toContain(p.id);
  });

  it('lists with cursor pagination in creation order', async () => {
    const tenant = await srv.newTenant();
    const own = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await own('POST', '/v1/providers', { body: providerInput() })).body.id);
    const seen: string[] = [];
    const cursors: (string | null)[] = [];
    let cursor: string | null = null;
    do {
      const res: Res = await own('GET', `/v1/providers?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((x: { id: string }) => x.id));
      cursor = res.body.page.nextCursor;
      cursors.push(cursor);
    } while (cursor && cursors.length < 10);
    expect(seen).toEqual(ids);
    expect(cursors.map((c) => c === null)).toEqual([false, false, true]);
    expect((await own('GET', '/v1/providers')).body.page).toEqual({ limit: 20, nextCursor: null });
    expectError(await own('GET', '/v1/providers?limit=101'), 400, 'VALIDATION_FAILED');
  });

  it('another tenant gets 404 for a provider and an empty list', async () => {
    const p = await create();
    const tenant = await srv.newTenant();
    const other = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    expectError(await other('GET', `/v1/providers/${p.id}`), 404, 'NOT_FOUND');
    expectError(await other('PATCH', `/v1/providers/${p.id}`, { body: { specialty: 'X' }, headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expectError(await other('DELETE', `/v1/providers/${p.id}`, { headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expect((await other('GET', '/v1/providers')).body.data).toEqual([]);
  });

  it('of 30 concurrent PATCHes with the same If-Match exactly one wins, the rest get 412', async () => {
    const p = await create();
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => api('PATCH', `/v1/providers/${p.id}`, { body: { specialty: `Specialty ${i}` }, headers: ifMatch(1) })),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(29);
    for (const r of results.filter((x) => x.status === 412)) expectError(r, 412, 'VERSION_CONFLICT');
    const winner = results.find((r) => r.status === 200)!;
    const got = await api('GET', `/v1/providers/${p.id}`);
    expect(got.body.version).toBe(2);
    expect(got.body.specialty).toBe(winner.body.specialty);
  });

  it('of concurrent DELETEs with the same If-Match exactly one wins', async () => {
    const p = await create();
    const statuses = (await Promise.all(Array.from({ length: 10 }, () => api('DELETE', `/v1/providers/${p.id}`, { headers: ifMatch(1) })))).map((r) => r.status);
    expect(statuses.filter((s) => s === 204)).toHaveLength(1);
    for (const s of statuses.filter((x) => x !== 204)) expect([404, 412]).toContain(s);
  });
});

describe.each(storageModes())('providers permissions on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let admin: Client;
  const as = (role: Role) => clientAs(srv, tenant, role);
  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    admin = await as('admin');
  });
  afterAll(() => srv?.close());

  const seed = async () => (await admin('POST', '/v1/providers', { body: providerInput() })).body as { id: string; npi: string };

  it.each(['admin', 'manager'] as const)('%s may create, patch and delete', async (role) => {
    const api = await as(role);
    const res = await api('POST', '/v1/providers', { body: providerInput() });
    expect(res.status).toBe(201);
    const patched = await api('PATCH', `/v1/providers/${res.body.id}`, { body: { specialty: `By ${role}` }, headers: ifMatch(1) });
    expect(patched.status).toBe(200);
    expect(patched.body.specialty).toBe(`By ${role}`);
    expect((await api('DELETE', `/v1/providers/${res.body.id}`, { headers: ifMatch(2) })).status).toBe(204);
    expectError(await admin('GET', `/v1/providers/${res.body.id}`), 404, 'NOT_FOUND');
  });

  it.each(['clinician', 'staff', 'patient'] as const)('%s may not create, patch or delete (403) and nothing changes', async (role) => {
    const api = await as(role);
    const before = (await admin('GET', '/v1/providers?limit=100')).body.data.length;
    expectError(await api('POST', '/v1/providers', { body: providerInput() }), 403, 'FORBIDDEN');
    expect((await admin('GET', '/v1/providers?limit=100')).body.data.length).toBe(before);
    const p = await seed();
    expectError(await api('PATCH', `/v1/providers/${p.id}`, { body: { specialty: 'Nope' }, headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expectError(await api('DELETE', `/v1/providers/${p.id}`, { headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expect((await admin('GET', `/v1/providers/${p.id}`)).body).toMatchObject({ version: 1, specialty: 'Cardiology' });
  });

  it.each(['admin', 'manager', 'clinician', 'staff', 'patient'] as const)('%s may read one and list', async (role) => {
    const p = await seed();
    const api = await as(role);
    const one = await api('GET', `/v1/providers/${p.id}`);
    expect(one.status).toBe(200);
    expect(one.body.npi).toBe(p.npi);
    const list = await api('GET', '/v1/providers?limit=100');
    expect(list.status).toBe(200);
    expect(list.body.data.map((x: { id: string }) => x.id)).toContain(p.id);
  });

  it('without a token every route is 401', async () => {
    const anon = client(srv.url);
    expectError(await anon('GET', '/v1/providers'), 401, 'UNAUTHENTICATED');
    expectError(await anon('POST', '/v1/providers', { body: providerInput() }), 401, 'UNAUTHENTICATED');
  });
});
