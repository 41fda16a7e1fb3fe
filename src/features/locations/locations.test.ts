// Locations over real HTTP: CRUD, ETag / If-Match, soft delete, pagination, the in-use rule and
// role permissions, on PGlite and (with TEST_DATABASE_URL) on the real PostgreSQL.
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../auth/principal.js';
import { client, expectError, type Client, type Res, ifMatch } from '../../../test/helpers/http.js';
import { locationInput, providerInput } from '../../../test/helpers/factories.js';
import { clientAs, startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

describe.each(storageModes())('locations CRUD on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
  });
  afterAll(() => srv?.close());

  const create = async (over: Record<string, unknown> = {}) => {
    const res = await api('POST', '/v1/locations', { body: locationInput(over) });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };

  it('creates with 201, Location and ETag W/"1", and reads back exactly what was saved', async () => {
    const input = locationInput({ name: 'North Clinic', timeZone: 'Europe/Berlin' });
    const res = await api('POST', '/v1/locations', { body: input });
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('location')).toBe(`/v1/locations/${res.body.id}`);
    expect(res.body).toEqual({ ...input, id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/), version: 1, createdAt: expect.any(String), updatedAt: expect.any(String) });
    expect(res.body.createdAt).toBe(res.body.updatedAt);
    expect(new Date(res.body.createdAt).toISOString()).toBe(res.body.createdAt);

    const got = await api('GET', `/v1/locations/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBe('W/"1"');
    expect(got.body).toEqual(res.body);
  });

  it('creates without an address, and the response has no address', async () => {
    const res = await api('POST', '/v1/locations', { body: { name: 'Bare', timeZone: 'UTC' } });
    expect(res.status).toBe(201);
    expect(res.body).not.toHaveProperty('address');
    expect((await api('GET', `/v1/locations/${res.body.id}`)).body).toEqual(res.body);
  });

  it('GET of an unknown id is 404 NOT_FOUND and a malformed id is 400', async () => {
    expectError(await api('GET', `/v1/locations/${uuidv7()}`), 404, 'NOT_FOUND');
    const err = expectError(await api('GET', '/v1/locations/not-a-uuid'), 400, 'VALIDATION_FAILED');
    expect(err.details?.map((d) => d.path)).toContain('/params/id');
    // Other spellings of a UUID are not ids this API issues: 400, never a database error.
    const loc = await create();
    expectError(await api('GET', `/v1/locations/urn:uuid:${loc.id}`), 400, 'VALIDATION_FAILED');
    expectError(await api('DELETE', `/v1/locations/urn:uuid:${loc.id}`, { headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
  });

  it('PATCH is a merge patch that needs If-Match: 428 without, 412 when stale, 200 with version +1', async () => {
    const loc = await create();
    const patch = { name: 'Renamed Clinic', address: { city: 'Evanston' } };
    expectError(await api('PATCH', `/v1/locations/${loc.id}`, { body: patch }), 428, 'PRECONDITION_REQUIRED');
    expectError(await api('PATCH', `/v1/locations/${loc.id}`, { body: patch, headers: ifMatch(2) }), 412, 'VERSION_CONFLICT');
    expect((await api('GET', `/v1/locations/${loc.id}`)).body).toEqual(loc); // nothing changed yet

    const ok = await api('PATCH', `/v1/locations/${loc.id}`, { body: patch, headers: { ...ifMatch(1), 'content-type': 'application/merge-patch+json' } });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.headers.get('etag')).toBe('W/"2"');
    // Nested objects merge: only city changes, the other address fields stay.
    expect(ok.body).toEqual({ ...loc, name: 'Renamed Clinic', address: { ...loc.address, city: 'Evanston' }, version: 2, updatedAt: expect.any(String) });
    expect(Date.parse(ok.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(loc.updatedAt));
    expect(ok.body.createdAt).toBe(loc.createdAt);

    const got = await api('GET', `/v1/locations/${loc.id}`);
    expect(got.headers.get('etag')).toBe('W/"2"');
    expect(got.body).toEqual(ok.body);

    // The old version is now stale; the 412 names the current one.
    const stale = await api('PATCH', `/v1/locations/${loc.id}`, { body: { name: 'Again' }, headers: ifMatch(1) });
    expectError(stale, 412, 'VERSION_CONFLICT');
    expect(stale.headers.get('etag')).toBe('W/"2"');

    // null removes an optional member
    const removed = await api('PATCH', `/v1/locations/${loc.id}`, { body: { address: null }, headers: ifMatch(2) });
    expect(removed.status).toBe(200);
    expect(removed.body.version).toBe(3);
    expect(removed.body).not.toHaveProperty('address');
  });

  it('PATCH of an unknown location is 404; a malformed If-Match is 400 MALFORMED_REQUEST', async () => {
    expectError(await api('PATCH', `/v1/locations/${uuidv7()}`, { body: { name: 'X' }, headers: ifMatch(1) }), 404, 'NOT_FOUND');
    const loc = await create();
    expectError(await api('PATCH', `/v1/locations/${loc.id}`, { body: { name: 'X' }, headers: { 'if-match': 'garbage' } }), 400, 'MALFORMED_REQUEST');
    expect((await api('GET', `/v1/locations/${loc.id}`)).body.version).toBe(1);
  });

  it('DELETE is soft and needs If-Match: 428, 412, 204, then 404 everywhere', async () => {
    const loc = await create();
    expectError(await api('DELETE', `/v1/locations/${loc.id}`), 428, 'PRECONDITION_REQUIRED');
    expectError(await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(7) }), 412, 'VERSION_CONFLICT');
    expect((await api('GET', `/v1/locations/${loc.id}`)).status).toBe(200);

    const del = await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');

    expectError(await api('GET', `/v1/locations/${loc.id}`), 404, 'NOT_FOUND');
    expectError(await api('PATCH', `/v1/locations/${loc.id}`, { body: { name: 'Ghost' }, headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expectError(await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) }), 404, 'NOT_FOUND');
    const list = await api('GET', '/v1/locations?limit=100');
    expect(list.body.data.map((l: { id: string }) => l.id)).not.toContain(loc.id);
  });

  it('lists with keyset cursor pagination in creation order, without gaps or repeats', async () => {
    const tenant = await srv.newTenant();
    const own = client(srv.url, await srv.token({ tenant, roles: ['manager'] }));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await own('POST', '/v1/locations', { body: locationInput({ name: `Site ${i}` }) })).body.id);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Res = await own('GET', `/v1/locations?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.page.limit).toBe(2);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((l: { id: string }) => l.id));
      cursor = res.body.page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids);

    const all = await own('GET', '/v1/locations');
    expect(all.body.page).toEqual({ limit: 20, nextCursor: null });
    expect(all.body.data.map((l: { name: string }) => l.name)).toEqual(['Site 0', 'Site 1', 'Site 2', 'Site 3', 'Site 4']);

    // A page that ends exactly at the last row has no next cursor.
    expect((await own('GET', '/v1/locations?limit=5')).body.page.nextCursor).toBeNull();
  });

  it('rejects bad list parameters with 400', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'unknown=1']) {
      expectError(await api('GET', `/v1/locations?${q}`), 400, 'VALIDATION_FAILED');
    }
    const err = expectError(await api('GET', '/v1/locations?cursor=not-a-cursor'), 400, 'VALIDATION_FAILED');
    expect(err.details).toEqual([expect.objectContaining({ path: '/query/cursor' })]);
  });

  it('keeps tenants apart: another tenant gets 404 and an empty list', async () => {
    const loc = await create();
    const tenant = await srv.newTenant();
    const other = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    expectError(await other('GET', `/v1/locations/${loc.id}`), 404, 'NOT_FOUND');
    expectError(await other('PATCH', `/v1/locations/${loc.id}`, { body: { name: 'Hijack' }, headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expectError(await other('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expect((await other('GET', '/v1/locations')).body.data).toEqual([]);
    expect((await api('GET', `/v1/locations/${loc.id}`)).body).toEqual(loc);
  });

  it('refuses to delete a location assigned to a live provider (409), until it is unassigned', async () => {
    const loc = await create();
    const other = await create({ name: 'Elsewhere' });
    const p = (await api('POST', '/v1/providers', { body: providerInput({ locationIds: [other.id, loc.id] }) })).body;
    expect(p.locationIds).toEqual([other.id, loc.id]);

    expectError(await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) }), 409, 'CONFLICT');
    const still = await api('GET', `/v1/locations/${loc.id}`);
    expect(still.status).toBe(200);
    expect(still.body.version).toBe(1);

    const unassigned = await api('PATCH', `/v1/providers/${p.id}`, { body: { locationIds: [other.id] }, headers: ifMatch(1) });
    expect(unassigned.status, unassigned.text).toBe(200);
    expect((await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) })).status).toBe(204);
    expectError(await api('GET', `/v1/locations/${loc.id}`), 404, 'NOT_FOUND');
    // The other location is still in use.
    expectError(await api('DELETE', `/v1/locations/${other.id}`, { headers: ifMatch(1) }), 409, 'CONFLICT');
  });

  it('allows deleting a location once the provider assigned to it is deleted', async () => {
    const loc = await create();
    const p = (await api('POST', '/v1/providers', { body: providerInput({ locationIds: [loc.id] }) })).body;
    expectError(await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) }), 409, 'CONFLICT');
    expect((await api('DELETE', `/v1/providers/${p.id}`, { headers: ifMatch(1) })).status).toBe(204);
    expect((await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) })).status).toBe(204);
  });

  it('allows deleting a location once its provider\'s locationIds are patched to []', async () => {
    const loc = await create();
    const p = (await api('POST', '/v1/providers', { body: providerInput({ locationIds: [loc.id] }) })).body;
    expectError(await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) }), 409, 'CONFLICT');
    const patched = await api('PATCH', `/v1/providers/${p.id}`, { body: { locationIds: [] }, headers: ifMatch(1) });
    expect(patched.status).toBe(200);
    expect(patched.body.locationIds).toEqual([]);
    expect((await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) })).status).toBe(204);
    expect((await api('GET', `/v1/providers/${p.id}`)).body.locationIds).toEqual([]);
  });

  it('never leaves a deleted location assigned when deletes race provider writes', async () => {
    for (let round = 0; round < 5; round++) {
      const loc = await create();
      const [del, ...creates] = await Promise.all([
        api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) }),
        ...Array.from({ length: 8 }, () => api('POST', '/v1/providers', { body: providerInput({ locationIds: [loc.id] }) })),
      ]);
      const created = creates.filter((r) => r.status === 201).length;
      for (const r of creates) expect([201, 400]).toContain(r.status);
      expect([204, 409]).toContain(del!.status);
      // Either the location survived, or no provider was assigned to it.
      if (del!.status === 204) expect(created).toBe(0);
      else expect(created).toBeGreaterThan(0);
      const live = await api('GET', `/v1/providers?locationId=${loc.id}&limit=100`);
      expect(live.body.data).toHaveLength(created);
    }
  });
});

describe.each(storageModes())('locations permissions on %s', (mode) => {
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

  const seed = async () => (await admin('POST', '/v1/locations', { body: locationInput() })).body as { id: string; version: number };

  it.each(['admin', 'manager'] as const)('%s may create and patch', async (role) => {
    const api = await as(role);
    const res = await api('POST', '/v1/locations', { body: locationInput({ name: `By ${role}` }) });
    expect(res.status).toBe(201);
    const patched = await api('PATCH', `/v1/locations/${res.body.id}`, { body: { name: `Patched by ${role}` }, headers: ifMatch(1) });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe(`Patched by ${role}`);
  });

  it.each(['clinician', 'staff', 'patient'] as const)('%s may not create or patch (403) and nothing changes', async (role) => {
    const api = await as(role);
    const before = (await admin('GET', '/v1/locations?limit=100')).body.data.length;
    expectError(await api('POST', '/v1/locations', { body: locationInput() }), 403, 'FORBIDDEN');
    expect((await admin('GET', '/v1/locations?limit=100')).body.data.length).toBe(before);
    const loc = await seed();
    expectError(await api('PATCH', `/v1/locations/${loc.id}`, { body: { name: 'Nope' }, headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expectError(await api('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expect((await admin('GET', `/v1/locations/${loc.id}`)).body).toMatchObject({ version: 1, name: 'Test Clinic' });
  });

  it('only admin may delete: manager gets 403, admin 204', async () => {
    const loc = await seed();
    expectError(await (await as('manager'))('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expect((await admin('GET', `/v1/locations/${loc.id}`)).status).toBe(200);
    expect((await admin('DELETE', `/v1/locations/${loc.id}`, { headers: ifMatch(1) })).status).toBe(204);
  });

  it.each(['admin', 'manager', 'clinician', 'staff', 'patient'] as const)('%s may read one and list', async (role) => {
    const loc = await seed();
    const api = await as(role);
    const one = await api('GET', `/v1/locations/${loc.id}`);
    expect(one.status).toBe(200);
    expect(one.body.id).toBe(loc.id);
    const list = await api('GET', '/v1/locations?limit=100');
    expect(list.status).toBe(200);
    expect(list.body.data.map((l: { id: string }) => l.id)).toContain(loc.id);
  });

  it('without a token every route is 401', async () => {
    const anon = client(srv.url);
    expectError(await anon('GET', '/v1/locations'), 401, 'UNAUTHENTICATED');
    expectError(await anon('POST', '/v1/locations', { body: locationInput() }), 401, 'UNAUTHENTICATED');
  });
});
