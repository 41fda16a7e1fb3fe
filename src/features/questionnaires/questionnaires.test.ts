// Questionnaires over real HTTP, on PGlite and (with TEST_DATABASE_URL) the real PostgreSQL:
// every fixture imports unchanged and round-trips, Bundle import, ETag / If-Match, the lifecycle
// and its conflicts. Lists and tenancy are in questionnaires.list.test.ts.
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client, ifMatch } from '../../../test/helpers/http.js';
import { QUESTIONNAIRE_FIXTURES, USSG_BUNDLE, asReturned, fixture, simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const Q = '/v1/questionnaires';

/** Every answerValueSet of an item tree. */
const valueSetRefs = (items: any[] = []): string[] => items.flatMap((i) => [...(i.answerValueSet ? [i.answerValueSet] : []), ...valueSetRefs(i.item)]);

describe.each(storageModes())('questionnaires on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    api = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
  });
  afterAll(() => srv?.close());

  const create = async (body: unknown = simpleQuestionnaire(), query = '') => {
    const res = await api('POST', `${Q}${query}`, { body });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };

  describe('import', () => {
    it.each(QUESTIONNAIRE_FIXTURES)('imports %s unchanged and returns it as sent, with our id, version and timestamps', async (path) => {
      const fhir = fixture(path);
      const query = path.includes('scoring-edge-cases') ? '?allowExternalValueSets=true' : '';
      const res = await api('POST', `${Q}${query}`, { body: fhir });
      expect(res.status, res.text).toBe(201);
      expect(res.headers.get('etag')).toBe('W/"1"');
      expect(res.headers.get('location')).toBe(`${Q}/${res.body.id}`);
      expect(res.body).toEqual(asReturned(fhir));
      expect(res.body.status).toBe(fhir.status);
      const got = await api('GET', `${Q}/${res.body.id}`);
      expect(got.status).toBe(200);
      expect(got.headers.get('etag')).toBe('W/"1"');
      expect(got.body).toEqual(res.body);
    });

    it('keeps the FHIR business version as businessVersion, and the FHIR id is replaced by ours', async () => {
      const fhir = fixture('questionnaires/phq9-sdc.questionnaire.json');
      const body = await create(fhir);
      expect(body.version).toBe(1);
      expect(body.businessVersion).toBe('2.8.0');
      expect(body.id).not.toBe(fhir.id);
      expect(body.contained).toEqual(fhir.contained);
      expect(body.item).toEqual(fhir.item);
      expect(body.text).toEqual(fhir.text);
    });

    it('refuses an answerValueSet outside the resource unless allowExternalValueSets=true', async () => {
      const fhir = fixture('questionnaires/scoring-edge-cases.questionnaire.json');
      const err = expectError(await api('POST', Q, { body: fhir }), 400, 'VALIDATION_FAILED');
      expect(err.details?.map((d) => d.path)).toEqual(['/item/0/item/0/item/4/answerValueSet', '/item/0/item/0/item/5/answerValueSet']);
      expect(err.details![0]!.message).toMatch(/Bundle/);
      expectError(await api('POST', `${Q}?allowExternalValueSets=maybe`, { body: fhir }), 400, 'VALIDATION_FAILED');
    });

    it('imports a Bundle: referenced ValueSets are folded into contained and answerValueSet rewritten to #id', async () => {
      const bundle = fixture(USSG_BUNDLE);
      const source = bundle.entry[0].resource;
      const res = await api('POST', Q, { body: bundle });
      expect(res.status, res.text).toBe(201);
      const q = res.body;
      expect(q).toMatchObject({ resourceType: 'Questionnaire', status: 'active', businessVersion: '2015', url: source.url, title: source.title, version: 1 });
      const refs = valueSetRefs(q.item);
      expect(refs.length).toBeGreaterThan(20);
      for (const ref of refs) {
        expect(ref).toMatch(/^#/);
        const vs = q.contained.find((c: any) => c.id === ref.slice(1));
        expect(vs?.resourceType, ref).toBe('ValueSet');
      }
      // The questionnaire's own contained ValueSets come first, unchanged; then one per referenced bundle ValueSet.
      expect(q.contained.slice(0, 2)).toEqual(source.contained);
      const folded = q.contained.slice(2);
      expect(folded.map((c: any) => c.id).sort()).toEqual(['LL1-9', 'LL361-7', 'LL619-8', 'LL621-4', 'LL623-0', 'LL626-3', 'LL627-1', 'LL628-9', 'LL629-7']);
      for (const vs of folded) expect(vs).toEqual(bundle.entry.find((e: any) => e.resource.id === vs.id).resource);
      // Only the references changed: the item tree is otherwise the bundle's.
      const strip = (items: any[]): any[] => items.map(({ answerValueSet: _a, item, ...rest }) => ({ ...rest, ...(item ? { item: strip(item) } : {}) }));
      expect(strip(q.item)).toEqual(strip(source.item));
      expect((await api('GET', `${Q}/${q.id}`)).body).toEqual(q);
    });

    it('refuses a Bundle without exactly one Questionnaire, or with other resources, listing each problem', async () => {
      const bundle = fixture(USSG_BUNDLE);
      const noQuestionnaire = { ...bundle, entry: bundle.entry.slice(1) };
      expect(expectError(await api('POST', Q, { body: noQuestionnaire }), 400, 'VALIDATION_FAILED').details).toEqual([
        { path: '/entry', message: expect.stringMatching(/exactly one Questionnaire/) },
      ]);
      const mixed = { ...bundle, entry: [...bundle.entry, { resource: { resourceType: 'Patient', id: 'p' } }, bundle.entry[0]] };
      const err = expectError(await api('POST', Q, { body: mixed }), 400, 'VALIDATION_FAILED');
      expect(err.details?.map((d) => d.path).sort()).toEqual(['/entry', `/entry/${bundle.entry.length}/resource/resourceType`]);
    });

    it('places the problems of a bundled Questionnaire under its entry', async () => {
      const bundle = fixture(USSG_BUNDLE);
      bundle.entry[0].resource.item[0].item[1].linkId = '0.1';
      bundle.entry[0].resource.item[1].item[0].item[1].answerValueSet = 'http://example.org/ValueSet/missing';
      const err = expectError(await api('POST', Q, { body: bundle }), 400, 'VALIDATION_FAILED');
      expect(err.details?.map((d) => d.path).sort()).toEqual(['/entry/0/resource/item/0/item/1/linkId', '/entry/0/resource/item/1/item/0/item/1/answerValueSet']);
    });

    it('an Idempotency-Key makes a retried import create once and replay the first answer', async () => {
      const key = `import-${uuidv7()}`;
      const body = fixture('questionnaires/gad7-lhcforms.questionnaire.json');
      const first = await api('POST', Q, { body, headers: { 'idempotency-key': key } });
      expect(first.status).toBe(201);
      const again = await api('POST', Q, { body, headers: { 'idempotency-key': key } });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotency-replayed')).toBe('true');
      expect(again.headers.get('location')).toBe(first.headers.get('location'));
      expect(again.body).toEqual(first.body);
      expectError(await api('POST', Q, { body: { ...body, title: 'Other' }, headers: { 'idempotency-key': key } }), 422, 'IDEMPOTENCY_KEY_REUSED');
    });

    it('refuses bodies that are not a resource object', async () => {
      for (const body of [[simpleQuestionnaire()], 'Questionnaire', 42, null]) {
        expectError(await api('POST', Q, { body }), 400, 'VALIDATION_FAILED');
      }
      expectError(await api('POST', Q, { raw: '{"resourceType":', headers: { 'content-type': 'application/json' } }), 400, 'MALFORMED_REQUEST');
    });
  });

  describe('reading and changing', () => {
    it('GET of an unknown id is 404 and a malformed id 400', async () => {
      expectError(await api('GET', `${Q}/${uuidv7()}`), 404, 'NOT_FOUND');
      expectError(await api('GET', `${Q}/nope`), 400, 'VALIDATION_FAILED');
    });

    it('PATCH of a draft is a merge patch on the resource: 428 without If-Match, 412 when stale, revalidated whole', async () => {
      const q = await create();
      const patch = { title: 'Intake, revised', item: [...q.item, { linkId: 'notes', type: 'text' }], businessVersion: '2' };
      expectError(await api('PATCH', `${Q}/${q.id}`, { body: patch }), 428, 'PRECONDITION_REQUIRED');
      const stale = await api('PATCH', `${Q}/${q.id}`, { body: patch, headers: ifMatch(5) });
      expectError(stale, 412, 'VERSION_CONFLICT');
      expect(stale.headers.get('etag')).toBe('W/"1"');

      const ok = await api('PATCH', `${Q}/${q.id}`, { body: patch, headers: { ...ifMatch(1), 'content-type': 'application/merge-patch+json' } });
      expect(ok.status, ok.text).toBe(200);
      expect(ok.headers.get('etag')).toBe('W/"2"');
      expect(ok.body).toEqual({ ...q, ...patch, version: 2, updatedAt: expect.any(String) });
      expect((await api('GET', `${Q}/${q.id}`)).body).toEqual(ok.body);

      // null removes; an invalid result is refused whole and nothing changes.
      const removed = await api('PATCH', `${Q}/${q.id}`, { body: { businessVersion: null, url: null }, headers: ifMatch(2) });
      expect(removed.status, removed.text).toBe(200);
      expect(removed.body).not.toHaveProperty('businessVersion');
      expect(removed.body).not.toHaveProperty('url');
      const bad = await api('PATCH', `${Q}/${q.id}`, { body: { item: [{ linkId: 'a', type: 'group' }, { linkId: 'a', type: 'choice' }], businessVersion: 7 }, headers: ifMatch(3) });
      expect(expectError(bad, 400, 'VALIDATION_FAILED').details?.map((d) => d.path).sort()).toEqual(['/businessVersion', '/item/0/item', '/item/1/answerOption', '/item/1/linkId']);
      expect((await api('GET', `${Q}/${q.id}`)).body.version).toBe(3);
    });

    it('PATCH refuses server-managed members and empty patches', async () => {
      const q = await create();
      for (const body of [{ id: uuidv7() }, { version: 9 }, { createdAt: '2020-01-01T00:00:00Z' }, {}, [1]]) {
        expectError(await api('PATCH', `${Q}/${q.id}`, { body, headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
      }
      expectError(await api('PATCH', `${Q}/${q.id}`, { body: { status: 'unknown' }, headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
      expect((await api('GET', `${Q}/${q.id}`)).body.version).toBe(1);
    });

    it('DELETE removes drafts only (soft, If-Match): active and retired ones answer 409', async () => {
      const draft = await create();
      expectError(await api('DELETE', `${Q}/${draft.id}`), 428, 'PRECONDITION_REQUIRED');
      expectError(await api('DELETE', `${Q}/${draft.id}`, { headers: ifMatch(2) }), 412, 'VERSION_CONFLICT');
      expect((await api('DELETE', `${Q}/${draft.id}`, { headers: ifMatch(1) })).status).toBe(204);
      expectError(await api('GET', `${Q}/${draft.id}`), 404, 'NOT_FOUND');
      expectError(await api('DELETE', `${Q}/${draft.id}`, { headers: ifMatch(2) }), 404, 'NOT_FOUND');

      const active = await create(simpleQuestionnaire({ status: 'active' }));
      expect(expectError(await api('DELETE', `${Q}/${active.id}`, { headers: ifMatch(1) }), 409, 'CONFLICT').message).toMatch(/retire/);
      const retired = await api('PATCH', `${Q}/${active.id}`, { body: { status: 'retired' }, headers: ifMatch(1) });
      expectError(await api('DELETE', `${Q}/${active.id}`, { headers: ifMatch(retired.body.version) }), 409, 'CONFLICT');
      expect((await api('GET', `${Q}/${active.id}`)).body.status).toBe('retired');
    });
  });

  describe('lifecycle', () => {
    const patchStatus = (q: { id: string }, status: string, version: number) => api('PATCH', `${Q}/${q.id}`, { body: { status }, headers: ifMatch(version) });

    it('draft → active → retired, each a new version, mirrored in the FHIR status', async () => {
      const q = await create();
      const active = await patchStatus(q, 'active', 1);
      expect(active.status, active.text).toBe(200);
      expect(active.body).toEqual({ ...q, status: 'active', version: 2, updatedAt: expect.any(String) });
      const retired = await patchStatus(q, 'retired', 2);
      expect(retired.body).toMatchObject({ status: 'retired', version: 3 });
      expect(retired.headers.get('etag')).toBe('W/"3"');
    });

    it('draft → retired is allowed; retired → anything and active → draft are INVALID_TRANSITION', async () => {
      const q = await create();
      expect((await patchStatus(q, 'retired', 1)).status).toBe(200);
      for (const s of ['draft', 'active']) expectError(await patchStatus(q, s, 2), 409, 'INVALID_TRANSITION');
      const a = await create(simpleQuestionnaire({ status: 'active' }));
      expectError(await patchStatus(a, 'draft', 1), 409, 'INVALID_TRANSITION');
      expect((await api('GET', `${Q}/${a.id}`)).body).toMatchObject({ status: 'active', version: 1 });
    });

    it('an active or retired questionnaire never changes beyond its status: 409 CONFLICT saying to create a new version', async () => {
      const q = await create(simpleQuestionnaire({ status: 'active' }));
      for (const body of [{ item: [] }, { title: 'Changed' }, { status: 'retired', title: 'Changed' }, { businessVersion: '2' }]) {
        const err = expectError(await api('PATCH', `${Q}/${q.id}`, { body, headers: ifMatch(1) }), 409, 'CONFLICT');
        expect(err.message).toMatch(/new version/);
      }
      await patchStatus(q, 'retired', 1);
      expectError(await api('PATCH', `${Q}/${q.id}`, { body: { item: [] }, headers: ifMatch(2) }), 409, 'CONFLICT');
      expect((await api('GET', `${Q}/${q.id}`)).body).toEqual({ ...q, status: 'retired', version: 2, updatedAt: expect.any(String) });
    });

    it('activation revalidates: a draft without items cannot become active', async () => {
      const q = await create(simpleQuestionnaire({ item: undefined }));
      const err = expectError(await patchStatus(q, 'active', 1), 400, 'VALIDATION_FAILED');
      expect(err.details).toEqual([{ path: '/item', message: expect.stringMatching(/at least one item/) }]);
    });

    it('a draft may change status and content in one patch', async () => {
      const q = await create();
      const res = await api('PATCH', `${Q}/${q.id}`, { body: { status: 'active', title: 'Final' }, headers: ifMatch(1) });
      expect(res.body).toMatchObject({ status: 'active', title: 'Final', version: 2 });
    });

    it('of concurrent status changes on one version, exactly one wins', async () => {
      const q = await create();
      const results = await Promise.all([patchStatus(q, 'active', 1), patchStatus(q, 'retired', 1), patchStatus(q, 'active', 1)]);
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      for (const r of results.filter((x) => x.status !== 200)) expectError(r, 412, 'VERSION_CONFLICT');
    });
  });
});
