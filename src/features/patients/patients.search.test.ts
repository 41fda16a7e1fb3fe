// GET /v1/patients filters (name prefix, birthDate, identifier) and cursor pagination.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client, type Res } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

type P = { id: string; name: { given: string[]; family: string } };

describe.each(storageModes())('patients search on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  let tenant: string;
  const ids: Record<string, string> = {};

  const people: Record<string, Record<string, unknown>> = {
    jose: { name: { given: ['José', 'Luis'], family: 'García' }, birthDate: '1970-01-15', identifiers: [{ system: 'urn:mrn:a', value: 'J-100' }] },
    ana: { name: { given: ['Ana'], family: 'Núñez' }, birthDate: '1990-05-05', identifiers: [{ system: 'urn:mrn:a', value: 'A-200' }, { system: 'urn:ssn', value: '111-22-3333' }] },
    sean: { name: { given: ['Seán'], family: "O'Brien" }, birthDate: '1990-05-05', identifiers: [{ system: 'urn:mrn:b', value: 'J-100' }] },
    mary: { name: { given: ['Mary', 'Ann'], family: 'Smith' }, birthDate: '1990-05-06', identifiers: [] },
    joaquin: { name: { given: ['Joaquín'], family: 'Smithers' }, birthDate: '1970-01-15', identifiers: [{ system: 'urn:mrn:a', value: 'J-101' }] },
    pct: { name: { given: ['Per'], family: '100% Cent_Ure' }, birthDate: '1980-02-02', identifiers: [{ system: 'urn:mrn:a', value: 'a%b_c' }] },
  };

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    for (const [key, over] of Object.entries(people)) {
      const res = await api('POST', '/v1/patients', { body: patientInput(over) });
      expect(res.status).toBe(201);
      ids[key] = res.body.id;
    }
  });
  afterAll(() => srv?.close());

  /** The people (by key) a search returns, sorted; fails on anything but 200. */
  async function find(query: string): Promise<string[]> {
    const res = await api('GET', `/v1/patients?${query}`);
    expect(res.status, `${query}: ${res.text}`).toBe(200);
    const byId = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
    return res.body.data.map((p: P) => byId[p.id] ?? `?${p.id}`).sort();
  }
  const byName = (q: string) => find(`name=${encodeURIComponent(q)}`);
  const queryError = (res: Res, path: string) => {
    const err = expectError(res, 400, 'VALIDATION_FAILED');
    expect(err.details?.map((d) => d.path)).toContain(path);
  };

  describe('name', () => {
    it.each([
      ['jose', ['jose']],
      ['JOS', ['jose']],
      ['joaquin', ['joaquin']],
      ['JOAQUÍN', ['joaquin']],
      ['josé', ['jose']],
      ['JOSÉ', ['jose']],
      ['Jose\u0301', ['jose']], // decomposed accent
      ['j', ['joaquin', 'jose']],
      ['garcia', ['jose']],
      ['GARCÍA', ['jose']],
      ['luis', ['jose']],
      ['nunez', ['ana']],
      ['núñez', ['ana']],
      ['NUÑ', ['ana']],
      ['obri', ['sean']],
      ["o'bri", ['sean']],
      ["O'BRIEN", ['sean']],
      ['brien', ['sean']],
      ['sean', ['sean']],
      ['smith', ['joaquin', 'mary']],
      ['smithe', ['joaquin']],
      ['ann', ['mary']],
      ['an', ['ana', 'mary']],
    ])('%j finds %j (prefix of a given or family name, case- and accent-insensitive)', async (q, expected) => {
      expect(await byName(q)).toEqual(expected);
    });

    it.each([
      ['ose', 'not a prefix'],
      ['arcia', 'not a prefix'],
      ['josex', 'longer than the name'],
      ['zzz', 'no such name'],
    ])('%j finds nobody (%s)', async (q) => {
      expect(await byName(q)).toEqual([]);
    });

    it('several words must all match', async () => {
      expect(await byName('jose garcia')).toEqual(['jose']);
      expect(await byName('garcia   JOSÉ')).toEqual(['jose']);
      expect(await byName('jo smith')).toEqual(['joaquin']);
      expect(await byName('jos smith')).toEqual([]);
      expect(await byName('mary ann smith')).toEqual(['mary']);
      expect(await byName('jose smith')).toEqual([]);
      expect(await byName('ana smith')).toEqual([]);
    });

    it('LIKE metacharacters are not wildcards', async () => {
      // as LIKE patterns these would be "%ez%" (Núñez) and "_na%" (Ana); as literal prefixes they match nobody
      expect(await byName('%ez')).toEqual([]);
      expect(await byName('_na')).toEqual([]);
      expect(await byName('%a')).toEqual(['ana', 'mary']);
      expect(await byName('j_')).toEqual(['joaquin', 'jose']);
      expect(await byName('100%')).toEqual(['pct']);
      expect(await byName('cent_')).toEqual(['pct']);
    });

    it.each(['%', '_', '%%', '%_%', '\\', "'", '!!', '   '])('a name query %j without a letter or digit is 400, never "everyone"', async (q) => {
      queryError(await api('GET', `/v1/patients?name=${encodeURIComponent(q)}`), '/query/name');
    });

    it('an empty or over-long name query is 400 on /query/name', async () => {
      queryError(await api('GET', '/v1/patients?name='), '/query/name');
      queryError(await api('GET', `/v1/patients?name=${'a'.repeat(101)}`), '/query/name');
    });
  });

  describe('birthDate', () => {
    it('matches exactly', async () => {
      expect(await find('birthDate=1990-05-05')).toEqual(['ana', 'sean']);
      expect(await find('birthDate=1990-05-06')).toEqual(['mary']);
      expect(await find('birthDate=1970-01-15')).toEqual(['joaquin', 'jose']);
      expect(await find('birthDate=1990-05-04')).toEqual([]);
    });
    it.each(['1990-5-5', '1990', '05/05/1990', '1990-02-30', 'x'])('%j is 400 on /query/birthDate', async (d) => {
      queryError(await api('GET', `/v1/patients?birthDate=${encodeURIComponent(d)}`), '/query/birthDate');
    });
  });

  describe('identifier', () => {
    it('system|value matches that system only', async () => {
      expect(await find(`identifier=${encodeURIComponent('urn:mrn:a|J-100')}`)).toEqual(['jose']);
      expect(await find(`identifier=${encodeURIComponent('urn:mrn:b|J-100')}`)).toEqual(['sean']);
      expect(await find(`identifier=${encodeURIComponent('urn:ssn|111-22-3333')}`)).toEqual(['ana']);
      expect(await find(`identifier=${encodeURIComponent('urn:mrn:c|J-100')}`)).toEqual([]);
      expect(await find(`identifier=${encodeURIComponent('urn:mrn:a|111-22-3333')}`)).toEqual([]);
    });
    it('value alone matches any system', async () => {
      expect(await find('identifier=J-100')).toEqual(['jose', 'sean']);
      expect(await find('identifier=A-200')).toEqual(['ana']);
      expect(await find('identifier=111-22-3333')).toEqual(['ana']);
    });
    it('matches the whole value exactly: no prefix, no case folding, no wildcards', async () => {
      expect(await find('identifier=J-10')).toEqual([]);
      expect(await find('identifier=j-100')).toEqual([]);
      expect(await find(`identifier=${encodeURIComponent('a%')}`)).toEqual([]);
      expect(await find(`identifier=${encodeURIComponent('a%b_c')}`)).toEqual(['pct']);
      expect(await find(`identifier=${encodeURIComponent('a_b%c')}`)).toEqual([]);
    });
    it.each(['|', 'urn:mrn:a|', ''])('%j is 400 on /query/identifier', async (v) => {
      queryError(await api('GET', `/v1/patients?identifier=${encodeURIComponent(v)}`), '/query/identifier');
    });
  });

  it('combines filters (all must match)', async () => {
    expect(await find('name=jo&birthDate=1970-01-15')).toEqual(['joaquin', 'jose']);
    expect(await find('name=jos&birthDate=1970-01-15')).toEqual(['jose']);
    expect(await find('name=jose&birthDate=1970-01-15')).toEqual(['jose']);
    expect(await find('name=jose&birthDate=1990-05-05')).toEqual([]);
    expect(await find('name=smith&birthDate=1990-05-06')).toEqual(['mary']);
    expect(await find('identifier=J-100&birthDate=1990-05-05')).toEqual(['sean']);
    expect(await find('identifier=J-100&name=garc')).toEqual(['jose']);
    expect(await find(`identifier=${encodeURIComponent('urn:mrn:a|J-100')}&name=obrien`)).toEqual([]);
    expect(await find('name=o&birthDate=1990-05-05&identifier=J-100')).toEqual(['sean']);
  });

  it('an unknown query parameter is 400 VALIDATION_FAILED', async () => {
    queryError(await api('GET', '/v1/patients?family=garcia'), '/query/family');
    queryError(await api('GET', '/v1/patients?name=jose&sort=desc'), '/query/sort');
  });

  it.each(['0', '101', '-1', '1.5', 'abc', '1e3'])('limit=%s is 400 on /query/limit', async (limit) => {
    queryError(await api('GET', `/v1/patients?limit=${limit}`), '/query/limit');
  });

  it('limit=1 and limit=100 are accepted', async () => {
    const one = await api('GET', '/v1/patients?limit=1');
    expect(one.status).toBe(200);
    expect(one.body.data).toHaveLength(1);
    expect(one.body.page.limit).toBe(1);
    const hundred = await api('GET', '/v1/patients?limit=100');
    expect(hundred.status).toBe(200);
    expect(hundred.body.data).toHaveLength(Object.keys(people).length);
    expect(hundred.body.page).toEqual({ limit: 100, nextCursor: null });
  });

  describe('pagination', () => {
    let api2: Client;
    let mgr: Client;
    let created: string[];
    beforeAll(async () => {
      const pagerTenant = await srv.newTenant();
      api2 = client(srv.url, await srv.token({ tenant: pagerTenant, roles: ['staff'] }));
      mgr = client(srv.url, await srv.token({ tenant: pagerTenant, roles: ['manager'] }));
      created = [];
      for (let i = 0; i < 5; i++) {
        const res = await api2('POST', '/v1/patients', { body: patientInput({ name: { given: [`Pager${i}`], family: i % 2 ? 'Odd' : 'Even' } }) });
        expect(res.status).toBe(201);
        created.push(res.body.id);
      }
    });

    async function walk(query: string) {
      const sizes: number[] = [];
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let guard = 0; guard < 10; guard++) {
        const res: Res = await api2('GET', `/v1/patients?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(res.status, res.text).toBe(200);
        sizes.push(res.body.data.length);
        seen.push(...res.body.data.map((p: P) => p.id));
        cursor = res.body.page.nextCursor;
        if (cursor === null) break;
        expect(typeof cursor).toBe('string');
      }
      return { sizes, seen, last: cursor };
    }

    it('limit=2 walks all 5 exactly once, in creation order, and the last page has nextCursor null', async () => {
      const { sizes, seen, last } = await walk('limit=2');
      expect(sizes).toEqual([2, 2, 1]);
      expect(seen).toEqual(created);
      expect(new Set(seen).size).toBe(5);
      expect(last).toBeNull();
    });

    it('a page exactly as large as the rest has nextCursor null (no empty trailing page)', async () => {
      const all = await api2('GET', '/v1/patients?limit=5');
      expect(all.body.data.map((p: P) => p.id)).toEqual(created);
      expect(all.body.page).toEqual({ limit: 5, nextCursor: null });
      const { sizes } = await walk('limit=1');
      expect(sizes).toEqual([1, 1, 1, 1, 1]);
    });

    it('the cursor keeps the filters: name=even with limit=1 walks the 3 matches', async () => {
      const { sizes, seen } = await walk('name=even&limit=1');
      expect(sizes).toEqual([1, 1, 1]);
      expect(seen).toEqual([created[0], created[2], created[4]]);
    });

    it('a deleted patient drops out of later pages', async () => {
      const first = await api2('GET', '/v1/patients?limit=2');
      expect((await mgr('DELETE', `/v1/patients/${created[2]}`, { headers: { 'if-match': 'W/"1"' } })).status).toBe(204);
      const second = await api2('GET', `/v1/patients?limit=2&cursor=${encodeURIComponent(first.body.page.nextCursor)}`);
      expect(second.body.data.map((p: P) => p.id)).toEqual([created[3], created[4]]);
      expect(second.body.page.nextCursor).toBeNull();
      created.splice(2, 1);
    });

    it.each([
      ['garbage', 'not-a-cursor'],
      ['base64 of junk', Buffer.from('hello').toString('base64url')],
      ['a cursor with a non-UUID', Buffer.from(JSON.stringify({ after: "1' or '1'='1" })).toString('base64url')],
      ['a cursor with a number', Buffer.from(JSON.stringify({ after: 5 })).toString('base64url')],
      ['a JSON null', Buffer.from('null').toString('base64url')],
      ['over-long', 'a'.repeat(201)],
    ])('a %s cursor is 400 VALIDATION_FAILED on /query/cursor', async (_what, cursor) => {
      queryError(await api2('GET', `/v1/patients?cursor=${encodeURIComponent(cursor)}`), '/query/cursor');
    });
  });
});
