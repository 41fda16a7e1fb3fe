// Who may do what on /v1/patients: staff roles, the patient role (its own record only), unknown
// roles, no token, and other tenants.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { patientInput } from '../../../test/helpers/factories.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import type { Role } from '../../auth/principal.js';

type P = { id: string; version: number };

describe.each(storageModes())('patients roles on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let admin: Client;
  const as = async (roles: string[], patientId?: string, t = tenant) =>
    client(srv.url, await srv.token({ tenant: t, roles: roles as Role[], ...(patientId ? { patientId } : {}) }));

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    admin = await as(['admin']);
  });
  afterAll(() => srv?.close());

  async function create(): Promise<P> {
    const res = await admin('POST', '/v1/patients', { body: patientInput() });
    expect(res.status).toBe(201);
    return res.body;
  }

  /** Asserts the patient is still there at the given version. */
  async function intact(p: P, version = p.version) {
    const got = await admin('GET', `/v1/patients/${p.id}`);
    expect(got.status).toBe(200);
    expect(got.body.version).toBe(version);
  }

  describe.each(['clinician', 'staff', 'manager', 'admin'] as const)('%s', (role) => {
    it('can create, read, list and patch', async () => {
      const api = await as([role]);
      const res = await api('POST', '/v1/patients', { body: patientInput() });
      expect(res.status).toBe(201);
      const got = await api('GET', `/v1/patients/${res.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(res.body);
      const list = await api('GET', '/v1/patients?limit=100');
      expect(list.status).toBe(200);
      expect(list.body.data.map((x: P) => x.id)).toContain(res.body.id);
      const patched = await api('PATCH', `/v1/patients/${res.body.id}`, { body: { gender: 'other' }, headers: { 'if-match': 'W/"1"' } });
      expect(patched.status).toBe(200);
      expect(patched.body.version).toBe(2);
    });
  });

  it.each(['staff', 'clinician'] as const)('%s may not DELETE: 403 FORBIDDEN and the patient stays', async (role) => {
    const p = await create();
    const api = await as([role]);
    expectError(await api('DELETE', `/v1/patients/${p.id}`, { headers: { 'if-match': 'W/"1"' } }), 403, 'FORBIDDEN');
    expectError(await api('DELETE', `/v1/patients/${p.id}`), 403, 'FORBIDDEN');
    await intact(p);
  });

  it.each(['manager', 'admin'] as const)('%s may DELETE', async (role) => {
    const p = await create();
    const api = await as([role]);
    expect((await api('DELETE', `/v1/patients/${p.id}`, { headers: { 'if-match': 'W/"1"' } })).status).toBe(204);
    expectError(await admin('GET', `/v1/patients/${p.id}`), 404, 'NOT_FOUND');
  });

  it('staff together with manager may delete (roles add up)', async () => {
    const p = await create();
    const api = await as(['staff', 'manager']);
    expect((await api('DELETE', `/v1/patients/${p.id}`, { headers: { 'if-match': 'W/"1"' } })).status).toBe(204);
  });

  describe('patient role', () => {
    let me: P;
    let other: P;
    let self: Client;
    beforeAll(async () => {
      me = await create();
      other = await create();
      self = await as(['patient'], me.id);
    });

    it('reads its own record', async () => {
      const got = await self('GET', `/v1/patients/${me.id}`);
      expect(got.status).toBe(200);
      expect(got.body.id).toBe(me.id);
      expect(got.headers.get('etag')).toBe(`W/"${me.version}"`);
    });

    it("gets 404 NOT_FOUND (not 403) for another patient's id, and for an unknown id", async () => {
      expectError(await self('GET', `/v1/patients/${other.id}`), 404, 'NOT_FOUND');
      expectError(await self('GET', '/v1/patients/01890a5d-ac96-774b-bcce-b302099a8057'), 404, 'NOT_FOUND');
    });

    it('lists only itself, whatever the filters', async () => {
      const list = await self('GET', '/v1/patients?limit=100');
      expect(list.status).toBe(200);
      expect(list.body.data.map((x: P) => x.id)).toEqual([me.id]);
      expect(list.body.page.nextCursor).toBeNull();
      // the other patient has the same name (same factory input), still invisible
      const byName = await self('GET', '/v1/patients?name=nunez');
      expect(byName.body.data.map((x: P) => x.id)).toEqual([me.id]);
      const byBirth = await self('GET', '/v1/patients?birthDate=1984-03-09');
      expect(byBirth.body.data.map((x: P) => x.id)).toEqual([me.id]);
      const byOtherIdentifier = await admin('GET', `/v1/patients/${other.id}`);
      const ident = byOtherIdentifier.body.identifiers[0];
      const none = await self('GET', `/v1/patients?identifier=${encodeURIComponent(`${ident.system}|${ident.value}`)}`);
      expect(none.status).toBe(200);
      expect(none.body.data).toEqual([]);
    });

    it('may not POST, PATCH or DELETE (403), even its own record, and nothing changes', async () => {
      expectError(await self('POST', '/v1/patients', { body: patientInput() }), 403, 'FORBIDDEN');
      for (const target of [me, other]) {
        expectError(await self('PATCH', `/v1/patients/${target.id}`, { body: { gender: 'other' }, headers: { 'if-match': 'W/"1"' } }), 403, 'FORBIDDEN');
        expectError(await self('DELETE', `/v1/patients/${target.id}`, { headers: { 'if-match': 'W/"1"' } }), 403, 'FORBIDDEN');
        await intact(target, 1);
      }
    });

    it('a patient token for a deleted patient sees nothing', async () => {
      const gone = await create();
      const ghost = await as(['patient'], gone.id);
      expect((await admin('DELETE', `/v1/patients/${gone.id}`, { headers: { 'if-match': 'W/"1"' } })).status).toBe(204);
      expectError(await ghost('GET', `/v1/patients/${gone.id}`), 404, 'NOT_FOUND');
      const list = await ghost('GET', '/v1/patients');
      expect(list.status).toBe(200);
      expect(list.body.data).toEqual([]);
    });
  });

  describe('tokens without a known role', () => {
    it.each([
      ['unknown strings', ['superuser', 'root', 'ADMIN', 'Clinician']],
      ['no roles at all', []],
    ])('%s → 403 FORBIDDEN on every route, and nothing changes', async (_what, roles) => {
      const p = await create();
      const api = await as(roles);
      expectError(await api('POST', '/v1/patients', { body: patientInput() }), 403, 'FORBIDDEN');
      expectError(await api('GET', '/v1/patients'), 403, 'FORBIDDEN');
      expectError(await api('GET', `/v1/patients/${p.id}`), 403, 'FORBIDDEN');
      expectError(await api('PATCH', `/v1/patients/${p.id}`, { body: { gender: 'other' }, headers: { 'if-match': 'W/"1"' } }), 403, 'FORBIDDEN');
      expectError(await api('DELETE', `/v1/patients/${p.id}`, { headers: { 'if-match': 'W/"1"' } }), 403, 'FORBIDDEN');
      await intact(p, 1);
    });

    it('a 403 body does not reveal the patient', async () => {
      const p = await create();
      const api = await as(['superuser']);
      const res = await api('GET', `/v1/patients/${p.id}`);
      expectError(res, 403, 'FORBIDDEN');
      expect(res.text).not.toContain('Núñez');
      expect(res.text).not.toContain('1984-03-09');
    });
  });

  describe('authentication', () => {
    it('no token → 401 UNAUTHENTICATED with WWW-Authenticate: Bearer on every route', async () => {
      const p = await create();
      const anon = client(srv.url);
      const calls = [
        anon('POST', '/v1/patients', { body: patientInput() }),
        anon('GET', '/v1/patients'),
        anon('GET', `/v1/patients/${p.id}`),
        anon('PATCH', `/v1/patients/${p.id}`, { body: { gender: 'other' }, headers: { 'if-match': 'W/"1"' } }),
        anon('DELETE', `/v1/patients/${p.id}`, { headers: { 'if-match': 'W/"1"' } }),
      ];
      for (const res of await Promise.all(calls)) {
        expectError(res, 401, 'UNAUTHENTICATED');
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
      }
      await intact(p, 1);
    });

    it('a tampered token → 401', async () => {
      const token = await srv.token({ tenant, roles: ['admin'] });
      const [h, payload, sig] = token.split('.');
      const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), roles: ['admin', 'manager'] })).toString('base64url');
      expectError(await client(srv.url, `${h}.${forged}.${sig}`)('GET', '/v1/patients'), 401, 'UNAUTHENTICATED');
    });

    it('a token for a tenant that is not provisioned → 403', async () => {
      const api = await as(['admin'], undefined, 't-not-provisioned');
      expectError(await api('GET', '/v1/patients'), 403, 'FORBIDDEN');
    });
  });

  describe('tenant isolation', () => {
    it("another tenant's admin gets 404 NOT_FOUND for the patient and never lists it", async () => {
      const p = await create();
      const foreign = await as(['admin'], undefined, await srv.newTenant());
      expectError(await foreign('GET', `/v1/patients/${p.id}`), 404, 'NOT_FOUND');
      expectError(await foreign('PATCH', `/v1/patients/${p.id}`, { body: { gender: 'other' }, headers: { 'if-match': 'W/"1"' } }), 404, 'NOT_FOUND');
      expectError(await foreign('DELETE', `/v1/patients/${p.id}`, { headers: { 'if-match': 'W/"1"' } }), 404, 'NOT_FOUND');
      const list = await foreign('GET', '/v1/patients?limit=100');
      expect(list.status).toBe(200);
      expect(list.body.data).toEqual([]);
      await intact(p, 1);
    });

    it("a patient token naming another tenant's patient sees nothing", async () => {
      const p = await create();
      const t2 = await srv.newTenant();
      const sneaky = await as(['patient'], p.id, t2);
      expectError(await sneaky('GET', `/v1/patients/${p.id}`), 404, 'NOT_FOUND');
      expect((await sneaky('GET', '/v1/patients')).body.data).toEqual([]);
    });
  });
});
