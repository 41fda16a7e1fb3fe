// Who may do what with questionnaires, over real HTTP: everyone reads (patients only published
// ones), clinicians author drafts, admins and managers publish, retire and delete drafts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../auth/principal.js';
import { client, expectError, type Client, ifMatch } from '../../../test/helpers/http.js';
import { USSG_BUNDLE, fixture, simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { clientAs, startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const Q = '/v1/questionnaires';
describe.each(storageModes())('questionnaire permissions on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let admin: Client;
  const as = (role: Role) => clientAs(srv, tenant, role);
  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    admin = await as('admin');
  });
  afterAll(() => srv?.close());

  const seed = async (status = 'draft') => {
    const res = await admin('POST', Q, { body: simpleQuestionnaire({ status }) });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; version: number; status: string };
  };

  it.each(['admin', 'manager'] as const)('%s may create drafts and active ones, edit drafts, publish, retire and delete drafts', async (role) => {
    const api = await as(role);
    const draft = await api('POST', Q, { body: simpleQuestionnaire() });
    expect(draft.status).toBe(201);
    expect((await api('PATCH', `${Q}/${draft.body.id}`, { body: { title: 'Edited' }, headers: ifMatch(1) })).status).toBe(200);
    expect((await api('PATCH', `${Q}/${draft.body.id}`, { body: { status: 'active' }, headers: ifMatch(2) })).status).toBe(200);
    expect((await api('PATCH', `${Q}/${draft.body.id}`, { body: { status: 'retired' }, headers: ifMatch(3) })).status).toBe(200);
    expect((await api('POST', Q, { body: fixture(USSG_BUNDLE) })).status).toBe(201);
    const other = await api('POST', Q, { body: simpleQuestionnaire() });
    expect((await api('DELETE', `${Q}/${other.body.id}`, { headers: ifMatch(1) })).status).toBe(204);
  });

  it('clinician may create and edit drafts, but not publish, retire, import active ones or delete', async () => {
    const api = await as('clinician');
    const draft = await api('POST', Q, { body: simpleQuestionnaire() });
    expect(draft.status, draft.text).toBe(201);
    const edited = await api('PATCH', `${Q}/${draft.body.id}`, { body: { title: 'By a clinician' }, headers: ifMatch(1) });
    expect(edited.status).toBe(200);
    for (const status of ['active', 'retired']) {
      expectError(await api('PATCH', `${Q}/${draft.body.id}`, { body: { status }, headers: ifMatch(2) }), 403, 'FORBIDDEN');
    }
    expectError(await api('POST', Q, { body: simpleQuestionnaire({ status: 'active' }) }), 403, 'FORBIDDEN');
    expectError(await api('POST', Q, { body: fixture(USSG_BUNDLE) }), 403, 'FORBIDDEN'); // its Questionnaire is active
    expectError(await api('DELETE', `${Q}/${draft.body.id}`, { headers: ifMatch(2) }), 403, 'FORBIDDEN');
    // A published one does not change for anyone: the state conflict, not the role, answers.
    const active = await seed('active');
    expectError(await api('PATCH', `${Q}/${active.id}`, { body: { title: 'Nope' }, headers: ifMatch(1) }), 409, 'CONFLICT');
    expect((await admin('GET', `${Q}/${draft.body.id}`)).body).toMatchObject({ status: 'draft', version: 2, title: 'By a clinician' });
  });

  it.each(['staff', 'patient'] as const)('%s may not create, edit or delete (403), and nothing changes', async (role) => {
    const api = await as(role);
    const q = await seed();
    const before = (await admin('GET', `${Q}?limit=100`)).body.data.length;
    expectError(await api('POST', Q, { body: simpleQuestionnaire() }), 403, 'FORBIDDEN');
    expectError(await api('PATCH', `${Q}/${q.id}`, { body: { title: 'Nope' }, headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expectError(await api('PATCH', `${Q}/${q.id}`, { body: { status: 'active' }, headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expectError(await api('DELETE', `${Q}/${q.id}`, { headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expect((await admin('GET', `${Q}?limit=100`)).body.data.length).toBe(before);
    expect((await admin('GET', `${Q}/${q.id}`)).body).toMatchObject({ version: 1, status: 'draft' });
  });

  it.each(['admin', 'manager', 'clinician', 'staff'] as const)('%s reads every questionnaire, drafts included', async (role) => {
    const draft = await seed();
    const api = await as(role);
    expect((await api('GET', `${Q}/${draft.id}`)).status).toBe(200);
    const ids = (await api('GET', `${Q}?limit=100`)).body.data.map((q: { id: string }) => q.id);
    expect(ids).toContain(draft.id);
  });

  it('patient reads active and retired questionnaires only: a draft is 404 and left out of lists', async () => {
    const draft = await seed();
    const active = await seed('active');
    const retired = await seed('retired');
    const api = await as('patient');
    expectError(await api('GET', `${Q}/${draft.id}`), 404, 'NOT_FOUND');
    expect((await api('GET', `${Q}/${active.id}`)).body.status).toBe('active');
    expect((await api('GET', `${Q}/${retired.id}`)).body.status).toBe('retired');
    const ids = (await api('GET', `${Q}?limit=100`)).body.data.map((q: { id: string }) => q.id);
    expect(ids).toEqual(expect.arrayContaining([active.id, retired.id]));
    expect(ids).not.toContain(draft.id);
    expect((await api('GET', `${Q}?status=draft`)).body.data).toEqual([]);
  });

  it('without a token every route is 401', async () => {
    const anon = client(srv.url);
    const q = await seed();
    expectError(await anon('GET', Q), 401, 'UNAUTHENTICATED');
    expectError(await anon('GET', `${Q}/${q.id}`), 401, 'UNAUTHENTICATED');
    expectError(await anon('POST', Q, { body: simpleQuestionnaire() }), 401, 'UNAUTHENTICATED');
    expectError(await anon('PATCH', `${Q}/${q.id}`, { body: { status: 'active' }, headers: ifMatch(1) }), 401, 'UNAUTHENTICATED');
    expectError(await anon('DELETE', `${Q}/${q.id}`, { headers: ifMatch(1) }), 401, 'UNAUTHENTICATED');
  });
});
