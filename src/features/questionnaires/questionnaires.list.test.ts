// Questionnaire lists (filters, keyset pages) and tenant isolation over real HTTP and in the
// database, on PGlite and (with TEST_DATABASE_URL) the real PostgreSQL.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client, type Res, ifMatch } from '../../../test/helpers/http.js';
import { simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const Q = '/v1/questionnaires';
const rowsOf = (r: unknown) => (r as { rows: Record<string, unknown>[] }).rows;

describe.each(storageModes())('questionnaire lists and tenancy on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    api = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
  });
  afterAll(() => srv?.close());

  const create = async (body: unknown = simpleQuestionnaire()) => {
    const res = await api('POST', Q, { body });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };

  describe('listing', () => {
    let own: Client;
    const made: Record<string, any> = {};
    beforeAll(async () => {
      own = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['manager'] }));
      const post = async (name: string, over: Record<string, unknown>) => {
        const res: Res = await own('POST', Q, { body: simpleQuestionnaire(over) });
        expect(res.status, res.text).toBe(201);
        made[name] = res.body;
      };
      await post('phq', { title: 'PHQ-9 Depression Screen', url: 'https://forms.example.org/phq9', status: 'active' });
      await post('gad', { title: 'GAD-7 Anxiety', url: 'https://forms.example.org/gad7' });
      await post('phqOld', { title: 'phq-9 (2019)', url: 'https://forms.example.org/phq9', status: 'retired' });
      await post('pct', { title: '100% sure_not a wildcard', url: 'https://forms.example.org/x' });
      await post('untitled', { title: undefined, url: undefined });
    });
    const ids = (res: Res) => res.body.data.map((q: { id: string }) => q.id);

    it('filters by status, title (case-insensitive substring) and url (exact), combined', async () => {
      expect(ids(await own('GET', `${Q}?status=active`))).toEqual([made.phq.id]);
      expect(ids(await own('GET', `${Q}?status=draft`))).toEqual([made.gad.id, made.pct.id, made.untitled.id]);
      expect(ids(await own('GET', `${Q}?title=PHQ`))).toEqual([made.phq.id, made.phqOld.id]);
      expect(ids(await own('GET', `${Q}?title=depression%20sc`))).toEqual([made.phq.id]);
      expect(ids(await own('GET', `${Q}?title=anx`))).toEqual([made.gad.id]);
      expect(ids(await own('GET', `${Q}?url=${encodeURIComponent('https://forms.example.org/phq9')}`))).toEqual([made.phq.id, made.phqOld.id]);
      expect(ids(await own('GET', `${Q}?url=${encodeURIComponent('https://forms.example.org/phq')}`))).toEqual([]);
      expect(ids(await own('GET', `${Q}?title=phq&status=retired`))).toEqual([made.phqOld.id]);
    });

    it('treats % and _ in the title filter literally', async () => {
      expect(ids(await own('GET', `${Q}?title=${encodeURIComponent('100%')}`))).toEqual([made.pct.id]);
      expect(ids(await own('GET', `${Q}?title=${encodeURIComponent('e_n')}`))).toEqual([made.pct.id]);
      expect(ids(await own('GET', `${Q}?title=${encodeURIComponent('%')}`))).toEqual([made.pct.id]);
      expect(ids(await own('GET', `${Q}?title=${encodeURIComponent('_')}`))).toEqual([made.pct.id]);
    });

    it('pages with a keyset cursor in creation order, without gaps or repeats', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: Res = await own('GET', `${Q}?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        expect(res.body.page.limit).toBe(2);
        seen.push(...ids(res));
        cursor = res.body.page.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      expect(pages).toBe(3);
      expect(seen).toEqual(['phq', 'gad', 'phqOld', 'pct', 'untitled'].map((k) => made[k].id));
      const all = await own('GET', Q);
      expect(all.body.page).toEqual({ limit: 20, nextCursor: null });
      expect(all.body.data[0]).toEqual(made.phq);
    });

    it('rejects bad list parameters', async () => {
      for (const q of ['status=unknown', 'limit=0', 'limit=101', 'title=', 'foo=1', 'cursor=zzz']) {
        expectError(await own('GET', `${Q}?${q}`), 400, 'VALIDATION_FAILED');
      }
    });
  });

  it('keeps tenants apart: another tenant gets 404 and an empty list', async () => {
    const q = await create();
    const other = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
    expectError(await other('GET', `${Q}/${q.id}`), 404, 'NOT_FOUND');
    expectError(await other('PATCH', `${Q}/${q.id}`, { body: { status: 'active' }, headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expectError(await other('DELETE', `${Q}/${q.id}`, { headers: ifMatch(1) }), 404, 'NOT_FOUND');
    expect((await other('GET', Q)).body.data).toEqual([]);
    expect((await other('GET', `${Q}?url=${encodeURIComponent(q.url)}`)).body.data).toEqual([]);
    expect((await api('GET', `${Q}/${q.id}`)).body).toEqual(q);
  });

  it('is walled off in the database too: forced row-level security, and the app role cannot delete rows', async () => {
    const mine = await create();
    const tenant = await srv.newTenant();
    // The application role, scoped to another tenant, sees none of these rows even without a WHERE.
    const seen = rowsOf(await srv.deps.db.read(tenant, (q) => q.execute(sql`select id from questionnaires where id = ${mine.id}`)));
    expect(seen).toEqual([]);
    const [rls] = await srv.deps.db.withOwner((s) =>
      s.query<{ relrowsecurity: boolean; relforcerowsecurity: boolean; can_delete: boolean }>(
        "select relrowsecurity, relforcerowsecurity, has_table_privilege('carebase_app', 'questionnaires', 'DELETE') as can_delete from pg_class where relname = 'questionnaires' and relkind = 'r'",
      ),
    );
    expect(rls).toEqual({ relrowsecurity: true, relforcerowsecurity: true, can_delete: false });
  });
});
