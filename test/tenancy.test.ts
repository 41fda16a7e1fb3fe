// Tenant isolation, twice: the API never shows or changes another tenant's resources (404, never
// 403), and row-level security stops a query that forgets the tenant filter.
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pgError } from '../src/platform/db/errors.js';
import { locationInput, patientInput, providerInput } from './helpers/factories.js';
import { client, expectError, type Client } from './helpers/http.js';
import { startServer, storageModes, type TestServer } from './helpers/server.js';

type Kind = 'patients' | 'providers' | 'locations';
const KINDS: Kind[] = ['patients', 'providers', 'locations'];

const rowsOf = (r: unknown) => (r as { rows: Record<string, unknown>[] }).rows;

describe.each(storageModes())('tenant isolation on %s', (mode) => {
  let srv: TestServer;
  let tenantA: string;
  let tenantB: string;
  let tenantEmpty: string;
  let apiA: Client;
  let apiB: Client;
  const a: Record<Kind, any[]> = { patients: [], providers: [], locations: [] };
  const b: Record<Kind, any[]> = { patients: [], providers: [], locations: [] };
  const mrnA = `MRN-A-${Date.now()}`;

  beforeAll(async () => {
    srv = await startServer(mode);
    [tenantA, tenantB, tenantEmpty] = [await srv.newTenant(), await srv.newTenant(), await srv.newTenant()];
    apiA = client(srv.url, await srv.token({ tenant: tenantA, roles: ['admin'], sub: 'alice' }));
    apiB = client(srv.url, await srv.token({ tenant: tenantB, roles: ['admin'], sub: 'bob' }));
    const create = async (api: Client, kind: Kind, body: unknown) => {
      const res = await api('POST', `/v1/${kind}`, { body });
      expect(res.status, `${kind} ${res.text}`).toBe(201);
      return res.body;
    };
    a.locations.push(await create(apiA, 'locations', locationInput({ name: 'A Clinic' })));
    a.patients.push(await create(apiA, 'patients', patientInput({ name: { given: ['Alba'], family: 'Aardvark' }, identifiers: [{ system: 'urn:test:mrn', value: mrnA }] })));
    a.patients.push(await create(apiA, 'patients', patientInput({ name: { given: ['Alba'], family: 'Abernathy' } })));
    a.providers.push(await create(apiA, 'providers', providerInput({ specialty: 'Oncology', locationIds: [a.locations[0].id] })));
    b.locations.push(await create(apiB, 'locations', locationInput({ name: 'B Clinic' })));
    b.patients.push(await create(apiB, 'patients', patientInput({ name: { given: ['Bea'], family: 'Bumblebee' } })));
    b.providers.push(await create(apiB, 'providers', providerInput({ specialty: 'Oncology' })));
  });
  afterAll(() => srv?.close());

  describe('through the API', () => {
    it.each(KINDS)('GET, PATCH and DELETE of a %s of tenant A with B\'s token are 404 NOT_FOUND', async (kind) => {
      const id = a[kind][0].id;
      expectError(await apiB('GET', `/v1/${kind}/${id}`), 404, 'NOT_FOUND');
      const patch = kind === 'locations' ? { name: 'Hijacked' } : kind === 'providers' ? { specialty: 'Hijacked' } : { phone: '+1 555 000 6666' };
      expectError(await apiB('PATCH', `/v1/${kind}/${id}`, { body: patch, headers: { 'if-match': 'W/"1"' } }), 404, 'NOT_FOUND');
      expectError(
        await apiB('PATCH', `/v1/${kind}/${id}`, { body: patch, headers: { 'if-match': 'W/"1"', 'content-type': 'application/merge-patch+json' } }),
        404,
        'NOT_FOUND',
      );
      expectError(await apiB('DELETE', `/v1/${kind}/${id}`, { headers: { 'if-match': 'W/"1"' } }), 404, 'NOT_FOUND');
      // Exactly what a never-existing id gets: nothing tells B the resource exists.
      const ghost = await apiB('GET', `/v1/${kind}/0192f3c4-0000-7000-8000-000000000000`);
      const cross = await apiB('GET', `/v1/${kind}/${id}`);
      expect(cross.body.error.message).toBe(ghost.body.error.message);
    });

    it('a patient principal of tenant B cannot read A\'s patient even when its patient_id names it', async () => {
      const api = client(srv.url, await srv.token({ tenant: tenantB, roles: ['patient'], patientId: a.patients[0].id }));
      expectError(await api('GET', `/v1/patients/${a.patients[0].id}`), 404, 'NOT_FOUND');
      const list = await api('GET', '/v1/patients');
      expect(list.status).toBe(200);
      expect(list.body.data).toEqual([]);
    });

    it.each(KINDS)('B\'s list of %s shows only B\'s, A\'s list only A\'s', async (kind) => {
      const listB = await apiB('GET', `/v1/${kind}?limit=100`);
      expect(listB.status).toBe(200);
      expect(listB.body.data.map((r: { id: string }) => r.id)).toEqual(b[kind].map((r) => r.id));
      const listA = await apiA('GET', `/v1/${kind}?limit=100`);
      expect(listA.body.data.map((r: { id: string }) => r.id).sort()).toEqual(a[kind].map((r) => r.id).sort());
      // An empty tenant sees nothing at all.
      const empty = client(srv.url, await srv.token({ tenant: tenantEmpty, roles: ['admin'] }));
      expect((await empty('GET', `/v1/${kind}`)).body.data).toEqual([]);
    });

    it('search filters do not reach into another tenant (name, identifier, birthDate, specialty, locationId)', async () => {
      for (const q of ['name=Aardvark', 'name=alba', `identifier=${encodeURIComponent(`urn:test:mrn|${mrnA}`)}`, `identifier=${mrnA}`, 'birthDate=1984-03-09']) {
        const res = await apiB('GET', `/v1/patients?${q}`);
        expect(res.status, q).toBe(200);
        expect(res.body.data.map((p: { id: string }) => p.id).filter((id: string) => a.patients.some((x) => x.id === id)), q).toEqual([]);
      }
      // The same searches find them for A (so the filters themselves work).
      expect((await apiA('GET', '/v1/patients?name=Aardvark')).body.data.map((p: { id: string }) => p.id)).toEqual([a.patients[0].id]);
      expect((await apiA('GET', `/v1/patients?identifier=${mrnA}`)).body.data.map((p: { id: string }) => p.id)).toEqual([a.patients[0].id]);
      const byLocation = await apiB('GET', `/v1/providers?locationId=${a.locations[0].id}`);
      expect(byLocation.status).toBe(200);
      expect(byLocation.body.data).toEqual([]);
      expect((await apiA('GET', `/v1/providers?locationId=${a.locations[0].id}`)).body.data.length).toBe(1);
      const bySpecialty = await apiB('GET', '/v1/providers?specialty=Oncology');
      expect(bySpecialty.body.data.map((p: { id: string }) => p.id)).toEqual([b.providers[0].id]);
    });

    it('B cannot link its provider to A\'s location (validation, not a silent cross-tenant reference)', async () => {
      const res = await apiB('POST', '/v1/providers', { body: providerInput({ locationIds: [a.locations[0].id] }) });
      const err = expectError(res, 400, 'VALIDATION_FAILED');
      expect(err.details?.map((d) => d.path)).toEqual(['/locationIds/0']);
      const patch = await apiB('PATCH', `/v1/providers/${b.providers[0].id}`, { body: { locationIds: [a.locations[0].id] }, headers: { 'if-match': 'W/"1"' } });
      expectError(patch, 400, 'VALIDATION_FAILED');
    });

    it('A\'s resources are unchanged afterwards', async () => {
      for (const kind of KINDS) {
        for (const r of a[kind]) {
          const res = await apiA('GET', `/v1/${kind}/${r.id}`);
          expect(res.status, `${kind} ${r.id}`).toBe(200);
          expect(res.body).toEqual(r);
          expect(res.headers.get('etag')).toBe('W/"1"');
        }
      }
    });
  });

  describe('row-level security (a query that forgets the tenant filter)', () => {
    const countAs = async (tenant: string, table = 'patients') =>
      Number(rowsOf(await srv.deps.db.read(tenant, (q) => q.execute(sql`select count(*)::int as n from ${sql.identifier(table)}`)))[0]!.n);
    const ownerCount = async (table = 'patients') =>
      Number((await srv.deps.db.withOwner((s) => s.query<{ n: number }>(`select count(*)::int as n from ${table}`)))[0]!.n);

    it('counts only the tenant\'s own rows, in read() and in tx()', async () => {
      expect(await ownerCount()).toBeGreaterThanOrEqual(3); // the owner sees every tenant's rows
      expect(await countAs(tenantB)).toBe(1);
      expect(await countAs(tenantA)).toBe(2);
      expect(Number(rowsOf(await srv.deps.db.tx(tenantB, (q) => q.execute(sql`select count(*)::int as n from patients`)))[0]!.n)).toBe(1);
      for (const table of ['providers', 'locations']) {
        expect(await countAs(tenantB, table), table).toBe(1);
        expect(await countAs(tenantA, table), table).toBe(1);
      }
      const ids = rowsOf(await srv.deps.db.read(tenantB, (q) => q.execute(sql`select id, tenant_id from patients`)));
      expect(ids).toEqual([{ id: b.patients[0].id, tenant_id: tenantB }]);
      // Alternating tenants on the same pool gives each its own view.
      for (let i = 0; i < 5; i++) {
        expect(await countAs(tenantA)).toBe(2);
        expect(await countAs(tenantB)).toBe(1);
      }
    });

    it('a tenant with no rows, an unknown tenant and an empty tenant id count 0', async () => {
      expect(await countAs(tenantEmpty)).toBe(0);
      expect(await countAs('no-such-tenant')).toBe(0);
      expect(await countAs('')).toBe(0);
      expect(rowsOf(await srv.deps.db.read(tenantEmpty, (q) => q.execute(sql`select id from tenants`)))).toEqual([{ id: tenantEmpty }]);
    });

    it('an explicit filter on another tenant finds nothing, and cross-tenant UPDATE changes nothing', async () => {
      expect(rowsOf(await srv.deps.db.read(tenantB, (q) => q.execute(sql`select id from patients where tenant_id = ${tenantA}`)))).toEqual([]);
      const upd = await srv.deps.db.tx(tenantB, (q) => q.execute(sql`update patients set version = version + 100 where id = ${a.patients[0].id}::uuid returning id`));
      expect(rowsOf(upd)).toEqual([]);
      const [row] = await srv.deps.db.withOwner((s) => s.query<{ version: number }>('select version from patients where id = $1', [a.patients[0].id]));
      expect(row!.version).toBe(1);
    });

    it('inserting a row of another tenant is refused by the policy (WITH CHECK)', async () => {
      const insert = srv.deps.db.tx(tenantA, (q) =>
        q.execute(sql`insert into patients (tenant_id, id, name, name_tokens, birth_date, gender, created_at, updated_at)
          values (${tenantB}, gen_random_uuid(), '{"given":["X"],"family":"Y"}'::jsonb, '{x,y}', '2000-01-01', 'other', now(), now())`),
      );
      const err = await insert.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeDefined();
      expect(pgError(err)?.code).toBe('42501'); // insufficient_privilege: new row violates row-level security policy
      expect(await countAs(tenantB)).toBe(1);
      // Moving one of A's rows to B by UPDATE is refused the same way.
      const move = await srv.deps.db.tx(tenantA, (q) => q.execute(sql`update patients set tenant_id = ${tenantB} where id = ${a.patients[1].id}::uuid`)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(pgError(move)?.code).toMatch(/^(42501|23503)$/);
      expect(await countAs(tenantA)).toBe(2);
    });

    it('the application role cannot DELETE from patients (permission denied)', async () => {
      const err = await srv.deps.db.tx(tenantA, (q) => q.execute(sql`delete from patients`)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(pgError(err)?.code).toBe('42501');
      expect(await countAs(tenantA)).toBe(2);
      const truncate = await srv.deps.db.tx(tenantA, (q) => q.execute(sql`truncate patients`)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(pgError(truncate)?.code).toBe('42501');
    });

    it('queries really run as carebase_app, which is neither superuser nor BYPASSRLS', async () => {
      const [who] = rowsOf(await srv.deps.db.read(tenantA, (q) => q.execute(sql`select current_user as u, current_setting('app.tenant_id', true) as t`)));
      expect(who).toEqual({ u: 'carebase_app', t: tenantA });
      const roles = await srv.deps.db.withOwner((s) =>
        s.query<{ rolsuper: boolean; rolbypassrls: boolean; rolcanlogin: boolean }>("select rolsuper, rolbypassrls, rolcanlogin from pg_roles where rolname = 'carebase_app'"),
      );
      expect(roles).toEqual([{ rolsuper: false, rolbypassrls: false, rolcanlogin: false }]);
      const forced = await srv.deps.db.withOwner((s) =>
        s.query<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
          "select relname, relrowsecurity, relforcerowsecurity from pg_class where relname in ('tenants', 'patients', 'providers', 'locations') and relkind = 'r' order by relname",
        ),
      );
      expect(forced.map((r) => [r.relname, r.relrowsecurity, r.relforcerowsecurity])).toEqual([
        ['locations', true, true],
        ['patients', true, true],
        ['providers', true, true],
        ['tenants', true, true],
      ]);
    });

    it.runIf(mode === 'postgres')('a plain connection as carebase_app with no tenant set sees 0 rows, though rows exist', async () => {
      const c = new pg.Client({ connectionString: inject('postgresUrl')! });
      await c.connect();
      try {
        await c.query('set role carebase_app');
        expect((await c.query('select current_user as u')).rows[0].u).toBe('carebase_app');
        expect((await c.query("select current_setting('app.tenant_id', true) as t")).rows[0].t ?? '').toBe('');
        expect((await c.query('select count(*)::int as n from patients')).rows[0].n).toBe(0);
        expect((await c.query('select count(*)::int as n from providers')).rows[0].n).toBe(0);
        expect((await c.query('select count(*)::int as n from tenants')).rows[0].n).toBe(0);
        // Setting a tenant shows exactly that tenant's rows (the 0 above is the policy, not an empty table).
        await c.query("select set_config('app.tenant_id', $1, false)", [tenantA]);
        expect((await c.query('select count(*)::int as n from patients')).rows[0].n).toBe(2);
        await c.query("select set_config('app.tenant_id', '', false)");
        expect((await c.query('select count(*)::int as n from patients')).rows[0].n).toBe(0);
        // And it cannot turn the policy off or become someone else.
        await expect(c.query('alter table patients disable row level security')).rejects.toMatchObject({ code: '42501' });
        await expect(c.query('set row_security = off; select count(*) from patients')).rejects.toThrow();
        await c.query('reset role');
        expect(Number((await c.query('select count(*)::int as n from patients')).rows[0].n)).toBeGreaterThanOrEqual(3);
      } finally {
        await c.end();
      }
    });
  });
});
