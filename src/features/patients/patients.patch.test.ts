// JSON merge patch (RFC 7396) on PATCH /v1/patients/:id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client, type Res } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const MERGE = 'application/merge-patch+json';

describe.each(storageModes())('patients merge patch on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
  });
  afterAll(() => srv?.close());

  async function create(over: Record<string, unknown> = {}) {
    const res = await api('POST', '/v1/patients', { body: patientInput(over) });
    expect(res.status).toBe(201);
    return res.body;
  }

  const patch = (id: string, body: unknown, ifMatch = 'W/"1"', contentType = MERGE) =>
    api('PATCH', `/v1/patients/${id}`, { body, headers: { 'if-match': ifMatch, 'content-type': contentType } });

  /** Asserts 200, version 2 and ETag W/"2", and that GET returns the same body. */
  async function applied(res: Res, id: string) {
    expect(res.status, res.text).toBe(200);
    expect(res.body.version).toBe(2);
    expect(res.headers.get('etag')).toBe('W/"2"');
    const got = await api('GET', `/v1/patients/${id}`);
    expect(got.body).toEqual(res.body);
    return res.body;
  }

  /** Asserts the record is exactly as it was before a refused PATCH (same body, version and ETag). */
  async function unchanged(before: { id: string; version: number }) {
    const got = await api('GET', `/v1/patients/${before.id}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBe(`W/"${before.version}"`);
    expect(got.body).toEqual(before);
  }

  const paths = (res: Res) => expectError(res, 400, 'VALIDATION_FAILED').details?.map((d) => d.path) ?? [];

  it('merges nested objects: {"name":{"family":"X"}} changes family and keeps given', async () => {
    const p = await create();
    const after = await applied(await patch(p.id, { name: { family: 'Xavier' } }), p.id);
    expect(after.name).toEqual({ given: ['Ana', 'Lucía'], family: 'Xavier' });
    // everything else is untouched
    const { name: _n1, version: _v1, updatedAt: _u1, ...restBefore } = p;
    const { name: _n2, version: _v2, updatedAt: _u2, ...restAfter } = after;
    expect(restAfter).toEqual(restBefore);
    expect(Date.parse(after.updatedAt)).toBeGreaterThanOrEqual(Date.parse(p.updatedAt));
  });

  it('merges nested address fields and null removes one nested field only', async () => {
    const p = await create();
    const after = await applied(await patch(p.id, { address: { city: null, state: 'WI' } }), p.id);
    expect(after.address).toEqual({ line: ['1 Test St'], state: 'WI', postalCode: '62701', country: 'US' });
  });

  it('null removes an optional field: email', async () => {
    const p = await create();
    const after = await applied(await patch(p.id, { email: null }), p.id);
    expect(after).not.toHaveProperty('email');
    expect(after.phone).toBe(p.phone);
  });

  it('null removes an optional field: address', async () => {
    const p = await create();
    const after = await applied(await patch(p.id, { address: null, phone: null }), p.id);
    expect(after).not.toHaveProperty('address');
    expect(after).not.toHaveProperty('phone');
    expect(after.email).toBe(p.email);
  });

  it('null on identifiers empties them (the resource always has the array)', async () => {
    const p = await create();
    const after = await applied(await patch(p.id, { identifiers: null }), p.id);
    expect(after.identifiers).toEqual([]);
  });

  it('a removed optional field can be set again', async () => {
    const p = await create();
    await applied(await patch(p.id, { email: null }), p.id);
    const res = await patch(p.id, { email: 'again@example.org' }, 'W/"2"');
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(3);
    expect(res.body.email).toBe('again@example.org');
  });

  it.each([
    ['birthDate', { birthDate: null }, '/birthDate'],
    ['gender', { gender: null }, '/gender'],
    ['name', { name: null }, '/name'],
    ['name.family', { name: { family: null } }, '/name/family'],
    ['name.given', { name: { given: null } }, '/name/given'],
  ])('null on the required field %s is 400 VALIDATION_FAILED and changes nothing', async (_f, body, path) => {
    const p = await create();
    expect(paths(await patch(p.id, body))).toContain(path);
    await unchanged(p);
  });

  it('replaces arrays wholesale: identifiers', async () => {
    const p = await create({
      identifiers: [
        { system: 'urn:test:a', value: 'A-1' },
        { system: 'urn:test:b', value: 'B-1' },
      ],
    });
    const after = await applied(await patch(p.id, { identifiers: [{ system: 'urn:test:c', value: 'C-1' }] }), p.id);
    expect(after.identifiers).toEqual([{ system: 'urn:test:c', value: 'C-1' }]);
  });

  it('replaces arrays wholesale: name.given and address.line', async () => {
    const p = await create({ address: { line: ['1 Test St', 'Apt 2'], city: 'Springfield' } });
    const after = await applied(await patch(p.id, { name: { given: ['Eva'] }, address: { line: ['9 New Rd'] } }), p.id);
    expect(after.name).toEqual({ given: ['Eva'], family: 'Núñez' });
    expect(after.address).toEqual({ line: ['9 New Rd'], city: 'Springfield' });
  });

  it('a renamed patient is found by the new name and no longer by the old one', async () => {
    const p = await create({ name: { given: ['Quillon'], family: 'Zebedee' } });
    await applied(await patch(p.id, { name: { family: 'Yarrowby' } }), p.id);
    const byNew = await api('GET', '/v1/patients?name=yarrow');
    expect(byNew.body.data.map((x: { id: string }) => x.id)).toEqual([p.id]);
    const byOld = await api('GET', '/v1/patients?name=zebedee');
    expect(byOld.body.data).toEqual([]);
    const byGiven = await api('GET', '/v1/patients?name=quillon');
    expect(byGiven.body.data.map((x: { id: string }) => x.id)).toEqual([p.id]);
  });

  it.each(['application/json', MERGE, `${MERGE}; charset=utf-8`, 'application/json; charset=utf-8'])('accepts Content-Type %s', async (ct) => {
    const p = await create();
    const after = await applied(await patch(p.id, { gender: 'other' }, 'W/"1"', ct), p.id);
    expect(after.gender).toBe('other');
  });

  it('refuses other content types with 415 UNSUPPORTED_MEDIA_TYPE and changes nothing', async () => {
    const p = await create();
    expectError(
      await api('PATCH', `/v1/patients/${p.id}`, { raw: JSON.stringify({ gender: 'other' }), headers: { 'if-match': 'W/"1"', 'content-type': 'text/plain' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    await unchanged(p);
  });

  it('an empty patch {} is 400 VALIDATION_FAILED and changes nothing', async () => {
    const p = await create();
    expectError(await patch(p.id, {}), 400, 'VALIDATION_FAILED');
    await unchanged(p);
  });

  it.each([
    ['top-level', { ssn: '123-45-6789' }, '/ssn'],
    ['nested in name', { name: { middle: 'Q' } }, '/name/middle'],
    ['nested in address', { address: { planet: 'Mars' } }, '/address/planet'],
    ['server-managed id', { id: '01890a5d-ac96-774b-bcce-b302099a8057' }, '/id'],
    ['server-managed version', { version: 7 }, '/version'],
    ['server-managed createdAt', { createdAt: '2020-01-01T00:00:00.000Z' }, '/createdAt'],
  ])('an unknown field (%s) is 400 VALIDATION_FAILED and changes nothing', async (_what, body, path) => {
    const p = await create();
    expect(paths(await patch(p.id, body))).toContain(path);
    await unchanged(p);
  });

  it.each([
    ['a future birthDate (business rule)', { birthDate: '2999-01-01' }, '/birthDate'],
    ['a birthDate before 1850', { birthDate: '1849-12-31' }, '/birthDate'],
    ['an impossible birthDate', { birthDate: '2023-02-30' }, '/birthDate'],
    ['an invalid email', { email: 'not-an-email' }, '/email'],
    ['an empty given array', { name: { given: [] } }, '/name/given'],
    ['a whitespace-only family', { name: { family: '   ' } }, '/name/family'],
    ['a wrong type', { active: 'false' }, '/active'],
    ['a bad identifier system', { identifiers: [{ system: 'not a uri', value: 'x' }] }, '/identifiers/0/system'],
  ])('a patch producing %s is 400 VALIDATION_FAILED and changes nothing', async (_what, body, path) => {
    const p = await create();
    expect(paths(await patch(p.id, body))).toContain(path);
    await unchanged(p);
  });

  it.each([
    ['an array', '[]'],
    ['a string', '"gender"'],
    ['null', 'null'],
    ['a number', '1'],
  ])('a patch body that is %s is 400 VALIDATION_FAILED on / and changes nothing', async (_what, raw) => {
    const p = await create();
    const res = await api('PATCH', `/v1/patients/${p.id}`, { raw, headers: { 'if-match': 'W/"1"', 'content-type': MERGE } });
    expect(paths(res)).toEqual(['/']);
    await unchanged(p);
  });

  it('unparsable JSON is 400 MALFORMED_REQUEST, without echoing the body, and changes nothing', async () => {
    const p = await create();
    const res = await api('PATCH', `/v1/patients/${p.id}`, { raw: '{"email": "leak-me@example.org",', headers: { 'if-match': 'W/"1"', 'content-type': MERGE } });
    expectError(res, 400, 'MALFORMED_REQUEST');
    expect(res.text).not.toContain('leak-me');
    await unchanged(p);
  });

  it('several patches in a row each bump the version by one', async () => {
    const p = await create();
    let version = 1;
    for (const body of [{ gender: 'male' }, { email: null }, { name: { given: ['Zed'] } }, { active: false }]) {
      const res = await patch(p.id, body, `W/"${version}"`);
      expect(res.status).toBe(200);
      version += 1;
      expect(res.body.version).toBe(version);
      expect(res.headers.get('etag')).toBe(`W/"${version}"`);
    }
    const got = await api('GET', `/v1/patients/${p.id}`);
    expect(got.body).toMatchObject({ version: 5, gender: 'male', name: { given: ['Zed'], family: 'Núñez' }, active: false });
    expect(got.body).not.toHaveProperty('email');
  });
});
