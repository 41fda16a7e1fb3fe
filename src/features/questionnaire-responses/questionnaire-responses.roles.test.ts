// Who may do what with questionnaire responses, including patient scope.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { fixture, importActive } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const PATH = '/v1/questionnaire-responses';
const phq9Items = (): any[] => fixture('questionnaires/phq9-lhcforms.questionnaireresponse.json').item;

describe.each(storageModes())('questionnaire response roles on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let clinician: Client;
  let staff: Client;
  let manager: Client;
  let alice: Client;
  let bob: Client;
  let aliceId: string;
  let bobId: string;
  let qid: string;

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    const admin = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    clinician = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    staff = client(srv.url, await srv.token({ tenant, roles: ['staff'] }));
    manager = client(srv.url, await srv.token({ tenant, roles: ['manager'] }));
    qid = (await importActive(admin, 'questionnaires/phq9-lhcforms.questionnaire.json')).id;
    aliceId = (await admin('POST', '/v1/patients', { body: patientInput() })).body.id;
    bobId = (await admin('POST', '/v1/patients', { body: patientInput() })).body.id;
    alice = client(srv.url, await srv.token({ tenant, roles: ['patient'], sub: 'alice', patientId: aliceId }));
    bob = client(srv.url, await srv.token({ tenant, roles: ['patient'], sub: 'bob', patientId: bobId }));
  }, 60_000);
  afterAll(() => srv?.close());

  it('a patient starts, fills and submits its own response, and reads it', async () => {
    const r = await alice('POST', PATH, { body: { questionnaireId: qid, patientId: aliceId } });
    expect(r.status, r.text).toBe(201);
    const saved = await alice('PATCH', `${PATH}/${r.body.id}`, { body: { item: phq9Items() }, headers: { 'if-match': 'W/"1"' } });
    expect(saved.status, saved.text).toBe(200);
    const done = await alice('POST', `${PATH}/${r.body.id}/submit`, { headers: { 'if-match': 'W/"2"' } });
    expect(done.status, done.text).toBe(200);
    expect(done.body.score).toEqual({ total: 15, band: 'moderately severe' });
    expect((await alice('GET', `${PATH}/${r.body.id}`)).body).toEqual(done.body);
    // staff and clinicians read it
    expect((await staff('GET', `${PATH}/${r.body.id}`)).status).toBe(200);
    expect((await clinician('GET', `${PATH}/${r.body.id}`)).status).toBe(200);
    // a patient cannot amend
    expectError(await alice('POST', `${PATH}/${r.body.id}/amend`, { body: { item: phq9Items(), reason: 'mine' } }), 403, 'FORBIDDEN');
  });

  it("another patient's response is 404 for every verb, and a patient cannot start one for someone else", async () => {
    const r = (await clinician('POST', PATH, { body: { questionnaireId: qid, patientId: aliceId } })).body;
    const url = `${PATH}/${r.id}`;
    expectError(await bob('GET', url), 404, 'NOT_FOUND');
    expectError(await bob('GET', `${url}?format=fhir`), 404, 'NOT_FOUND');
    expectError(await bob('PATCH', url, { body: { item: [] }, headers: { 'if-match': 'W/"1"' } }), 404, 'NOT_FOUND');
    expectError(await bob('POST', `${url}/submit`, { headers: { 'if-match': 'W/"1"' } }), 404, 'NOT_FOUND');
    expectError(await bob('DELETE', url, { headers: { 'if-match': 'W/"1"' } }), 404, 'NOT_FOUND');
    const forOther = expectError(await bob('POST', PATH, { body: { questionnaireId: qid, patientId: aliceId } }), 400, 'VALIDATION_FAILED');
    expect(forOther.details?.map((d) => d.path)).toEqual(['/patientId']);
    // unchanged by all of that
    expect((await clinician('GET', url)).body).toEqual(r);
  });

  it('a patient lists only its own responses, whatever patientId it asks for', async () => {
    await bob('POST', PATH, { body: { questionnaireId: qid, patientId: bobId } });
    const own = await bob('GET', `${PATH}?limit=100`);
    expect(own.status).toBe(200);
    expect(own.body.data.length).toBeGreaterThan(0);
    expect(own.body.data.every((x: any) => x.patientId === bobId)).toBe(true);
    expect((await bob('GET', `${PATH}?patientId=${aliceId}`)).body.data).toEqual([]);
    const all = await clinician('GET', `${PATH}?limit=100`);
    expect(new Set(all.body.data.map((x: any) => x.patientId))).toEqual(new Set([aliceId, bobId]));
  });

  it('a patient token without patient_id is refused (401)', async () => {
    const nobody = client(srv.url, await srv.token({ tenant, roles: ['patient'] }));
    expectError(await nobody('GET', `${PATH}?limit=100`), 401, 'UNAUTHENTICATED');
  });

  it('staff fill and submit on behalf of a patient; clinicians and admins amend, staff and managers may not', async () => {
    const r = await staff('POST', PATH, { body: { questionnaireId: qid, patientId: aliceId, item: phq9Items() } });
    expect(r.status, r.text).toBe(201);
    const done = await staff('POST', `${PATH}/${r.body.id}/submit`, { headers: { 'if-match': 'W/"1"' } });
    expect(done.status, done.text).toBe(200);
    const amend = { body: { item: phq9Items(), reason: 'Reviewed with the patient' } };
    expectError(await staff('POST', `${PATH}/${r.body.id}/amend`, amend), 403, 'FORBIDDEN');
    expectError(await manager('POST', `${PATH}/${r.body.id}/amend`, amend), 403, 'FORBIDDEN');
    const ok = await clinician('POST', `${PATH}/${r.body.id}/amend`, amend);
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body).toMatchObject({ status: 'amended', amends: r.body.id });
  });

  it('another tenant sees nothing: 404', async () => {
    const r = (await clinician('POST', PATH, { body: { questionnaireId: qid, patientId: aliceId } })).body;
    const other = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
    expectError(await other('GET', `${PATH}/${r.id}`), 404, 'NOT_FOUND');
    expect((await other('GET', `${PATH}?limit=100`)).body.data).toEqual([]);
  });
});
