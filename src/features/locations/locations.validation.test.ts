// Location input validation over real HTTP: every rejected request is 400 VALIDATION_FAILED with
// details naming the field, and creates or changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client, ifMatch } from '../../../test/helpers/http.js';
import { locationInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const paths = (err: { details?: { path: string }[] }) => (err.details ?? []).map((d) => d.path);

describe.each(storageModes())('location validation on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['manager'] }));
  });
  afterAll(() => srv?.close());

  const count = async () => (await api('GET', '/v1/locations?limit=100')).body.data.length as number;

  /** POSTs body, expects 400 naming every path in `expected`, and that no location was created. */
  async function rejected(body: unknown, expected: string[]) {
    const before = await count();
    const err = expectError(await api('POST', '/v1/locations', { body }), 400, 'VALIDATION_FAILED');
    for (const p of expected) expect(paths(err), JSON.stringify(err.details)).toContain(p);
    expect(await count()).toBe(before);
    return err;
  }

  it('requires name', async () => {
    const { name: _n, ...body } = locationInput();
    await rejected(body, ['/name']);
  });

  it('requires timeZone', async () => {
    const { timeZone: _t, ...body } = locationInput();
    await rejected(body, ['/timeZone']);
  });

  it.each(['Mars/Olympus', 'america/new_york', 'AMERICA/NEW_YORK', 'America/New_york', '', ' UTC', 'America/New_York ', '+05:00', 'Not a zone'])(
    'rejects the time zone %j',
    async (timeZone) => {
      await rejected(locationInput({ timeZone }), ['/timeZone']);
    },
  );

  // EST5EDT is a legacy POSIX-style name; it is valid only when the runtime's tz database lists it.
  const est5edtListed = Intl.supportedValuesOf('timeZone').includes('EST5EDT');
  it(`${est5edtListed ? 'accepts' : 'rejects'} EST5EDT as this runtime's tz database does`, async () => {
    const res = await api('POST', '/v1/locations', { body: locationInput({ timeZone: 'EST5EDT' }) });
    if (est5edtListed) expect(res.status).toBe(201);
    else expect(paths(expectError(res, 400, 'VALIDATION_FAILED'))).toEqual(['/timeZone']);
  });

  it.each(['UTC', 'Europe/Berlin', 'America/New_York', 'America/Argentina/Buenos_Aires', 'Asia/Kolkata', 'Europe/Kyiv', 'Pacific/Chatham'])(
    'accepts the time zone %s and stores it as sent',
    async (timeZone) => {
      const res = await api('POST', '/v1/locations', { body: locationInput({ timeZone }) });
      expect(res.status, res.text).toBe(201);
      expect(res.body.timeZone).toBe(timeZone);
      expect((await api('GET', `/v1/locations/${res.body.id}`)).body.timeZone).toBe(timeZone);
    },
  );

  it('rejects an address with an unknown property', async () => {
    await rejected(locationInput({ address: { line: ['1 Main St'], zip: '12345' } }), ['/address/zip']);
  });

  it('rejects an address with a malformed member', async () => {
    await rejected(locationInput({ address: { postalCode: '!!', line: ['a', 'b', 'c', 'd', 'e'] } }), ['/address/postalCode', '/address/line']);
  });

  it.each([
    ['a NUL', 'Clinic\u0000A'],
    ['a newline', 'Clinic\nA'],
    ['a tab', 'Clinic\tA'],
    ['an escape', 'Clinic\u001b[31m'],
    ['DEL', 'Clinic\u007f'],
    ['only whitespace', '   '],
    ['nothing', ''],
  ])('rejects a name with %s', async (_what, name) => {
    await rejected(locationInput({ name }), ['/name']);
  });

  it('rejects a name longer than 200 characters and accepts 200', async () => {
    await rejected(locationInput({ name: 'x'.repeat(201) }), ['/name']);
    expect((await api('POST', '/v1/locations', { body: locationInput({ name: 'x'.repeat(200) }) })).status).toBe(201);
  });

  it('rejects unknown top-level fields, including server-managed ones', async () => {
    await rejected(locationInput({ color: 'blue' }), ['/color']);
    await rejected(locationInput({ id: '0192f3c4-0000-7000-8000-000000000000' }), ['/id']);
    await rejected(locationInput({ version: 5 }), ['/version']);
  });

  it('rejects wrong types', async () => {
    await rejected({ name: 42, timeZone: ['UTC'], address: 'Main St' }, ['/name', '/timeZone', '/address']);
  });

  it('lists every problem of one request together', async () => {
    const err = await rejected({ name: 'Bad\u0007Name', timeZone: 'Mars/Olympus', address: { city: 'X', floor: 3 }, extra: true }, [
      '/name',
      '/timeZone',
      '/address/floor',
      '/extra',
    ]);
    expect(err.details!.every((d) => typeof d.message === 'string' && d.message.length > 0)).toBe(true);
  });

  it('rejects invalid PATCHes with 400 naming the field, and leaves the location unchanged', async () => {
    const loc = (await api('POST', '/v1/locations', { body: locationInput() })).body;
    const cases: [unknown, string][] = [
      [{ timeZone: 'Mars/Olympus' }, '/timeZone'],
      [{ timeZone: 'america/chicago' }, '/timeZone'],
      [{ timeZone: null }, '/timeZone'], // required: null cannot remove it
      [{ name: null }, '/name'],
      [{ name: 'Line\nBreak' }, '/name'],
      [{ address: { suite: '4B' } }, '/address/suite'],
      [{ owner: 'me' }, '/owner'],
      [{}, '/'],
    ];
    for (const [body, path] of cases) {
      const err = expectError(await api('PATCH', `/v1/locations/${loc.id}`, { body, headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
      expect(paths(err), JSON.stringify(body)).toContain(path);
    }
    const after = await api('GET', `/v1/locations/${loc.id}`);
    expect(after.body).toEqual(loc);
    expect(after.headers.get('etag')).toBe('W/"1"');
  });

  it('rejects a body that is not JSON, or not an object', async () => {
    const before = await count();
    expectError(await api('POST', '/v1/locations', { raw: '{"name":', headers: { 'content-type': 'application/json' } }), 400, 'MALFORMED_REQUEST');
    expectError(await api('POST', '/v1/locations', { body: [locationInput()] }), 400, 'VALIDATION_FAILED');
    expect(await count()).toBe(before);
  });
});
