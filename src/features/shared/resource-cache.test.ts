import { createServer } from 'node:net';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { rowsOf } from '../../../test/helpers/db.js';
import { fixture, importActive } from '../../../test/helpers/questionnaires.js';
import { resourceCacheKey } from './resource-cache.js';

const closedPort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

describe.each(storageModes())('write-through resource cache on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
  });
  afterAll(() => srv?.close());

  it('serves reads by id from the cache and writes every committed change through', async () => {
    const p = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    expect((await api('GET', `/v1/patients/${p.id}`)).body.version).toBe(1);
    // Change the row behind the cache's back: a cached read does not see it…
    await srv.deps.db.tx(tenant, (q) => q.execute(sql`update patients set email = 'behind@example.org' where tenant_id = ${tenant} and id = ${p.id}`));
    const hits = srv.deps.cache.stats().hits;
    expect((await api('GET', `/v1/patients/${p.id}`)).body.email).toBe(p.email);
    expect(srv.deps.cache.stats().hits).toBe(hits + 1);
    // …and a change through the API replaces the cached version at once (read-your-writes).
    const patched = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 222 3333' }, headers: { 'if-match': 'W/"1"' } });
    expect(patched.body.version).toBe(2);
    const read = await api('GET', `/v1/patients/${p.id}`);
    expect(read.body).toEqual(patched.body);
    expect(read.headers.get('etag')).toBe('W/"2"');
  });

  it('a PATCH starts from the version it names: the cached copy, or the database when the cache is behind; a change landing in between is a 412', async () => {
    const p = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    expect((await api('GET', `/v1/patients/${p.id}`)).body.version).toBe(1); // cached at version 1
    // Version 2 commits behind the cache's back, as if its write-through had been lost.
    await srv.deps.db.tx(tenant, (q) => q.execute(sql`update patients set email = 'v2@example.org', version = 2 where tenant_id = ${tenant} and id = ${p.id}`));
    // The cache still holds version 1, so If-Match W/"1" passes the first check; the compare-and-set does not.
    const stale = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 000 1111' }, headers: { 'if-match': 'W/"1"' } });
    expectError(stale, 412, 'VERSION_CONFLICT');
    expect(stale.headers.get('etag')).toBe('W/"2"');
    // If-Match W/"2" is newer than the cached copy: the change starts from the database's version 2.
    const ok = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 000 1111' }, headers: { 'if-match': 'W/"2"' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ version: 3, email: 'v2@example.org', phone: '+1 555 000 1111' });
    expect(await rowsOf(srv, tenant, sql`select version, email, phone from patients where id = ${p.id}`)).toEqual([{ version: 3, email: 'v2@example.org', phone: '+1 555 000 1111' }]);
  });

  it('never lets an older version overwrite a newer one, nor bring back a deleted resource', async () => {
    const v1 = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    const v2 = (await api('PATCH', `/v1/patients/${v1.id}`, { body: { phone: '+1 555 444 5555' }, headers: { 'if-match': 'W/"1"' } })).body;
    await srv.deps.resources.put(tenant, 'patients', v1); // a slow reader arriving late with version 1
    expect((await api('GET', `/v1/patients/${v1.id}`)).body).toEqual(v2);
    expect((await api('DELETE', `/v1/patients/${v1.id}`, { headers: { 'if-match': 'W/"2"' } })).status).toBe(204);
    await srv.deps.resources.put(tenant, 'patients', v2); // a late write-through of the last live version
    expectError(await api('GET', `/v1/patients/${v1.id}`), 404, 'NOT_FOUND');
  });

  // A change's statement returns only the new version: the answer (and the cache entry) is built
  // from the version changed plus the changes. It must be what the database now holds, to the
  // byte for questionnaire responses (whose jsonb comes back in the database's key order).
  it('answers and caches a change exactly as the database then holds it', async () => {
    const fromDb = async (type: string, id: string) => {
      expect(await srv.deps.cache.delete(resourceCacheKey(tenant, type, id))).toBe(true);
      return api('GET', `/v1/${type}/${id}`);
    };
    const p = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    const patch = { address: { postalCode: '02139', line: ['1 Ø St', 'Apt 2'], city: 'Cambridge', country: 'US' }, name: { family: 'Ñúñez', given: ['Zoë'] }, email: null };
    const patched = await api('PATCH', `/v1/patients/${p.id}`, { body: patch, headers: { 'if-match': 'W/"1"' } });
    expect(patched.status).toBe(200);
    expect(patched.body).not.toHaveProperty('email');
    const read = await fromDb('patients', p.id);
    expect(read.body).toEqual(patched.body);
    expect(read.headers.get('etag')).toBe('W/"2"');

    const admin = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    const qid = (await importActive(admin, 'questionnaires/phq9-lhcforms.questionnaire.json')).id;
    const r = (await api('POST', '/v1/questionnaire-responses', { body: { questionnaireId: qid, patientId: p.id } })).body;
    const items = fixture('questionnaires/phq9-lhcforms.questionnaireresponse.json').item;
    const saved = await api('PATCH', `/v1/questionnaire-responses/${r.id}`, { body: { item: items }, headers: { 'if-match': 'W/"1"' } });
    expect(saved.status).toBe(200);
    expect((await fromDb('questionnaire-responses', r.id)).text).toBe(saved.text);
    const submitted = await api('POST', `/v1/questionnaire-responses/${r.id}/submit`, { headers: { 'if-match': 'W/"2"' } });
    expect(submitted.status).toBe(200);
    expect(submitted.body).toMatchObject({ status: 'completed', version: 3, score: { total: expect.any(Number) } });
    expect((await fromDb('questionnaire-responses', r.id)).text).toBe(submitted.text);
  });

  it('keeps tenants apart: a cached resource is not visible to another tenant', async () => {
    const p = (await api('POST', '/v1/locations', { body: { name: 'Cached Clinic', timeZone: 'UTC' } })).body;
    expect((await api('GET', `/v1/locations/${p.id}`)).status).toBe(200);
    const other = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
    expectError(await other('GET', `/v1/locations/${p.id}`), 404, 'NOT_FOUND');
  });

  it('checks roles and patient scope before the cache: a cached record is still 404 for another patient', async () => {
    const mine = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    const theirs = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    expect((await api('GET', `/v1/patients/${theirs.id}`)).status).toBe(200); // now cached
    const patient = client(srv.url, await srv.token({ tenant, roles: ['patient'], patientId: mine.id }));
    expect((await patient('GET', `/v1/patients/${mine.id}`)).status).toBe(200);
    expectError(await patient('GET', `/v1/patients/${theirs.id}`), 404, 'NOT_FOUND');
  });
});

describe.each(storageModes())('with Redis unreachable on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode, { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` });
  });
  afterAll(() => srv?.close());

  it('every request still succeeds from PostgreSQL, and the failures are counted and logged', async () => {
    const api = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
    const started = Date.now();
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    expect(p.status).toBe(201);
    expect((await api('GET', `/v1/patients/${p.body.id}`)).body).toEqual(p.body);
    const patched = await api('PATCH', `/v1/patients/${p.body.id}`, { body: { active: false }, headers: { 'if-match': 'W/"1"' } });
    expect(patched.status).toBe(200);
    expect((await api('GET', `/v1/patients/${p.body.id}`)).body.version).toBe(2);
    expect((await api('DELETE', `/v1/patients/${p.body.id}`, { headers: { 'if-match': 'W/"2"' } })).status).toBe(204);
    expectError(await api('GET', `/v1/patients/${p.body.id}`), 404, 'NOT_FOUND');
    expect(Date.now() - started).toBeLessThan(10_000); // failing fast, not hanging on the cache
    expect(srv.deps.cache.stats().errors).toBeGreaterThan(0);
    expect(srv.logs.some((l) => l.includes('"level":"warn"') || l.includes('"level":"error"'))).toBe(true);
  });
});
