// Provider business rules over real HTTP: NPI format, check digit and per-tenant uniqueness,
// locationIds referring to live locations of the same tenant, and the list filters.
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client, ifMatch } from '../../../test/helpers/http.js';
import { locationInput, providerInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const paths = (err: { details?: { path: string }[] }) => (err.details ?? []).map((d) => d.path);
const ids = (res: { body: { data: { id: string }[] } }) => res.body.data.map((x) => x.id);
const VALID_NPI = '1234567893';

describe.each(storageModes())('provider rules on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(() => srv?.close());

  /** A client on a fresh tenant, so fixed NPIs never collide across tests. */
  const freshTenant = async () => client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
  const count = async (api: Client) => (await api('GET', '/v1/providers?limit=100')).body.data.length as number;
  const newLocation = async (api: Client) => (await api('POST', '/v1/locations', { body: locationInput() })).body.id as string;

  async function rejected(api: Client, body: unknown, expected: string[]) {
    const before = await count(api);
    const err = expectError(await api('POST', '/v1/providers', { body }), 400, 'VALIDATION_FAILED');
    for (const p of expected) expect(paths(err), JSON.stringify(err.details)).toContain(p);
    expect(await count(api)).toBe(before);
    return err;
  }

  it.each(['123456789', '12345678931', '123456789a', ' 1234567893', '1234-56789', '', '１２３４５６７８９３'])('rejects the NPI %j (not 10 digits)', async (npi) => {
    await rejected(await freshTenant(), providerInput({ npi }), ['/npi']);
  });

  it('rejects a numeric or missing NPI', async () => {
    const api = await freshTenant();
    await rejected(api, providerInput({ npi: 1234567893 }), ['/npi']);
    const { npi: _n, ...rest } = providerInput();
    await rejected(api, rest, ['/npi']);
  });

  it('rejects 10 digits with a wrong Luhn check digit, and accepts the right one', async () => {
    const api = await freshTenant();
    const err = await rejected(api, providerInput({ npi: '1234567890' }), ['/npi']);
    expect(err.details).toHaveLength(1);
    for (const wrong of ['1234567891', '1234567892', '1234567894', '1234567899']) await rejected(api, providerInput({ npi: wrong }), ['/npi']);
    const ok = await api('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI }) });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.npi).toBe(VALID_NPI);
  });

  it('rejects a duplicate NPI within a tenant with 409, and creates nothing', async () => {
    const api = await freshTenant();
    expect((await api('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI }) })).status).toBe(201);
    const before = await count(api);
    expectError(await api('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI, name: { given: ['Other'], family: 'Person' } }) }), 409, 'CONFLICT');
    expect(await count(api)).toBe(before);
  });

  it('rejects a PATCH to another provider\'s NPI with 409 and leaves it unchanged; patching to its own NPI is fine', async () => {
    const api = await freshTenant();
    const a = (await api('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI }) })).body;
    const b = (await api('POST', '/v1/providers', { body: providerInput() })).body;
    expectError(await api('PATCH', `/v1/providers/${b.id}`, { body: { npi: a.npi }, headers: ifMatch(1) }), 409, 'CONFLICT');
    expect((await api('GET', `/v1/providers/${b.id}`)).body).toEqual(b);
    const same = await api('PATCH', `/v1/providers/${a.id}`, { body: { npi: a.npi, specialty: 'Pediatrics' }, headers: ifMatch(1) });
    expect(same.status, same.text).toBe(200);
    expect(same.body).toMatchObject({ npi: VALID_NPI, specialty: 'Pediatrics', version: 2 });
  });

  it('allows the same NPI in another tenant', async () => {
    const one = await freshTenant();
    const two = await freshTenant();
    expect((await one('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI }) })).status).toBe(201);
    const res = await two('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI }) });
    expect(res.status, res.text).toBe(201);
    expect(res.body.npi).toBe(VALID_NPI);
  });

  it('frees the NPI of a deleted provider for reuse, by create and by PATCH', async () => {
    const api = await freshTenant();
    const first = (await api('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI }) })).body;
    expect((await api('DELETE', `/v1/providers/${first.id}`, { headers: ifMatch(1) })).status).toBe(204);
    const second = await api('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI }) });
    expect(second.status, second.text).toBe(201);
    expect((await api('DELETE', `/v1/providers/${second.body.id}`, { headers: ifMatch(1) })).status).toBe(204);
    const third = (await api('POST', '/v1/providers', { body: providerInput() })).body;
    const patched = await api('PATCH', `/v1/providers/${third.id}`, { body: { npi: VALID_NPI }, headers: ifMatch(1) });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.npi).toBe(VALID_NPI);
  });

  it('of concurrent creates with one NPI exactly one succeeds, the rest get 409', async () => {
    const api = await freshTenant();
    const statuses = (await Promise.all(Array.from({ length: 10 }, () => api('POST', '/v1/providers', { body: providerInput({ npi: VALID_NPI }) })))).map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(9);
    expect(await count(api)).toBe(1);
  });

  it('rejects an unknown location id with the path of its index', async () => {
    const api = await freshTenant();
    const loc = await newLocation(api);
    const err = await rejected(api, providerInput({ locationIds: [loc, uuidv7()] }), ['/locationIds/1']);
    expect(paths(err)).toEqual(['/locationIds/1']);
  });

  it('rejects a location of another tenant', async () => {
    const api = await freshTenant();
    const other = await freshTenant();
    const foreign = await newLocation(other);
    const err = await rejected(api, providerInput({ locationIds: [foreign] }), ['/locationIds/0']);
    expect(paths(err)).toEqual(['/locationIds/0']);
  });

  it('rejects a deleted location, on create and on PATCH', async () => {
    const api = await freshTenant();
    const live = await newLocation(api);
    const gone = await newLocation(api);
    expect((await api('DELETE', `/v1/locations/${gone}`, { headers: ifMatch(1) })).status).toBe(204);
    await rejected(api, providerInput({ locationIds: [live, gone] }), ['/locationIds/1']);
    const p = (await api('POST', '/v1/providers', { body: providerInput({ locationIds: [live] }) })).body;
    const err = expectError(await api('PATCH', `/v1/providers/${p.id}`, { body: { locationIds: [gone] }, headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
    expect(paths(err)).toEqual(['/locationIds/0']);
    expect((await api('GET', `/v1/providers/${p.id}`)).body.locationIds).toEqual([live]);
  });

  it('rejects duplicate and malformed location ids', async () => {
    const api = await freshTenant();
    const loc = await newLocation(api);
    await rejected(api, providerInput({ locationIds: [loc, loc] }), ['/locationIds']);
    await rejected(api, providerInput({ locationIds: ['not-a-uuid'] }), ['/locationIds/0']);
    await rejected(api, providerInput({ locationIds: [`urn:uuid:${loc}`] }), ['/locationIds/0']);
    await rejected(api, providerInput({ locationIds: loc }), ['/locationIds']);
    const p = (await api('POST', '/v1/providers', { body: providerInput({ locationIds: [loc] }) })).body;
    expectError(await api('PATCH', `/v1/providers/${p.id}`, { body: { locationIds: [loc, loc] }, headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
    expect((await api('GET', `/v1/providers/${p.id}`)).body.version).toBe(1);
  });

  it('treats an upper-case location id as the same id: accepted, stored in lower case, and a repeat of its lower-case form', async () => {
    const api = await freshTenant();
    const loc = await newLocation(api);
    const created = await api('POST', '/v1/providers', { body: providerInput({ locationIds: [loc.toUpperCase()] }) });
    expect(created.status).toBe(201);
    expect(created.body.locationIds).toEqual([loc]);
    const err = await rejected(api, providerInput({ locationIds: [loc, loc.toUpperCase()] }), ['/locationIds/1']);
    expect(paths(err)).toEqual(['/locationIds/1']);
  });

  it('lists every problem together: bad check digit, unknown locations, unknown field', async () => {
    const api = await freshTenant();
    const err = await rejected(api, providerInput({ npi: '1234567890', locationIds: [uuidv7(), uuidv7()] }), ['/npi', '/locationIds/0', '/locationIds/1']);
    expect(paths(err).sort()).toEqual(['/locationIds/0', '/locationIds/1', '/npi']);
    await rejected(api, providerInput({ npi: '12', name: { given: ['A'] }, extra: 1 }), ['/npi', '/name/family', '/extra']);
  });
});

describe.each(storageModes())('provider list filters on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  let a: string;
  let b: string;
  const p: Record<string, string> = {};
  beforeAll(async () => {
    srv = await startServer(mode);
    api = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['manager'] }));
    a = (await api('POST', '/v1/locations', { body: locationInput({ name: 'A' }) })).body.id;
    b = (await api('POST', '/v1/locations', { body: locationInput({ name: 'B' }) })).body.id;
    const make = async (key: string, over: Record<string, unknown>) => {
      const res = await api('POST', '/v1/providers', { body: providerInput(over) });
      if (res.status !== 201) throw new Error(`seeding ${key}: ${res.status} ${res.text}`);
      p[key] = res.body.id;
    };
    await make('cardioA', { specialty: 'Cardiology', locationIds: [a] });
    await make('cardioAB', { specialty: 'CARDIOLOGY', locationIds: [a, b] });
    await make('dermB', { specialty: 'Dermatology', locationIds: [b] });
    await make('none', { specialty: undefined, locationIds: [] });
    await make('surgA', { specialty: 'Cardiology Surgery', locationIds: [a] });
    await make('gone', { specialty: 'Cardiology', locationIds: [a] });
    expect((await api('DELETE', `/v1/providers/${p.gone}`, { headers: ifMatch(1) })).status).toBe(204);
  });
  afterAll(() => srv?.close());

  const list = async (q: string) => {
    const res = await api('GET', `/v1/providers?${q}`);
    expect(res.status, res.text).toBe(200);
    return ids(res);
  };

  it('without filters lists every live provider', async () => {
    expect(await list('')).toEqual([p.cardioA, p.cardioAB, p.dermB, p.none, p.surgA]);
  });

  it('filters by locationId', async () => {
    expect(await list(`locationId=${a}`)).toEqual([p.cardioA, p.cardioAB, p.surgA]);
    expect(await list(`locationId=${b}`)).toEqual([p.cardioAB, p.dermB]);
    expect(await list(`locationId=${uuidv7()}`)).toEqual([]);
  });

  it('filters by specialty, case-insensitively and exactly', async () => {
    expect(await list('specialty=cardiology')).toEqual([p.cardioA, p.cardioAB]);
    expect(await list('specialty=CaRdIoLoGy')).toEqual([p.cardioA, p.cardioAB]);
    expect(await list(`specialty=${encodeURIComponent('Cardiology Surgery')}`)).toEqual([p.surgA]);
    expect(await list('specialty=Cardio')).toEqual([]);
    expect(await list(`specialty=${encodeURIComponent('Cardi%')}`)).toEqual([]);
    expect(await list(`specialty=${encodeURIComponent('Cardiolog_')}`)).toEqual([]);
  });

  it('combines the filters', async () => {
    expect(await list(`locationId=${b}&specialty=cardiology`)).toEqual([p.cardioAB]);
    expect(await list(`locationId=${a}&specialty=dermatology`)).toEqual([]);
    expect(await list(`specialty=dermatology&locationId=${b}`)).toEqual([p.dermB]);
  });

  it('pages through a filtered list', async () => {
    const first = await api('GET', `/v1/providers?locationId=${a}&limit=2`);
    expect(ids(first)).toEqual([p.cardioA, p.cardioAB]);
    const second = await api('GET', `/v1/providers?locationId=${a}&limit=2&cursor=${first.body.page.nextCursor}`);
    expect(ids(second)).toEqual([p.surgA]);
    expect(second.body.page.nextCursor).toBeNull();
  });

  it.each([
    ['locationId=not-a-uuid', '/query/locationId'],
    ['locationId=12345', '/query/locationId'],
    ['locationId=urn:uuid:0192f3c4-0000-7000-8000-000000000000', '/query/locationId'],
    ['specialty=', '/query/specialty'],
    [`specialty=${encodeURIComponent('a\nb')}`, '/query/specialty'],
    ['specialist=x', '/query/specialist'],
  ])('rejects %s with 400', async (q, path) => {
    const err = expectError(await api('GET', `/v1/providers?${q}`), 400, 'VALIDATION_FAILED');
    expect(paths(err)).toContain(path);
  });
});
