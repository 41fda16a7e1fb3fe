// Erasure: afterwards no table and no cache entry holds any of the patient's values, every route
// answers 404, the audit trail keeps only the id, an interrupted erasure resumes, and a repeat
// returns the same report.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, ifMatch, type Client } from '../../../test/helpers/http.js';
import { simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { rowsOf } from '../../../test/helpers/db.js';

/** Every value of every row of every table, as text (owner session: no row-level security). */
async function everyStoredValue(srv: TestServer): Promise<string> {
  return srv.deps.db.withOwner(async (s) => {
    const tables = await s.query<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`);
    const dumps: string[] = [];
    for (const t of tables) {
      const rows = await s.query<{ row: string }>(`select row_to_json(x)::text as row from "${t.name}" x`);
      dumps.push(...rows.map((r) => r.row));
    }
    return dumps.join('\n');
  });
}

describe.each(storageModes())('patient erasure on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let admin: Client;
  let questionnaireId: string;
  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    admin = client(srv.url, await srv.token({ tenant, roles: ['admin'], sub: 'dpo' }));
    const q = (await admin('POST', '/v1/questionnaires', { body: simpleQuestionnaire() })).body;
    questionnaireId = (await admin('PATCH', `/v1/questionnaires/${q.id}`, { body: { status: 'active' }, headers: ifMatch(1) })).body.id;
  });
  afterAll(() => srv?.close());

  /** A patient with distinctive values everywhere the system keeps patient data. */
  async function patientWithData(tag: string) {
    const phi = {
      family: `Erasmus${tag}Quill`,
      email: `zelda.${tag}@erase.example.org`,
      mrn: `MRN-ERASE-${tag}`,
      street: `${tag} Forgotten Lane`,
      answer: `Lives with cat named Whisker${tag}`,
    };
    const created = await admin('POST', '/v1/patients', {
      body: patientInput({ name: { given: ['Zelda'], family: phi.family }, email: phi.email, identifiers: [{ system: 'urn:test:mrn', value: phi.mrn }], address: { line: [phi.street], city: 'Nowhere' } }),
      headers: { 'idempotency-key': `create-${tag}` },
    });
    expect(created.status, created.text).toBe(201);
    const p = created.body;
    const items = [{ linkId: 'smoker', answer: [{ valueBoolean: false }] }, { linkId: 'contact', item: [{ linkId: 'contact.name', answer: [{ valueString: phi.answer }] }] }];
    const r = (await admin('POST', '/v1/questionnaire-responses', { body: { questionnaireId, patientId: p.id, item: items } })).body;
    const submitted = await admin('POST', `/v1/questionnaire-responses/${r.id}/submit`, { headers: ifMatch(1) });
    expect(submitted.status, submitted.text).toBe(200);
    const amended = await admin('POST', `/v1/questionnaire-responses/${r.id}/amend`, { body: { item: items, reason: 'typo' } });
    expect(amended.status, amended.text).toBe(201);
    const consent = await admin('POST', `/v1/patients/${p.id}/consents`, { body: { purpose: 'research', decision: 'granted' } });
    expect(consent.status, consent.text).toBe(201);
    // Warm the cache with the patient and the responses.
    for (const path of [`/v1/patients/${p.id}`, `/v1/questionnaire-responses/${r.id}`, `/v1/questionnaire-responses/${amended.body.id}`]) {
      expect((await admin('GET', path)).status).toBe(200);
    }
    return { p, responseIds: [r.id, amended.body.id], phi };
  }

  it('removes the patient’s data from every table and the cache, and every route answers 404', async () => {
    const { p, responseIds, phi } = await patientWithData('A1');
    const before = await everyStoredValue(srv);
    for (const v of Object.values(phi)) expect(before).toContain(v);

    const res = await admin('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'GDPR request #1' }, headers: ifMatch(1) });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      patientId: p.id,
      status: 'completed',
      erased: { patients: 1, questionnaireResponses: 2, consents: 1, idempotencyRecords: 1, cacheEntries: 3 },
      verification: { remainingRows: 0, remainingCacheEntries: 0 },
    });
    expect(res.body.kept.auditRecords).toBeGreaterThan(0);

    const after = await everyStoredValue(srv);
    for (const v of Object.values(phi)) expect(after).not.toContain(v);
    for (const [type, id] of [['patients', p.id], ...responseIds.map((r) => ['questionnaire-responses', r])]) {
      const entry = await srv.deps.cache.get(`t:${tenant}:${type}:${id}`);
      expect(entry === undefined || entry.value === null).toBe(true);
    }

    for (const path of [`/v1/patients/${p.id}`, `/v1/patients/${p.id}/export`, `/v1/patients/${p.id}/consents`, `/v1/patients/${p.id}/access-log`, ...responseIds.map((r) => `/v1/questionnaire-responses/${r}`)]) {
      expectError(await admin('GET', path), 404, 'NOT_FOUND');
    }
    expectError(await admin('PATCH', `/v1/patients/${p.id}`, { body: { phone: '+1 555 000 0000' }, headers: ifMatch(2) }), 404, 'NOT_FOUND');
    expect((await admin('GET', '/v1/patients?limit=100')).body.data.map((x: { id: string }) => x.id)).not.toContain(p.id);

    // The audit trail keeps the patient id only, including the erasure itself.
    await srv.deps.audit.flush();
    expect(await rowsOf(srv, tenant, sql`select action, actor_sub from audit_trail where patient_id = ${p.id} and action = 'erase'`)).toEqual([{ action: 'erase', actor_sub: 'dpo' }]);

    // Asking again returns the same report.
    const again = await admin('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'GDPR request #1' }, headers: ifMatch(1) });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(res.body);
  });

  it('resumes an erasure that was interrupted after the patient was marked', async () => {
    const { p, phi } = await patientWithData('B2');
    // As if a crash followed step 1: the request is recorded and the patient soft-deleted.
    await srv.deps.db.tx(tenant, async (q) => {
      await q.execute(sql`insert into patient_erasures (tenant_id, patient_id, status, reason, requested_by, requested_at) values (${tenant}, ${p.id}, 'in-progress', 'crash test', 'dpo', now())`);
      await q.execute(sql`update patients set deleted_at = now(), version = version + 1 where tenant_id = ${tenant} and id = ${p.id}`);
    });
    const res = await admin('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'resume' } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'completed', erased: { patients: 1, questionnaireResponses: 2, consents: 1 }, verification: { remainingRows: 0, remainingCacheEntries: 0 } });
    const after = await everyStoredValue(srv);
    for (const v of Object.values(phi)) expect(after).not.toContain(v);
  });

  it('erases a patient that was deleted before (a soft delete keeps data)', async () => {
    const { p, phi } = await patientWithData('C3');
    expect((await admin('DELETE', `/v1/patients/${p.id}`, { headers: ifMatch(1) })).status).toBe(204);
    const res = await admin('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'after delete' }, headers: ifMatch(2) });
    expect(res.status, res.text).toBe(200);
    expect((await everyStoredValue(srv)).includes(phi.family)).toBe(false);
  });

  it('refuses bad requests and changes nothing: no If-Match, stale, not admin, unknown patient, bad body', async () => {
    const p = (await admin('POST', '/v1/patients', { body: patientInput() })).body;
    expectError(await admin('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'x' } }), 428, 'PRECONDITION_REQUIRED');
    expectError(await admin('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'x' }, headers: ifMatch(9) }), 412, 'VERSION_CONFLICT');
    for (const role of ['manager', 'clinician', 'staff'] as const) {
      const other = client(srv.url, await srv.token({ tenant, roles: [role] }));
      expectError(await other('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'x' }, headers: ifMatch(1) }), 403, 'FORBIDDEN');
    }
    const self = client(srv.url, await srv.token({ tenant, roles: ['patient'], patientId: p.id }));
    expectError(await self('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'x' }, headers: ifMatch(1) }), 403, 'FORBIDDEN');
    expectError(await admin('POST', `/v1/patients/${randomUUID()}/erase`, { body: { reason: 'x' }, headers: ifMatch(1) }), 404, 'NOT_FOUND');
    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x'.repeat(501) }, { reason: 'x', extra: 1 }]) {
      expectError(await admin('POST', `/v1/patients/${p.id}/erase`, { body, headers: ifMatch(1) }), 400, 'VALIDATION_FAILED');
    }
    const other = await srv.newTenant();
    const otherAdmin = client(srv.url, await srv.token({ tenant: other, roles: ['admin'] }));
    expectError(await otherAdmin('POST', `/v1/patients/${p.id}/erase`, { body: { reason: 'x' }, headers: ifMatch(1) }), 404, 'NOT_FOUND');
    // Nothing changed.
    expect((await admin('GET', `/v1/patients/${p.id}`)).body).toMatchObject({ id: p.id, version: 1 });
    expect(await rowsOf(srv, tenant, sql`select count(*)::int as n from patient_erasures where patient_id = ${p.id}`)).toEqual([{ n: 0 }]);
  });

  it('the application role can only hard-delete through a recorded erasure', async () => {
    const p = (await admin('POST', '/v1/patients', { body: patientInput() })).body;
    await expect(srv.deps.db.tx(tenant, (q) => q.execute(sql`select carebase_erase_patient_rows(${p.id}::uuid)`))).rejects.toThrow();
    await expect(srv.deps.db.tx(tenant, (q) => q.execute(sql`delete from patients where id = ${p.id}`))).rejects.toThrow();
    expect((await admin('GET', `/v1/patients/${p.id}`)).status).toBe(200);
  });
});
