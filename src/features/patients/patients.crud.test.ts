import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client, type Res } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe.each(storageModes())('patients CRUD on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  /** A manager may delete; the clinician client above may not. */
  let mgr: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    mgr = client(srv.url, await srv.token({ tenant, roles: ['manager'] }));
  });
  afterAll(() => srv?.close());

  /** Every live patient id of the tenant, walking all pages. */
  async function allIds(): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Res = await api('GET', `/v1/patients?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      ids.push(...res.body.data.map((p: { id: string }) => p.id));
      cursor = res.body.page.nextCursor;
    } while (cursor);
    return ids;
  }

  it('creates with 201, Location and ETag W/"1", and reads back exactly what was saved', async () => {
    const input = patientInput();
    const res = await api('POST', '/v1/patients', { body: input });
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('location')).toBe(`/v1/patients/${res.body.id}`);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ ...input, version: 1, active: true });
    expect(res.body.id).toMatch(UUIDV7);
    expect(res.body.createdAt).toMatch(ISO_UTC);
    expect(res.body.updatedAt).toBe(res.body.createdAt);
    const got = await api('GET', `/v1/patients/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBe('W/"1"');
    expect(got.body).toEqual(res.body);
  });

  it('creates with only the required fields: defaults active to true, identifiers to [], and omits the absent optional fields', async () => {
    const res = await api('POST', '/v1/patients', { body: { name: { given: ['Min'], family: 'Imal' }, birthDate: '2001-01-01', gender: 'unknown' } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: res.body.id,
      version: 1,
      name: { given: ['Min'], family: 'Imal' },
      birthDate: '2001-01-01',
      gender: 'unknown',
      identifiers: [],
      active: true,
      createdAt: res.body.createdAt,
      updatedAt: res.body.updatedAt,
    });
    const got = await api('GET', `/v1/patients/${res.body.id}`);
    expect(got.body).toEqual(res.body);
    expect(got.body).not.toHaveProperty('email');
    expect(got.body).not.toHaveProperty('address');
  });

  it('keeps active: false when created inactive', async () => {
    const res = await api('POST', '/v1/patients', { body: patientInput({ active: false }) });
    expect(res.status).toBe(201);
    expect(res.body.active).toBe(false);
    expect((await api('GET', `/v1/patients/${res.body.id}`)).body.active).toBe(false);
  });

  it('GET of an unknown id is 404 NOT_FOUND; a non-UUID id is 400 VALIDATION_FAILED on /params/id', async () => {
    expectError(await api('GET', '/v1/patients/01890a5d-ac96-774b-bcce-b302099a8057'), 404, 'NOT_FOUND');
    const err = expectError(await api('GET', '/v1/patients/not-a-uuid'), 400, 'VALIDATION_FAILED');
    expect(err.details?.map((d) => d.path)).toContain('/params/id');
  });

  it('lists as { data, page: { limit, nextCursor } } with the default limit 20', async () => {
    const { body: created } = await api('POST', '/v1/patients', { body: patientInput() });
    const res = await api('GET', '/v1/patients');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['data', 'page']);
    expect(Object.keys(res.body.page).sort()).toEqual(['limit', 'nextCursor']);
    expect(res.body.page.limit).toBe(20);
    expect(Array.isArray(res.body.data)).toBe(true);
    const listed = res.body.data.find((p: { id: string }) => p.id === created.id);
    expect(listed).toEqual(created);
    // fewer than 20 patients so far: a single page
    expect(res.body.data.length).toBeLessThan(20);
    expect(res.body.page.nextCursor).toBeNull();

    const one = await api('GET', '/v1/patients?limit=1');
    expect(one.status).toBe(200);
    expect(one.body.data).toHaveLength(1);
    expect(one.body.page).toEqual({ limit: 1, nextCursor: expect.any(String) });
  });

  it('DELETE is soft and needs If-Match: 428 without, 412 stale, 204 applied; then 404 everywhere', async () => {
    const { body: p } = await api('POST', '/v1/patients', { body: patientInput() });
    const url = `/v1/patients/${p.id}`;

    expectError(await mgr('DELETE', url), 428, 'PRECONDITION_REQUIRED');
    const stale = await mgr('DELETE', url, { headers: { 'if-match': 'W/"2"' } });
    expectError(stale, 412, 'VERSION_CONFLICT');
    expect(stale.headers.get('etag')).toBe('W/"1"');
    // neither refusal changed anything
    const still = await api('GET', url);
    expect(still.status).toBe(200);
    expect(still.body).toEqual(p);
    expect(await allIds()).toContain(p.id);

    const del = await mgr('DELETE', url, { headers: { 'if-match': 'W/"1"' } });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');

    expectError(await api('GET', url), 404, 'NOT_FOUND');
    expect(await allIds()).not.toContain(p.id);
    // the soft delete bumped the version to 2, but the record is gone for every verb and version
    for (const v of ['1', '2', '3']) {
      expectError(await api('PATCH', url, { body: { phone: '+1 555 000 1111' }, headers: { 'if-match': `W/"${v}"` } }), 404, 'NOT_FOUND');
      expectError(await mgr('DELETE', url, { headers: { 'if-match': `W/"${v}"` } }), 404, 'NOT_FOUND');
    }
  });

  it('deleting one patient leaves the others untouched', async () => {
    const { body: a } = await api('POST', '/v1/patients', { body: patientInput() });
    const { body: b } = await api('POST', '/v1/patients', { body: patientInput() });
    expect((await mgr('DELETE', `/v1/patients/${a.id}`, { headers: { 'if-match': 'W/"1"' } })).status).toBe(204);
    const got = await api('GET', `/v1/patients/${b.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(b);
    const ids = await allIds();
    expect(ids).toContain(b.id);
    expect(ids).not.toContain(a.id);
  });

  it('PATCH needs If-Match: 428 without, 412 when stale, version +1 when applied', async () => {
    const { body: p } = await api('POST', '/v1/patients', { body: patientInput() });
    expectError(await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 999 0000' } }), 428, 'PRECONDITION_REQUIRED');
    const ok = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 999 0000' }, headers: { 'if-match': 'W/"1"', 'content-type': 'application/merge-patch+json' } });
    expect(ok.status).toBe(200);
    expect(ok.body.version).toBe(2);
    expect(ok.body.phone).toBe('+1 555 999 0000');
    expect(ok.body.createdAt).toBe(p.createdAt);
    expect(ok.headers.get('etag')).toBe('W/"2"');
    const stale = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 111 0000' }, headers: { 'if-match': 'W/"1"' } });
    expectError(stale, 412, 'VERSION_CONFLICT');
    expect(stale.headers.get('etag')).toBe('W/"2"');
    // a version from the future is just as stale
    expectError(await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 111 0000' }, headers: { 'if-match': 'W/"9"' } }), 412, 'VERSION_CONFLICT');
    const got = await api('GET', `/v1/patients/${p.id}`);
    expect(got.headers.get('etag')).toBe('W/"2"');
    expect(got.body).toEqual(ok.body);
  });

  it('PATCH of an unknown id is 404 NOT_FOUND', async () => {
    expectError(
      await api('PATCH', '/v1/patients/01890a5d-ac96-774b-bcce-b302099a8057', { body: { phone: '+1 555 111 0000' }, headers: { 'if-match': 'W/"1"' } }),
      404,
      'NOT_FOUND',
    );
  });

  it.each(['abc', '*', '1', 'W/1', 'W/"0"', 'W/"-1"', 'W/"1", W/"2"', 'W/"abc"', '"', 'W/"99999999999"'])(
    'a malformed If-Match %j is 400 MALFORMED_REQUEST on PATCH and DELETE, and changes nothing',
    async (ifMatch) => {
      const { body: p } = await api('POST', '/v1/patients', { body: patientInput() });
      const url = `/v1/patients/${p.id}`;
      expectError(await api('PATCH', url, { body: { phone: '+1 555 222 0000' }, headers: { 'if-match': ifMatch } }), 400, 'MALFORMED_REQUEST');
      expectError(await mgr('DELETE', url, { headers: { 'if-match': ifMatch } }), 400, 'MALFORMED_REQUEST');
      const got = await api('GET', url);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(p);
    },
  );
});
