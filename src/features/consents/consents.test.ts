// Consents: recording decisions (append-only), the history, the decision in force per purpose,
// who may do what, bad input, Idempotency-Key, the audit trail, and requireConsent for services.
import { randomUUID } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, ifMatch, type Client } from '../../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { systemPrincipal, type Role } from '../../auth/principal.js';
import type { Ctx } from '../../context.js';
import { AppError } from '../../errors.js';
import { hasConsent, requireConsent } from './consents.service.js';
import { PURPOSE_CODES, type Purpose } from './purposes.js';
import { rowsOf } from '../../../test/helpers/db.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe.each(storageModes())('consents on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let admin: Client;
  const as = async (roles: string[], patientId?: string, sub = 'tester', t = tenant) =>
    client(srv.url, await srv.token({ tenant: t, roles: roles as Role[], sub, ...(patientId ? { patientId } : {}) }));

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    admin = await as(['admin'], undefined, 'dr-admin');
  });
  afterAll(() => srv?.close());

  const newPatient = async (api = admin): Promise<string> => {
    const res = await api('POST', '/v1/patients', { body: patientInput() });
    expect(res.status).toBe(201);
    return res.body.id;
  };
  const path = (patientId: string) => `/v1/patients/${patientId}/consents`;

  const query = <T>(text: SQL, t = tenant) => rowsOf<T>(srv, t, text);
  const rowCount = async (patientId: string) =>
    (await query<{ n: number }>(sql`select count(*)::int as n from consents where patient_id = ${patientId}`))[0]!.n;

  it('records, lists and reads decisions; the latest per purpose is in force', async () => {
    const p = await newPatient();
    const grant = await admin('POST', path(p), { body: { purpose: 'third-party-sharing', decision: 'granted', note: 'Signed form on file' } });
    expect(grant.status).toBe(201);
    expect(grant.body).toEqual({
      id: expect.stringMatching(UUID), patientId: p, purpose: 'third-party-sharing', decision: 'granted',
      recordedAt: expect.any(String), actor: { sub: 'dr-admin', roles: ['admin'] }, note: 'Signed form on file',
    });
    expect(grant.headers.get('location')).toBe(`${path(p)}/${grant.body.id}`);
    expect(grant.headers.get('etag')).toBeNull(); // immutable records: nothing to version
    const one = await admin('GET', grant.headers.get('location')!);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(grant.body);

    const revoke = await admin('POST', path(p), { body: { purpose: 'third-party-sharing', decision: 'revoked' } });
    expect(revoke.status).toBe(201);
    expect(revoke.body).not.toHaveProperty('note');
    const research = await admin('POST', path(p), { body: { purpose: 'research', decision: 'granted' } });

    const list = await admin('GET', path(p));
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ data: [grant.body, revoke.body, research.body], page: { limit: 20, nextCursor: null } });
    const sharing = await admin('GET', `${path(p)}?purpose=third-party-sharing`);
    expect(sharing.body.data.map((c: { id: string }) => c.id)).toEqual([grant.body.id, revoke.body.id]);
    // Pages, newest last.
    const first = await admin('GET', `${path(p)}?limit=2`);
    expect(first.body.data.map((c: { id: string }) => c.id)).toEqual([grant.body.id, revoke.body.id]);
    const second = await admin('GET', `${path(p)}?limit=2&cursor=${first.body.page.nextCursor}`);
    expect(second.body).toEqual({ data: [research.body], page: { limit: 2, nextCursor: null } });

    const current = await admin('GET', `${path(p)}/current`);
    expect(current.status).toBe(200);
    expect(current.body.patientId).toBe(p);
    expect(current.body.purposes.map((x: { purpose: string }) => x.purpose)).toEqual(PURPOSE_CODES);
    const byPurpose = Object.fromEntries(current.body.purposes.map((x: { purpose: string }) => [x.purpose, x]));
    expect(byPurpose['third-party-sharing']).toMatchObject({ decision: 'revoked', latest: revoke.body, description: expect.any(String) });
    expect(byPurpose.research).toMatchObject({ decision: 'granted', latest: research.body });
    expect(byPurpose.marketing).toMatchObject({ decision: null, latest: null });
    expect(byPurpose['appointment-reminders']).toMatchObject({ decision: null, latest: null });
  });

  it('a consent of another patient, or an unknown one, is 404 under this patient', async () => {
    const [p, q] = [await newPatient(), await newPatient()];
    const c = (await admin('POST', path(q), { body: { purpose: 'marketing', decision: 'granted' } })).body;
    expectError(await admin('GET', `${path(p)}/${c.id}`), 404, 'NOT_FOUND');
    expectError(await admin('GET', `${path(p)}/${randomUUID()}`), 404, 'NOT_FOUND');
  });

  describe('roles', () => {
    it.each(['admin', 'manager', 'clinician', 'staff'] as const)('%s records and reads on a patient’s behalf', async (role) => {
      const p = await newPatient();
      const api = await as([role], undefined, `${role}-user`);
      const res = await api('POST', path(p), { body: { purpose: 'appointment-reminders', decision: 'granted' } });
      expect(res.status).toBe(201);
      expect(res.body.actor).toEqual({ sub: `${role}-user`, roles: [role] });
      expect((await api('GET', path(p))).body.data).toEqual([res.body]);
      expect((await api('GET', `${path(p)}/${res.body.id}`)).status).toBe(200);
      expect((await api('GET', `${path(p)}/current`)).status).toBe(200);
    });

    it('a patient decides for itself and reads its own consents', async () => {
      const p = await newPatient();
      const me = await as(['patient'], p, 'pat-self');
      const res = await me('POST', path(p), { body: { purpose: 'research', decision: 'revoked' } });
      expect(res.status).toBe(201);
      expect(res.body.actor).toEqual({ sub: 'pat-self', roles: ['patient'] });
      expect((await me('GET', path(p))).body.data).toEqual([res.body]);
      expect((await me('GET', `${path(p)}/${res.body.id}`)).body).toEqual(res.body);
      expect((await me('GET', `${path(p)}/current`)).status).toBe(200);
    });

    it('a patient gets 404 for another patient (audited as denied), and nothing is written', async () => {
      const [p, other] = [await newPatient(), await newPatient()];
      const c = (await admin('POST', path(other), { body: { purpose: 'research', decision: 'granted' } })).body;
      const me = await as(['patient'], p, 'pat-nosy');
      expectError(await me('POST', path(other), { body: { purpose: 'research', decision: 'revoked' } }), 404, 'NOT_FOUND');
      expectError(await me('GET', path(other)), 404, 'NOT_FOUND');
      expectError(await me('GET', `${path(other)}/current`), 404, 'NOT_FOUND');
      expectError(await me('GET', `${path(other)}/${c.id}`), 404, 'NOT_FOUND');
      expect(await rowCount(other)).toBe(1);
      await srv.deps.audit.flush();
      const denied = await query<{ action: string; detail: unknown }>(
        sql`select action, detail from audit_trail where actor_sub = 'pat-nosy' and patient_id = ${other} and outcome = 'denied' order by id`,
      );
      expect(denied.map((r) => r.action)).toEqual(['consent', 'read', 'read', 'read']);
      expect(denied.every((r) => JSON.stringify(r.detail) === JSON.stringify({ code: 'NOT_FOUND', reason: 'out of scope' }))).toBe(true);
    });

    it('a token with no role this service knows is 403 FORBIDDEN, and nothing is written', async () => {
      const p = await newPatient();
      const api = await as(['billing-bot'], undefined, 'bot');
      expectError(await api('POST', path(p), { body: { purpose: 'marketing', decision: 'granted' } }), 403, 'FORBIDDEN');
      expectError(await api('GET', path(p)), 403, 'FORBIDDEN');
      expectError(await api('GET', `${path(p)}/current`), 403, 'FORBIDDEN');
      expect(await rowCount(p)).toBe(0);
      expectError(await client(srv.url)('GET', path(p)), 401, 'UNAUTHENTICATED');
    });

    it('another tenant’s patient, a deleted patient and an unknown patient are 404', async () => {
      const elsewhere = await srv.newTenant();
      const theirs = await newPatient(await as(['admin'], undefined, 'x', elsewhere));
      const gone = await newPatient();
      expect((await admin('DELETE', `/v1/patients/${gone}`, { headers: ifMatch(1) })).status).toBe(204);
      for (const id of [theirs, gone, randomUUID()]) {
        expectError(await admin('POST', path(id), { body: { purpose: 'marketing', decision: 'granted' } }), 404, 'NOT_FOUND');
        expectError(await admin('GET', path(id)), 404, 'NOT_FOUND');
        expectError(await admin('GET', `${path(id)}/current`), 404, 'NOT_FOUND');
      }
      expect(await rowCount(gone)).toBe(0);
      expect(await rowCount(theirs)).toBe(0);
    });
  });

  it('refuses bad input with 400 VALIDATION_FAILED and details, writing nothing', async () => {
    const p = await newPatient();
    const cases: [unknown, string][] = [
      [{ purpose: 'selling-data', decision: 'granted' }, '/purpose'],
      [{ purpose: 'research', decision: 'maybe' }, '/decision'],
      [{ purpose: 'research', decision: 'granted', recordedAt: '2020-01-01T00:00:00Z' }, '/recordedAt'],
      [{ purpose: 'research', decision: 'granted', note: 'x'.repeat(501) }, '/note'],
      [{ purpose: 'research', decision: 'granted', note: '   ' }, '/note'],
      [{ decision: 'granted' }, '/purpose'],
      [{ purpose: 'research', decision: true }, '/decision'],
    ];
    for (const [body, at] of cases) {
      const err = expectError(await admin('POST', path(p), { body }), 400, 'VALIDATION_FAILED');
      expect(err.details?.length, JSON.stringify(body)).toBeGreaterThan(0);
      expect(err.details!.some((d) => d.path === at), `${JSON.stringify(body)}: ${JSON.stringify(err.details)}`).toBe(true);
    }
    const notUuid = expectError(await admin('POST', path('not-a-uuid'), { body: { purpose: 'research', decision: 'granted' } }), 400, 'VALIDATION_FAILED');
    expect(notUuid.details).toEqual([expect.objectContaining({ path: '/params/id' })]);
    expectError(await admin('GET', `${path(p)}?purpose=selling-data`), 400, 'VALIDATION_FAILED');
    expectError(await admin('GET', `${path(p)}?color=red`), 400, 'VALIDATION_FAILED');
    expectError(await admin('GET', `${path(p)}/not-a-uuid`), 400, 'VALIDATION_FAILED');
    expectError(await admin('GET', `${path(p)}?cursor=bogus`), 400, 'VALIDATION_FAILED');
    expectError(await admin('POST', path(p), { raw: '{"purpose":', headers: { 'content-type': 'application/json' } }), 400, 'MALFORMED_REQUEST');
    expect(await rowCount(p)).toBe(0);
  });

  it('Idempotency-Key: a retried POST replays the first answer and records one decision', async () => {
    const p = await newPatient();
    const headers = { 'idempotency-key': `consent-${randomUUID()}` };
    const body = { purpose: 'third-party-sharing', decision: 'granted' };
    const first = await admin('POST', path(p), { body, headers });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotency-replayed')).toBeNull();
    const again = await admin('POST', path(p), { body, headers });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotency-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expectError(await admin('POST', path(p), { body: { ...body, decision: 'revoked' }, headers }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await rowCount(p)).toBe(1);
    // One change record; the replay and the refused reuse are recorded as what they were.
    await srv.deps.audit.flush();
    expect(await query(sql`select outcome, detail from audit_trail where action = 'consent' and patient_id = ${p} order by id`)).toEqual([
      { outcome: 'success', detail: { purpose: 'third-party-sharing', decision: 'granted' } },
      { outcome: 'success', detail: { replayed: true } },
      { outcome: 'error', detail: { code: 'IDEMPOTENCY_KEY_REUSED' } },
    ]);
  });

  it('each change has exactly one audit record (action consent), written by its own INSERT; reads are audited', async () => {
    const p = await newPatient();
    const headers = { 'x-request-id': `consent-audit-${randomUUID()}` };
    const a = (await admin('POST', path(p), { body: { purpose: 'marketing', decision: 'granted', note: 'by phone' }, headers })).body;
    const b = (await admin('POST', path(p), { body: { purpose: 'marketing', decision: 'revoked' } })).body;
    // Before any flush of batched records: the change's record committed with the change.
    const changes = await query<Record<string, unknown>>(sql`
      select e.resource_type, e.resource_id, e.patient_id, e.outcome, e.actor_sub, e.detail, e.occurred_at = c.recorded_at as same_time
      from audit_trail e join consents c on c.id::text = e.resource_id
      where e.action = 'consent' and e.patient_id = ${p} order by e.id`);
    expect(changes).toEqual([
      { resource_type: 'Consent', resource_id: a.id, patient_id: p, outcome: 'success', actor_sub: 'dr-admin', detail: { purpose: 'marketing', decision: 'granted' }, same_time: true },
      { resource_type: 'Consent', resource_id: b.id, patient_id: p, outcome: 'success', actor_sub: 'dr-admin', detail: { purpose: 'marketing', decision: 'revoked' }, same_time: true },
    ]);
    expect((await query<{ request_id: string }>(sql`select request_id from audit_trail where resource_id = ${a.id}`))[0]!.request_id).toBe(headers['x-request-id']);
    // The note is never copied into the audit trail, and the carrier column is empty at rest.
    expect(await query(sql`select 1 from audit_trail where detail::text like '%by phone%'`)).toEqual([]);
    expect(await query(sql`select 1 from consents where write_meta is not null`)).toEqual([]);

    // A failed change leaves an error record and no success record.
    const missing = randomUUID();
    expectError(await admin('POST', path(missing), { body: { purpose: 'marketing', decision: 'granted' } }), 404, 'NOT_FOUND');

    const reader = await as(['clinician'], undefined, 'consent-reader');
    await reader('GET', path(p));
    await reader('GET', `${path(p)}/current`);
    await reader('GET', `${path(p)}/${a.id}`);
    await srv.deps.audit.flush();
    const reads = await query<Record<string, unknown>>(sql`
      select action, resource_type, resource_id, patient_id, outcome, detail from audit_trail where actor_sub = 'consent-reader' order by id`);
    expect(reads).toEqual([
      { action: 'read', resource_type: 'Consent', resource_id: null, patient_id: p, outcome: 'success', detail: { view: 'list', count: 2 } },
      { action: 'read', resource_type: 'Consent', resource_id: null, patient_id: p, outcome: 'success', detail: { view: 'current' } },
      { action: 'read', resource_type: 'Consent', resource_id: a.id, patient_id: p, outcome: 'success', detail: null },
    ]);
    expect((await query(sql`select 1 from audit_trail where action = 'consent' and patient_id = ${p}`)).length).toBe(2);
    expect(await query(sql`select outcome, detail from audit_trail where action = 'consent' and patient_id = ${missing}`)).toEqual([
      { outcome: 'error', detail: { code: 'NOT_FOUND' } },
    ]);
  });

  it('the application role cannot UPDATE or DELETE consents', async () => {
    const p = await newPatient();
    await admin('POST', path(p), { body: { purpose: 'research', decision: 'revoked' } });
    const before = await query(sql`select * from consents where patient_id = ${p}`);
    for (const stmt of [sql`update consents set decision = 'granted'`, sql`delete from consents`, sql`truncate consents`]) {
      await expect(srv.deps.db.tx(tenant, (q) => q.execute(stmt))).rejects.toThrow();
    }
    expect(await query(sql`select * from consents where patient_id = ${p}`)).toEqual(before);
  });

  describe('requireConsent / hasConsent', () => {
    const ctxFor = (t: string): Ctx => ({
      principal: systemPrincipal(t), tenantId: t, requestId: 'consent-check', now: () => new Date(),
      db: srv.deps.db, log: srv.deps.log, cache: srv.deps.resources, audit: srv.deps.audit, keys: srv.deps.keys,
    });
    const check = async (t: string, patientId: string, purpose: Purpose = 'third-party-sharing') => {
      const ctx = ctxFor(t);
      const has = await ctx.db.read(t, (q) => hasConsent(ctx, q, patientId, purpose));
      const required = await ctx.db.read(t, (q) => requireConsent(ctx, q, patientId, purpose)).then(() => 'ok', (e: unknown) => e);
      expect(required === 'ok').toBe(has);
      if (required !== 'ok') {
        expect(required).toBeInstanceOf(AppError);
        expect(required).toMatchObject({ code: 'FORBIDDEN', status: 403, message: `The patient has not consented to ${purpose}` });
      }
      return has;
    };
    const decide = async (p: string, decision: string, purpose = 'third-party-sharing') =>
      expect((await admin('POST', path(p), { body: { purpose, decision } })).status).toBe(201);

    it('none → forbidden; granted → ok; revoked → forbidden; granted again → ok; per purpose', async () => {
      const p = await newPatient();
      expect(await check(tenant, p)).toBe(false);
      await decide(p, 'granted');
      expect(await check(tenant, p)).toBe(true);
      await decide(p, 'revoked');
      expect(await check(tenant, p)).toBe(false);
      await decide(p, 'granted');
      expect(await check(tenant, p)).toBe(true);
      await decide(p, 'granted', 'research');
      expect(await check(tenant, p, 'marketing')).toBe(false);
    });

    it('works inside a write transaction', async () => {
      const p = await newPatient();
      await decide(p, 'granted');
      const ctx = ctxFor(tenant);
      await expect(ctx.db.tx(tenant, (q) => requireConsent(ctx, q, p, 'third-party-sharing'))).resolves.toBeUndefined();
      await expect(ctx.db.tx(tenant, (q) => requireConsent(ctx, q, p, 'research'))).rejects.toMatchObject({ code: 'FORBIDDEN' });
    });

    it('another tenant’s consent never counts', async () => {
      const p = await newPatient();
      await decide(p, 'granted');
      const elsewhere = await srv.newTenant();
      expect(await check(elsewhere, p)).toBe(false);
      // Even handed a connection scoped to the granting tenant, the check filters on ctx's tenant.
      const ctx = ctxFor(elsewhere);
      expect(await srv.deps.db.read(tenant, (q) => hasConsent(ctx, q, p, 'third-party-sharing'))).toBe(false);
    });
  });
});
