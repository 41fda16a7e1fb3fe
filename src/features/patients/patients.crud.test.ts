import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

describe.each(storageModes())('patients CRUD on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
  });
  afterAll(() => srv?.close());

  it('creates with 201, Location and ETag W/"1", and reads back exactly what was saved', async () => {
    const input = patientInput();
    const res = await api('POST', '/v1/patients', { body: input });
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('location')).toBe(`/v1/patients/${res.body.id}`);
    expect(res.body).toMatchObject({ ...input, version: 1, active: true });
    const got = await api('GET', `/v1/patients/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it('PATCH needs If-Match: 428 without, 412 when stale, version +1 when applied', async () => {
    const { body: p } = await api('POST', '/v1/patients', { body: patientInput() });
    expectError(await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 999 0000' } }), 428, 'PRECONDITION_REQUIRED');
    const ok = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 999 0000' }, headers: { 'if-match': 'W/"1"', 'content-type': 'application/merge-patch+json' } });
    expect(ok.status).toBe(200);
    expect(ok.body.version).toBe(2);
    expect(ok.headers.get('etag')).toBe('W/"2"');
    expectError(await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 111 0000' }, headers: { 'if-match': 'W/"1"' } }), 412, 'VERSION_CONFLICT');
  });
});
