// Optimistic locking under concurrency: of writers holding the same version, exactly one wins.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

describe.each(storageModes())('patients concurrency on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  let mgr: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    mgr = client(srv.url, await srv.token({ tenant, roles: ['manager'] }));
  });
  afterAll(() => srv?.close());

  async function create() {
    const res = await api('POST', '/v1/patients', { body: patientInput() });
    expect(res.status).toBe(201);
    return res.body as { id: string; version: number };
  }

  it('50 concurrent PATCHes with If-Match W/"1": exactly one 200, 49 × 412 VERSION_CONFLICT, final version 2', async () => {
    const p = await create();
    const phones = Array.from({ length: 50 }, (_, i) => `+1 555 700 ${String(i).padStart(4, '0')}`);
    const results = await Promise.all(
      phones.map((phone) => api('PATCH', `/v1/patients/${p.id}`, { body: { phone }, headers: { 'if-match': 'W/"1"', 'content-type': 'application/merge-patch+json' } })),
    );
    const statuses = results.map((r) => r.status);
    const winners = results.filter((r) => r.status === 200);
    expect(winners, JSON.stringify(statuses)).toHaveLength(1);
    const losers = results.filter((r) => r.status !== 200);
    expect(losers).toHaveLength(49);
    for (const r of losers) {
      expectError(r, 412, 'VERSION_CONFLICT');
      expect(r.headers.get('etag')).toBe('W/"2"');
    }
    const winner = winners[0]!;
    expect(winner.body.version).toBe(2);
    expect(winner.headers.get('etag')).toBe('W/"2"');

    const got = await api('GET', `/v1/patients/${p.id}`);
    expect(got.status).toBe(200);
    expect(got.body.version).toBe(2);
    expect(got.headers.get('etag')).toBe('W/"2"');
    // the stored value is the winner's, not a loser's
    expect(got.body.phone).toBe(winner.body.phone);
    expect(phones).toContain(got.body.phone);
  }, 120_000);

  it('20 concurrent DELETEs with If-Match W/"1": exactly one 204, the rest 404 or 412, and the patient is gone', async () => {
    const p = await create();
    const results = await Promise.all(Array.from({ length: 20 }, () => mgr('DELETE', `/v1/patients/${p.id}`, { headers: { 'if-match': 'W/"1"' } })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 204), JSON.stringify(statuses)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 204)) {
      if (r.status === 404) expectError(r, 404, 'NOT_FOUND');
      else expectError(r, 412, 'VERSION_CONFLICT');
    }
    expectError(await api('GET', `/v1/patients/${p.id}`), 404, 'NOT_FOUND');
    const list = await api('GET', '/v1/patients?limit=100');
    expect(list.body.data.map((x: { id: string }) => x.id)).not.toContain(p.id);
  }, 120_000);

  it('concurrent PATCH and DELETE on the same version: exactly one of them wins', async () => {
    const p = await create();
    const [patched, deleted] = await Promise.all([
      api('PATCH', `/v1/patients/${p.id}`, { body: { gender: 'other' }, headers: { 'if-match': 'W/"1"' } }),
      mgr('DELETE', `/v1/patients/${p.id}`, { headers: { 'if-match': 'W/"1"' } }),
    ]);
    const won = [patched.status === 200, deleted.status === 204].filter(Boolean);
    expect(won, `${patched.status} ${deleted.status}`).toHaveLength(1);
    const got = await api('GET', `/v1/patients/${p.id}`);
    if (patched.status === 200) {
      expectError(deleted, 412, 'VERSION_CONFLICT');
      expect(got.body).toMatchObject({ version: 2, gender: 'other' });
    } else {
      expect([404, 412]).toContain(patched.status);
      expectError(got, 404, 'NOT_FOUND');
    }
  }, 60_000);

  it('no lost updates: 10 writers that re-read and retry on 412 all land, version 1 + 10', async () => {
    const p = await create();
    const url = `/v1/patients/${p.id}`;
    const writer = async (i: number) => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const cur = await api('GET', url);
        const identifiers = [...cur.body.identifiers, { system: 'urn:writer', value: `W-${i}` }];
        const res = await api('PATCH', url, { body: { identifiers }, headers: { 'if-match': cur.headers.get('etag')! } });
        if (res.status === 200) return attempt;
        expectError(res, 412, 'VERSION_CONFLICT');
      }
      throw new Error(`writer ${i} never got through`);
    };
    await Promise.all(Array.from({ length: 10 }, (_, i) => writer(i)));
    const got = await api('GET', url);
    expect(got.body.version).toBe(11);
    const values = got.body.identifiers.filter((x: { system: string }) => x.system === 'urn:writer').map((x: { value: string }) => x.value).sort();
    expect(values).toEqual(Array.from({ length: 10 }, (_, i) => `W-${i}`).sort());
    // the factory's original identifier survived every rewrite
    expect(got.body.identifiers).toHaveLength(11);
  }, 120_000);

  it('concurrent creates all succeed with distinct ids', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, () => api('POST', '/v1/patients', { body: patientInput() })));
    expect(results.map((r) => r.status)).toEqual(Array(30).fill(201));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(30);
  }, 60_000);
});
