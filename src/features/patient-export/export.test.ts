// GET /v1/patients/{id}/export end to end: the JSON holds exactly what the single-resource GETs
// return; ?format=fhir is a FHIR R4 Bundle that passes the structural R4 checker
// (test-helpers/fhir-r4-check.ts); roles and patient scope; 404s and 400s; the audit record.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, ifMatch, type Client } from '../../../test/helpers/http.js';
import { fixture, importActive } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { batches, EXPORT_BATCH } from './export-section.js';
import { CONSENT_PURPOSE_SYSTEM } from './fhir-consent.js';
import { fhirR4Problems } from './test-helpers/fhir-r4-check.js';
import { rowsOf } from '../../../test/helpers/db.js';

const PHQ9 = 'questionnaires/phq9-lhcforms.questionnaire.json';
const RESPONSES = '/v1/questionnaire-responses';
const phq9Items = (): any[] => fixture('questionnaires/phq9-lhcforms.questionnaireresponse.json').item;
const exportOf = (id: string, query = '') => `/v1/patients/${id}/export${query}`;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface AuditRow {
  action: string;
  outcome: string;
  resource_type: string;
  resource_id: string | null;
  patient_id: string | null;
  actor_sub: string;
  detail: Record<string, unknown> | null;
}

describe.each(storageModes())('patient export on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let admin: Client;
  let clinician: Client;
  let patient: Record<string, any>;
  let other: Record<string, any>;
  /** The patient's live responses, by status. */
  const ids = { draft: '', completed: '', amended: '', deletedDraft: '', othersResponse: '' };
  const consentIds: string[] = [];

  const asPatient = async (patientId: string) => client(srv.url, await srv.token({ tenant, roles: ['patient'], sub: `patient-${patientId}`, patientId }));

  async function auditRows(where: string): Promise<AuditRow[]> {
    await srv.deps.audit.flush();
    const cols = 'action, outcome, resource_type, resource_id, patient_id, actor_sub, detail';
    return rowsOf<AuditRow>(srv, tenant, sql.raw(`select ${cols} from audit_trail where ${where} order by id`));
  }

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    admin = client(srv.url, await srv.token({ tenant, roles: ['admin'], sub: 'dr-admin' }));
    clinician = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'dr-clin' }));
    const phq9 = await importActive(admin, PHQ9);
    // With an identifier stored encrypted (US SSN): the export has it in the clear, as GET does.
    const identifiers = [{ system: 'urn:test:mrn', value: 'MRN-EXPORT-1' }, { system: 'http://hl7.org/fhir/sid/us-ssn', value: '123-45-6789' }];
    patient = (await admin('POST', '/v1/patients', { body: patientInput({ identifiers }) })).body;
    other = (await admin('POST', '/v1/patients', { body: patientInput({ name: { given: ['Otto'], family: 'Other' } }) })).body;

    const start = async (patientId: string, item?: unknown[]) => {
      const res = await clinician('POST', RESPONSES, { body: { questionnaireId: phq9.id, patientId, ...(item ? { item } : {}) } });
      expect(res.status, res.text).toBe(201);
      return res.body.id as string;
    };
    ids.completed = await start(patient.id, phq9Items());
    const submitted = await clinician('POST', `${RESPONSES}/${ids.completed}/submit`, { headers: ifMatch(1) });
    expect(submitted.status, submitted.text).toBe(200);
    const amended = await clinician('POST', `${RESPONSES}/${ids.completed}/amend`, { body: { item: phq9Items(), reason: 'Corrected item 3' } });
    expect(amended.status, amended.text).toBe(201);
    ids.amended = amended.body.id;
    ids.draft = await start(patient.id, phq9Items().slice(0, 2));
    ids.deletedDraft = await start(patient.id);
    expect((await clinician('DELETE', `${RESPONSES}/${ids.deletedDraft}`, { headers: ifMatch(1) })).status).toBe(204);
    ids.othersResponse = await start(other.id);

    for (const body of [
      { purpose: 'research', decision: 'granted' },
      { purpose: 'appointment-reminders', decision: 'granted', note: 'Signed paper form on file' },
      { purpose: 'research', decision: 'revoked' },
    ]) {
      const res = await admin('POST', `/v1/patients/${patient.id}/consents`, { body });
      expect(res.status, res.text).toBe(201);
      consentIds.push(res.body.id);
    }
    expect((await admin('POST', `/v1/patients/${other.id}/consents`, { body: { purpose: 'marketing', decision: 'granted' } })).status).toBe(201);
  }, 120_000);
  afterAll(() => srv?.close());

  it('JSON: the patient, every response (all statuses, deleted drafts aside) and every consent, exactly as their GETs return them', async () => {
    const res = await clinician('GET', exportOf(patient.id));
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(Object.keys(res.body)).toEqual(['exportedAt', 'patient', 'questionnaireResponses', 'consents']);
    expect(res.body.exportedAt).toMatch(ISO_UTC);
    expect(res.body.patient).toEqual((await admin('GET', `/v1/patients/${patient.id}`)).body);
    expect(res.body.patient.identifiers[1]).toEqual({ system: 'http://hl7.org/fhir/sid/us-ssn', value: '123-45-6789' });

    const responseIds = [ids.completed, ids.amended, ids.draft].sort();
    expect(res.body.questionnaireResponses.map((r: any) => r.id)).toEqual(responseIds);
    for (const r of res.body.questionnaireResponses) expect(r).toEqual((await admin('GET', `${RESPONSES}/${r.id}`)).body);
    expect(res.body.questionnaireResponses.map((r: any) => r.status).sort()).toEqual(['amended', 'completed', 'in-progress']);
    expect(res.body.questionnaireResponses.find((r: any) => r.id === ids.amended)).toMatchObject({ amends: ids.completed, amendReason: 'Corrected item 3' });

    expect(res.body.consents.map((c: any) => c.id)).toEqual(consentIds);
    for (const c of res.body.consents) expect(c).toEqual((await admin('GET', `/v1/patients/${patient.id}/consents/${c.id}`)).body);

    const explicit = await clinician('GET', exportOf(patient.id, '?format=json'));
    expect({ ...explicit.body, exportedAt: null }).toEqual({ ...res.body, exportedAt: null });
  });

  it('FHIR: a collection Bundle of the Patient, its QuestionnaireResponses and Consents that passes the R4 checker', async () => {
    const res = await admin('GET', exportOf(patient.id, '?format=fhir'));
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    const bundle = res.body;
    expect(fhirR4Problems(bundle)).toEqual([]);
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'collection', timestamp: expect.stringMatching(ISO_UTC) });
    for (const e of bundle.entry) expect(e.fullUrl).toBe(`urn:uuid:${e.resource.id}`);
    expect(bundle.entry.map((e: any) => e.resource.resourceType)).toEqual(['Patient', 'QuestionnaireResponse', 'QuestionnaireResponse', 'QuestionnaireResponse', 'Consent', 'Consent', 'Consent']);

    const p = patient;
    expect(bundle.entry[0].resource).toEqual({
      resourceType: 'Patient',
      id: p.id,
      meta: { versionId: '1', lastUpdated: p.updatedAt },
      identifier: p.identifiers,
      active: true,
      name: [{ family: p.name.family, given: p.name.given }],
      telecom: [{ system: 'email', value: p.email }, { system: 'phone', value: p.phone }],
      gender: p.gender,
      birthDate: p.birthDate,
      address: [p.address],
    });

    // Each response exactly as GET ?format=fhir gives it, its subject the Bundle's Patient entry.
    const patientRef = bundle.entry[0].fullUrl;
    for (const e of bundle.entry.filter((x: any) => x.resource.resourceType === 'QuestionnaireResponse')) {
      const single = (await admin('GET', `${RESPONSES}/${e.resource.id}?format=fhir`)).body;
      expect(single.subject).toEqual({ reference: `Patient/${p.id}` });
      expect(e.resource).toEqual({ ...single, subject: { reference: patientRef } });
    }

    const consents = bundle.entry.filter((x: any) => x.resource.resourceType === 'Consent').map((x: any) => x.resource);
    expect(consents.map((c: any) => c.id)).toEqual(consentIds);
    const summary = consents.map((c: any) => [c.category[1].coding[0].code, c.status, c.provision.type, c.policyRule.coding[0].code, c.scope.coding[0].code]);
    expect(summary).toEqual([
      ['research', 'inactive', 'permit', 'OPTIN', 'research'], // replaced by the later revocation
      ['appointment-reminders', 'active', 'permit', 'OPTIN', 'patient-privacy'],
      ['research', 'active', 'deny', 'OPTOUT', 'research'],
    ]);
    expect(consents[0]).toMatchObject({ patient: { reference: patientRef }, category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }, { coding: [{ system: CONSENT_PURPOSE_SYSTEM }] }] });
  });

  it('a patient without contact details, address or records exports a minimal, valid Bundle', async () => {
    const { email: _e, phone: _p, address: _a, ...bare } = patientInput({ identifiers: [] });
    const created = (await admin('POST', '/v1/patients', { body: bare })).body;
    const json = await admin('GET', exportOf(created.id));
    expect(json.body).toEqual({ exportedAt: expect.any(String), patient: created, questionnaireResponses: [], consents: [] });
    const fhir = (await admin('GET', exportOf(created.id, '?format=fhir'))).body;
    expect(fhirR4Problems(fhir)).toEqual([]);
    expect(fhir.entry).toHaveLength(1);
    expect(Object.keys(fhir.entry[0].resource)).toEqual(['resourceType', 'id', 'meta', 'active', 'name', 'gender', 'birthDate']);
  });

  it('a patient token exports its own record; another patient is 404 (audited as denied)', async () => {
    const me = await asPatient(patient.id);
    const own = await me('GET', exportOf(patient.id));
    expect(own.status, own.text).toBe(200);
    expect(own.body.patient.id).toBe(patient.id);
    expect(own.body.questionnaireResponses).toHaveLength(3);
    expect((await me('GET', exportOf(patient.id, '?format=fhir'))).status).toBe(200);
    expectError(await me('GET', exportOf(other.id)), 404, 'NOT_FOUND');
    expectError(await me('GET', exportOf(other.id, '?format=fhir')), 404, 'NOT_FOUND');
    const denied = await auditRows(`action = 'export' and resource_id = '${other.id}'`);
    expect(denied.map((r) => [r.outcome, r.detail])).toEqual([
      ['denied', { code: 'NOT_FOUND', reason: 'out of scope' }],
      ['denied', { code: 'NOT_FOUND', reason: 'out of scope' }],
    ]);
  });

  it('admins, managers and clinicians may export; staff (front desk) may not: 403, audited as denied', async () => {
    for (const role of ['admin', 'manager', 'clinician'] as const) {
      const c = client(srv.url, await srv.token({ tenant, roles: [role] }));
      expect((await c('GET', exportOf(other.id))).status, role).toBe(200);
    }
    const staff = client(srv.url, await srv.token({ tenant, roles: ['staff'], sub: 'front-desk' }));
    expectError(await staff('GET', exportOf(other.id)), 403, 'FORBIDDEN');
    // A staff token that also acts as a patient exports that patient only.
    const both = client(srv.url, await srv.token({ tenant, roles: ['staff', 'patient'], patientId: patient.id }));
    expect((await both('GET', exportOf(patient.id))).status).toBe(200);
    expectError(await both('GET', exportOf(other.id)), 404, 'NOT_FOUND');
    const rows = await auditRows(`action = 'export' and actor_sub = 'front-desk'`);
    expect(rows.map((r) => [r.outcome, r.resource_id, r.detail])).toEqual([['denied', other.id, { code: 'FORBIDDEN' }]]);
    expectError(await client(srv.url)('GET', exportOf(other.id)), 401, 'UNAUTHENTICATED');
  });

  it('an unknown or deleted patient is 404; a bad format or id is 400', async () => {
    expectError(await admin('GET', exportOf('01890a5d-ac96-774b-bcce-b302099a8057')), 404, 'NOT_FOUND');
    const gone = (await admin('POST', '/v1/patients', { body: patientInput() })).body;
    expect((await admin('DELETE', `/v1/patients/${gone.id}`, { headers: ifMatch(1) })).status).toBe(204);
    expectError(await admin('GET', exportOf(gone.id)), 404, 'NOT_FOUND');
    expectError(await admin('GET', exportOf(gone.id, '?format=fhir')), 404, 'NOT_FOUND');
    // A deleted patient's own token finds nothing either.
    expectError(await (await asPatient(gone.id))('GET', exportOf(gone.id)), 404, 'NOT_FOUND');
    const rows = await auditRows(`action = 'export' and resource_id = '${gone.id}'`);
    expect(rows.map((r) => [r.outcome, r.detail])).toEqual([
      ['error', { code: 'NOT_FOUND' }],
      ['error', { code: 'NOT_FOUND' }],
      ['error', { code: 'NOT_FOUND' }],
    ]);

    const bad = expectError(await admin('GET', exportOf(patient.id, '?format=xml')), 400, 'VALIDATION_FAILED');
    expect(bad.details?.map((d) => d.path)).toEqual(['/query/format']);
    expectError(await admin('GET', exportOf(patient.id, '?since=2020')), 400, 'VALIDATION_FAILED');
    expectError(await admin('GET', exportOf('not-a-uuid')), 400, 'VALIDATION_FAILED');
  });

  it('records each export as action export on the Patient, with the format and a count per section (no values)', async () => {
    const subject = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'auditing-clinician' }));
    expect((await subject('GET', exportOf(patient.id))).status).toBe(200);
    expect((await subject('GET', exportOf(patient.id, '?format=fhir'))).status).toBe(200);
    const rows = await auditRows(`actor_sub = 'auditing-clinician'`);
    const counts = { questionnaireResponses: 3, consents: 3 };
    expect(rows).toEqual([
      { action: 'export', outcome: 'success', resource_type: 'Patient', resource_id: patient.id, patient_id: patient.id, actor_sub: 'auditing-clinician', detail: { format: 'json', counts } },
      { action: 'export', outcome: 'success', resource_type: 'Patient', resource_id: patient.id, patient_id: patient.id, actor_sub: 'auditing-clinician', detail: { format: 'fhir', counts } },
    ]);
  });

  it('the OpenAPI document describes both formats of the export', async () => {
    const doc = (await admin('GET', '/v1/openapi.json')).body;
    const op = doc.paths['/v1/patients/{id}/export'].get;
    expect(Object.keys(op.responses['200'].content).sort()).toEqual(['application/fhir+json', 'application/json']);
    for (const type of ['application/json', 'application/fhir+json']) expect(Object.keys(op.responses['200'].content[type].schema).length, type).toBeGreaterThan(0);
    expect(op.responses['200'].content['application/json'].schema.properties).toHaveProperty('questionnaireResponses');
    expect(op.parameters.find((p: any) => p.in === 'query' && p.name === 'format').schema.enum).toEqual(['json', 'fhir']);
    for (const s of ['400', '401', '403', '404']) expect(op.responses[s].content['application/json'].schema.$ref).toBe('#/components/schemas/ErrorEnvelope');
  });
});

describe('export batching', () => {
  it(`reads every row in keyset pages of at most ${EXPORT_BATCH} (+1 look-ahead) rows`, async () => {
    for (const n of [0, 1, EXPORT_BATCH - 1, EXPORT_BATCH, EXPORT_BATCH + 1, 2 * EXPORT_BATCH + 7]) {
      const rows = Array.from({ length: n }, (_, i) => ({ id: String(i).padStart(6, '0') }));
      const calls: { afterId: string | undefined; limit: number }[] = [];
      const page = async (afterId: string | undefined, limit: number) => {
        calls.push({ afterId, limit });
        return rows.filter((r) => afterId === undefined || r.id > afterId).slice(0, limit + 1);
      };
      const seen: string[] = [];
      for await (const batch of batches(page)) {
        expect(batch.length).toBeLessThanOrEqual(EXPORT_BATCH);
        seen.push(...batch.map((r) => r.id));
      }
      expect(seen, `n=${n}`).toEqual(rows.map((r) => r.id));
      expect(calls.every((c) => c.limit === EXPORT_BATCH)).toBe(true);
      expect(calls.length, `n=${n}`).toBe(Math.max(1, Math.ceil(n / EXPORT_BATCH)));
    }
  });
});

describe('the FHIR R4 checker', () => {
  const uuid = (n: number) => `0192f3c4-0000-7000-8000-${String(n).padStart(12, '0')}`;
  const valid = () => ({
    resourceType: 'Bundle',
    type: 'collection',
    timestamp: '2024-04-04T18:41:13.730Z',
    entry: [
      { fullUrl: `urn:uuid:${uuid(1)}`, resource: { resourceType: 'Patient', id: uuid(1), name: [{ family: 'X', given: ['Y'] }], gender: 'female', birthDate: '1984-03-09' } },
      { fullUrl: `urn:uuid:${uuid(2)}`, resource: { resourceType: 'QuestionnaireResponse', id: uuid(2), questionnaire: 'Questionnaire/q', status: 'completed', subject: { reference: `urn:uuid:${uuid(1)}` }, authored: '2024-04-04' } },
      {
        fullUrl: `urn:uuid:${uuid(3)}`,
        resource: {
          resourceType: 'Consent', id: uuid(3), status: 'active', scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] },
          category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }], patient: { reference: `urn:uuid:${uuid(1)}` },
          policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] }, provision: { type: 'permit' },
        },
      },
    ],
  });

  it('accepts a valid Bundle', () => {
    expect(fhirR4Problems(valid())).toEqual([]);
  });

  it('reports what a validator would: required elements, value sets, cardinality, formats, invariants, references', () => {
    const b: any = valid();
    const [patient, response, consent] = b.entry.map((e: any) => e.resource);
    b.type = 'bag';
    b.timestamp = '2024-04-04T18:41:13';
    patient.gender = 'f';
    patient.name = { family: 'X' };
    patient.birthDate = '1984-02-30';
    patient.telecom = [{ value: 'x@example.org' }];
    patient.nickname = 'Z';
    patient.address = [];
    response.subject = { reference: `Patient/${uuid(1)}` };
    response.item = [{ linkId: 'a', answer: [{ valueString: 'x' }], item: [{ linkId: 'b' }] }];
    delete consent.scope;
    delete consent.policyRule;
    consent.patient = { reference: `urn:uuid:${uuid(2)}` };
    consent.provision.type = 'allow';
    b.entry[2].resource.id = 'not valid!';
    b.entry.push({ fullUrl: `urn:uuid:${uuid(1)}`, resource: { resourceType: 'Basic', id: uuid(1), code: {} } });
    expect(fhirR4Problems(b).sort()).toEqual([
      'Bundle.entry[1].resource.item[0]: qrs-1',
      'Bundle.entry[1].resource.subject.reference: Patient/0192f3c4-0000-7000-8000-000000000001 does not resolve inside the Bundle',
      'Bundle.entry[2].fullUrl: disagrees with the resource id',
      'Bundle.entry[2].resource.id: invalid id',
      'Bundle.entry[2].resource.patient.reference: refers to a QuestionnaireResponse, allowed: Patient',
      'Bundle.entry[2].resource.provision.type: "allow" is not in the required value set',
      'Bundle.entry[2].resource.scope: required',
      'Bundle.entry[2].resource: ppc-1 (policy or policyRule)',
      'Bundle.entry[3].resource.code: empty object (ele-1)',
      'Bundle.entry[0].resource.address: empty array',
      'Bundle.entry[0].resource.birthDate: invalid date "1984-02-30"',
      'Bundle.entry[0].resource.gender: "f" is not in the required value set',
      'Bundle.entry[0].resource.name: wrong cardinality (array expected)',
      'Bundle.entry[0].resource.nickname: not a FHIR element of Patient',
      'Bundle.entry[0].resource.telecom[0]: cpt-2',
      'Bundle.timestamp: invalid instant "2024-04-04T18:41:13"',
      'Bundle.type: "bag" is not in the required value set',
      'Bundle: bdl-7 (fullUrl not unique)',
    ].sort());
  });
});
