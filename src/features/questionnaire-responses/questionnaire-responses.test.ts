// /v1/questionnaire-responses end to end on the real server: start, fill, submit, score,
// immutability, amend, FHIR output, list filters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { fixture, importActive } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { gad7Items } from './engine/test-fixtures.js';

const PATH = '/v1/questionnaire-responses';
const PHQ9 = 'questionnaires/phq9-lhcforms.questionnaire.json';
const GAD7 = 'questionnaires/gad7-lhcforms.questionnaire.json';
const phq9Items = (): any[] => fixture('questionnaires/phq9-lhcforms.questionnaireresponse.json').item;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// Every test also runs with Redis unreachable (port 1 refuses at once): the cache must never
// change an outcome, only where a read comes from.
const serverMode = storageModes().at(-1)!;
const cases = [
  ...storageModes().map((mode) => ({ name: mode, mode, env: {} as Record<string, string> })),
  { name: `${serverMode} with Redis unreachable`, mode: serverMode, env: { REDIS_URL: 'redis://127.0.0.1:1' } },
];

describe.each(cases)('questionnaire responses on $name', ({ mode, env }) => {
  let srv: TestServer;
  let api: Client;
  let admin: Client;
  let phq9: Record<string, any>;
  let gad7: Record<string, any>;
  let patientId: string;

  beforeAll(async () => {
    srv = await startServer(mode, env);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    admin = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    phq9 = await importActive(admin, PHQ9);
    gad7 = await importActive(admin, GAD7);
    patientId = (await api('POST', '/v1/patients', { body: patientInput() })).body.id;
  }, 60_000);
  afterAll(() => srv?.close());

  async function start(questionnaireId = phq9.id, item?: unknown[]) {
    const res = await api('POST', PATH, { body: { questionnaireId, patientId, ...(item ? { item } : {}) } });
    expect(res.status, res.text).toBe(201);
    return res.body;
  }
  const patch = (id: string, item: unknown, ifMatch = 'W/"1"', c = api) => c('PATCH', `${PATH}/${id}`, { body: { item }, headers: { 'if-match': ifMatch } });
  const submit = (id: string, ifMatch: string, c = api) => c('POST', `${PATH}/${id}/submit`, { headers: { 'if-match': ifMatch } });
  const paths = (res: any) => expectError(res, 400, 'VALIDATION_FAILED').details?.map((d) => d.path) ?? [];

  it('starts in-progress with 201, Location, ETag W/"1", pinned to the questionnaire version; GET returns exactly that', async () => {
    const res = await api('POST', PATH, { body: { questionnaireId: phq9.id, patientId } });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('location')).toBe(`${PATH}/${res.body.id}`);
    expect(res.body).toEqual({
      id: res.body.id, version: 1, questionnaireId: phq9.id, questionnaireVersion: phq9.version, patientId, status: 'in-progress', item: [],
      createdAt: expect.stringMatching(ISO_UTC), updatedAt: res.body.createdAt,
    });
    const got = await api('GET', `${PATH}/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBe('W/"1"');
    expect(got.body).toEqual(res.body);
  });

  it('start: a non-active questionnaire is 409 CONFLICT, an unknown one 404, an unknown patient 400 on /patientId', async () => {
    const draft = await admin('POST', '/v1/questionnaires', { body: fixture(PHQ9) });
    expect(draft.status).toBe(201);
    expectError(await api('POST', PATH, { body: { questionnaireId: draft.body.id, patientId } }), 409, 'CONFLICT');
    expectError(await api('POST', PATH, { body: { questionnaireId: '01890a5d-ac96-774b-bcce-b302099a8057', patientId } }), 404, 'NOT_FOUND');
    const bad = await api('POST', PATH, { body: { questionnaireId: phq9.id, patientId: '01890a5d-ac96-774b-bcce-b302099a8057' } });
    expect(paths(bad)).toEqual(['/patientId']);
    expect(paths(await api('POST', PATH, { body: { questionnaireId: phq9.id } }))).toContain('/patientId');
  });

  it('start with item validates it as a draft: incomplete is fine, an unknown linkId is 400 at /item/…', async () => {
    const r = await start(phq9.id, phq9Items().slice(0, 2));
    expect(r.item).toEqual(phq9Items().slice(0, 2));
    const bad = await api('POST', PATH, { body: { questionnaireId: phq9.id, patientId, item: [{ linkId: 'nope', answer: [{ valueString: 'x' }] }] } });
    expect(paths(bad)).toEqual(['/item/0/linkId']);
  });

  it('fills (PATCH) and submits the PHQ-9 fixture: score 15, moderately severe; the client total is replaced', async () => {
    const r = await start();
    const items = phq9Items().map((i) => (i.linkId === '/44261-6' ? { ...i, answer: [{ valueDecimal: 99 }] } : i));
    const saved = await patch(r.id, items);
    expect(saved.status, saved.text).toBe(200);
    expect(saved.headers.get('etag')).toBe('W/"2"');
    expect(saved.body).toMatchObject({ version: 2, status: 'in-progress', item: items });
    expect(saved.body).not.toHaveProperty('score');

    const done = await submit(r.id, 'W/"2"');
    expect(done.status, done.text).toBe(200);
    expect(done.headers.get('etag')).toBe('W/"3"');
    expect(done.body).toMatchObject({ version: 3, status: 'completed', score: { total: 15, band: 'moderately severe' } });
    expect(done.body.submittedAt).toMatch(ISO_UTC);
    const total = done.body.item.find((i: any) => i.linkId === '/44261-6');
    expect(total.answer).toEqual([{ valueDecimal: 15 }]);
    const got = await api('GET', `${PATH}/${r.id}`);
    expect(got.body).toEqual(done.body);
  });

  it('GAD-7: 1+2+3+0+1+2+3 = 12, moderate; a client total of 3 is ignored', async () => {
    const r = await start(gad7.id, gad7Items(3));
    const done = await submit(r.id, 'W/"1"');
    expect(done.status, done.text).toBe(200);
    expect(done.body.score).toEqual({ total: 12, band: 'moderate' });
    expect(done.body.item.find((i: any) => i.linkId === '/70274-6').answer).toEqual([{ valueDecimal: 12 }]);
  });

  it('a response stays pinned to its questionnaire: retired after the start, it is still submitted and scored; new starts are 409', async () => {
    const q = await importActive(admin, GAD7);
    const r = await start(q.id, gad7Items());
    const retired = await admin('PATCH', `/v1/questionnaires/${q.id}`, { body: { status: 'retired' }, headers: { 'if-match': `W/"${q.version}"` } });
    expect(retired.status, retired.text).toBe(200);
    expectError(await api('POST', PATH, { body: { questionnaireId: q.id, patientId } }), 409, 'CONFLICT');
    const done = await submit(r.id, 'W/"1"');
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ questionnaireId: q.id, questionnaireVersion: q.version, score: { total: 12, band: 'moderate' } });
  });

  it('validation: unknown linkId and wrong type are listed together, paths rooted at /item; nothing is saved', async () => {
    const r = await start();
    const items = [
      { linkId: '/44250-9', answer: [{ valueString: 'often' }] },
      { linkId: 'unknown-item', answer: [{ valueBoolean: true }] },
    ];
    const p = paths(await patch(r.id, items));
    expect(p.length).toBeGreaterThanOrEqual(2);
    expect(p.every((x) => x.startsWith('/item'))).toBe(true);
    expect(p.some((x) => x.startsWith('/item/0'))).toBe(true);
    expect(p.some((x) => x.startsWith('/item/1'))).toBe(true);
    const got = await api('GET', `${PATH}/${r.id}`);
    expect(got.body).toEqual(r);
  });

  it('drafts may be incomplete, but submit needs the required items (400, status stays in-progress)', async () => {
    const r = await start();
    const partial = phq9Items().slice(0, 3);
    const saved = await patch(r.id, partial);
    expect(saved.status, saved.text).toBe(200);
    const refused = await submit(r.id, 'W/"2"');
    expect(paths(refused)).toContain('/item');
    const got = await api('GET', `${PATH}/${r.id}`);
    expect(got.body).toMatchObject({ version: 2, status: 'in-progress', item: partial });
  });

  it('PATCH and submit need If-Match: 428 without, 412 when stale (with the current ETag)', async () => {
    const r = await start();
    expectError(await api('PATCH', `${PATH}/${r.id}`, { body: { item: [] } }), 428, 'PRECONDITION_REQUIRED');
    expectError(await api('POST', `${PATH}/${r.id}/submit`), 428, 'PRECONDITION_REQUIRED');
    const stale = await patch(r.id, [], 'W/"5"');
    expectError(stale, 412, 'VERSION_CONFLICT');
    expect(stale.headers.get('etag')).toBe('W/"1"');
    expectError(await submit(r.id, 'W/"2"'), 412, 'VERSION_CONFLICT');
    expectError(await api('DELETE', `${PATH}/${r.id}`), 428, 'PRECONDITION_REQUIRED');
  });

  it('a submitted response is immutable: PATCH, submit and DELETE are 409 RESPONSE_SUBMITTED', async () => {
    const r = await start(phq9.id, phq9Items());
    // submit takes no body or an empty object, nothing else
    expectError(await api('POST', `${PATH}/${r.id}/submit`, { body: { score: 0 }, headers: { 'if-match': 'W/"1"' } }), 400, 'VALIDATION_FAILED');
    const done = await api('POST', `${PATH}/${r.id}/submit`, { body: {}, headers: { 'if-match': 'W/"1"' } });
    expect(done.status, done.text).toBe(200);
    expectError(await patch(r.id, [], 'W/"2"'), 409, 'RESPONSE_SUBMITTED');
    expectError(await submit(r.id, 'W/"2"'), 409, 'RESPONSE_SUBMITTED');
    expectError(await admin('DELETE', `${PATH}/${r.id}`, { headers: { 'if-match': 'W/"2"' } }), 409, 'RESPONSE_SUBMITTED');
    expect((await api('GET', `${PATH}/${r.id}`)).body).toEqual(done.body);
  });

  it('DELETE soft-deletes an in-progress response: 204, then 404', async () => {
    const r = await start();
    expectError(await api('DELETE', `${PATH}/${r.id}`, { headers: { 'if-match': 'W/"2"' } }), 412, 'VERSION_CONFLICT');
    const del = await api('DELETE', `${PATH}/${r.id}`, { headers: { 'if-match': 'W/"1"' } });
    expect(del.status).toBe(204);
    expectError(await api('GET', `${PATH}/${r.id}`), 404, 'NOT_FOUND');
    expectError(await patch(r.id, [], 'W/"2"'), 404, 'NOT_FOUND');
  });

  it('amend creates a new amended response naming the original, validated and scored; the original is unchanged', async () => {
    const r = await start(phq9.id, phq9Items());
    const done = (await submit(r.id, 'W/"1"')).body;
    // one answer changed from "Several days" (1) to "Nearly every day" (3): 15 → 17
    const items = phq9Items().map((i) => (i.linkId === '/44250-9' ? { ...i, answer: [{ valueCoding: { code: 'LA6571-9', display: 'Nearly every day' } }] } : i));
    const amended = await api('POST', `${PATH}/${r.id}/amend`, { body: { item: items, reason: 'Patient corrected question 1' } });
    expect(amended.status, amended.text).toBe(201);
    expect(amended.headers.get('location')).toBe(`${PATH}/${amended.body.id}`);
    expect(amended.body).toMatchObject({
      version: 1, status: 'amended', amends: r.id, amendReason: 'Patient corrected question 1', patientId, questionnaireId: phq9.id,
      score: { total: 17, band: 'moderately severe' },
    });
    expect(amended.body.id).not.toBe(r.id);
    expect((await api('GET', `${PATH}/${r.id}`)).body).toEqual(done);
    expect((await api('GET', `${PATH}/${amended.body.id}`)).body).toEqual(amended.body);
    // the amendment is submitted too
    expectError(await patch(amended.body.id, [], 'W/"1"'), 409, 'RESPONSE_SUBMITTED');
    // an amendment is validated in submit mode
    expect(paths(await api('POST', `${PATH}/${r.id}/amend`, { body: { item: items.slice(0, 2), reason: 'x' } }))).toContain('/item');
    // a draft cannot be amended
    const draft = await start();
    expectError(await api('POST', `${PATH}/${draft.id}/amend`, { body: { item: items, reason: 'x' } }), 409, 'INVALID_TRANSITION');
  });

  it('?format=fhir returns a FHIR R4 QuestionnaireResponse with the server score', async () => {
    const r = await start(phq9.id, phq9Items());
    const done = (await submit(r.id, 'W/"1"')).body;
    const res = await api('GET', `${PATH}/${r.id}?format=fhir`);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"2"');
    expect(res.body).toMatchObject({
      resourceType: 'QuestionnaireResponse',
      id: r.id,
      status: 'completed',
      subject: { reference: `Patient/${patientId}` },
      authored: done.submittedAt,
    });
    expect(typeof res.body.questionnaire).toBe('string');
    expect(res.body.item.map((i: any) => i.linkId)).toEqual(phq9Items().map((i) => i.linkId));
    expect(res.body.item.find((i: any) => i.linkId === '/44261-6').answer).toEqual([{ valueDecimal: 15 }]);
    expect(JSON.stringify(res.body.extension)).toContain('moderately severe');
    expect(res.body).not.toHaveProperty('version');
    expectError(await api('GET', `${PATH}/${r.id}?format=xml`), 400, 'VALIDATION_FAILED');
  });

  it('lists with cursor pagination and the patientId, questionnaireId and status filters', async () => {
    const other = (await api('POST', '/v1/patients', { body: patientInput() })).body.id;
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await api('POST', PATH, { body: { questionnaireId: gad7.id, patientId: other } });
      mine.push(res.body.id);
    }
    // GAD-7 has no required items: an empty response is submittable (and scores 0, minimal)
    const first = await submit(mine[0]!, 'W/"1"');
    expect(first.status, first.text).toBe(200);
    expect(first.body.score).toEqual({ total: 0, band: 'minimal' });
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await api('GET', `${PATH}?patientId=${other}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.page.limit).toBe(2);
      ids.push(...res.body.data.map((x: any) => x.id));
      cursor = res.body.page.nextCursor;
    } while (cursor);
    expect(ids).toEqual(mine);
    const byQ = await api('GET', `${PATH}?questionnaireId=${gad7.id}&status=in-progress&limit=100`);
    expect(byQ.body.data.every((x: any) => x.questionnaireId === gad7.id && x.status === 'in-progress')).toBe(true);
    expect(byQ.body.data.map((x: any) => x.id)).toEqual(expect.arrayContaining(mine.slice(1)));
    expect(byQ.body.data.map((x: any) => x.id)).not.toContain(mine[0]);
    const completed = await api('GET', `${PATH}?status=completed&limit=100`);
    expect(completed.body.data.length).toBeGreaterThan(0);
    expect(completed.body.data.every((x: any) => x.status === 'completed')).toBe(true);
    expect(completed.body.data.map((x: any) => x.id)).toContain(mine[0]);
  });

  it.runIf(env.REDIS_URL !== undefined)('really ran without a cache: every cache operation failed, none was served', () => {
    const stats = srv.deps.cache.stats();
    expect(stats.errors).toBeGreaterThan(0);
    expect(stats.hits).toBe(0);
  });
});
