// Optimistic locking and idempotency under concurrency.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { fixture, importActive } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const PATH = '/v1/questionnaire-responses';
const phq9Items = (): any[] => fixture('questionnaires/phq9-lhcforms.questionnaireresponse.json').item;

describe.each(storageModes())('questionnaire response concurrency on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  let qid: string;
  let patientId: string;

  beforeAll(async () => {
    srv = await startServer(mode);
    const tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    const admin = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    qid = (await importActive(admin, 'questionnaires/phq9-lhcforms.questionnaire.json')).id;
    patientId = (await api('POST', '/v1/patients', { body: patientInput() })).body.id;
  }, 60_000);
  afterAll(() => srv?.close());

  it('50 parallel PATCHes with the same If-Match: exactly one 200, 49 × 412, the stored draft is the winner’s', async () => {
    const r = (await api('POST', PATH, { body: { questionnaireId: qid, patientId } })).body;
    const all = phq9Items();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => api('PATCH', `${PATH}/${r.id}`, { body: { item: all.slice(0, (i % all.length) + 1) }, headers: { 'if-match': 'W/"1"' } })),
    );
    const winners = results.filter((x) => x.status === 200);
    expect(winners, JSON.stringify(results.map((x) => x.status))).toHaveLength(1);
    for (const l of results.filter((x) => x.status !== 200)) {
      expectError(l, 412, 'VERSION_CONFLICT');
      expect(l.headers.get('etag')).toBe('W/"2"');
    }
    const got = await api('GET', `${PATH}/${r.id}`);
    expect(got.body).toEqual(winners[0]!.body);
    expect(got.body.version).toBe(2);
  }, 120_000);

  it('50 parallel identical POSTs with one Idempotency-Key: one row, 50 identical bodies, 49 replayed', async () => {
    const key = `qr-${Date.now()}`;
    const fresh = (await api('POST', '/v1/patients', { body: patientInput() })).body.id;
    const body = { questionnaireId: qid, patientId: fresh, item: phq9Items().slice(0, 3) };
    const results = await Promise.all(Array.from({ length: 50 }, () => api('POST', PATH, { body, headers: { 'idempotency-key': key } })));
    expect(results.map((x) => x.status)).toEqual(Array(50).fill(201));
    const first = results[0]!.text;
    expect(results.every((x) => x.text === first)).toBe(true);
    expect(results.filter((x) => x.headers.get('idempotency-replayed') === 'true')).toHaveLength(49);
    const id = results[0]!.body.id;
    expect(results.every((x) => x.headers.get('location') === `${PATH}/${id}`)).toBe(true);
    const list = await api('GET', `${PATH}?patientId=${fresh}&limit=100`);
    expect(list.body.data.map((x: any) => x.id)).toEqual([id]);
    expect(list.body.data[0].item).toEqual(body.item);
    // the same key with a different request is refused
    expectError(await api('POST', PATH, { body: { ...body, item: [] }, headers: { 'idempotency-key': key } }), 422, 'IDEMPOTENCY_KEY_REUSED');
  }, 120_000);

  it('concurrent submits of the same version: exactly one 200', async () => {
    const r = (await api('POST', PATH, { body: { questionnaireId: qid, patientId, item: phq9Items() } })).body;
    const results = await Promise.all(Array.from({ length: 10 }, () => api('POST', `${PATH}/${r.id}/submit`, { headers: { 'if-match': 'W/"1"' } })));
    expect(results.filter((x) => x.status === 200)).toHaveLength(1);
    for (const l of results.filter((x) => x.status !== 200)) expectError(l, 409, 'RESPONSE_SUBMITTED');
  }, 60_000);
});
