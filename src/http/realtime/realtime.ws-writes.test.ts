// Writes over the WebSocket behave exactly like the REST writes: the same status, body and error
// shapes for the same request sequence (validation, If-Match, idempotency), the same audit
// records, and the same events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, ifMatch, type Client } from '../../../test/helpers/http.js';
import { simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { openWs, until, type WsClient } from '../../../test/helpers/realtime.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

interface Step {
  name: string;
  method: string;
  path: (id: string) => string;
  headers?: Record<string, string>;
  body?: unknown;
}

const draft = (yes: boolean) => ({ item: [{ linkId: 'smoker', answer: [{ valueBoolean: yes }] }] });

/** The same request sequence, run against two twin responses, one over REST and one over WS. */
const STEPS: Step[] = [
  { name: 'no If-Match', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, body: draft(true) },
  { name: 'stale If-Match', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: ifMatch(7), body: draft(true) },
  { name: 'bad If-Match', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: { 'if-match': '*' }, body: draft(true) },
  { name: 'invalid body', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: ifMatch(1), body: { item: [{ linkId: 'nope', answer: [{ valueBoolean: 'x' }] }], extra: 1 } },
  { name: 'unknown linkId', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: ifMatch(1), body: { item: [{ linkId: 'nope', answer: [{ valueBoolean: true }] }] } },
  { name: 'save', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: { ...ifMatch(1), 'idempotency-key': 'save-1' }, body: draft(true) },
  { name: 'replay', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: { ...ifMatch(1), 'idempotency-key': 'save-1' }, body: draft(true) },
  { name: 'key reused', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: { ...ifMatch(1), 'idempotency-key': 'save-1' }, body: draft(false) },
  { name: 'stale after save', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: ifMatch(1), body: draft(false) },
  { name: 'submit', method: 'POST', path: (id) => `/v1/questionnaire-responses/${id}/submit`, headers: ifMatch(2) },
  { name: 'change submitted', method: 'PATCH', path: (id) => `/v1/questionnaire-responses/${id}`, headers: ifMatch(3), body: draft(false) },
  { name: 'read', method: 'GET', path: (id) => `/v1/questionnaire-responses/${id}` },
  { name: 'no such route', method: 'GET', path: () => '/v1/nothing-here' },
];

/** Status, the headers both transports return, and the body with what differs between twins blanked. */
function comparable(status: number, headers: Record<string, string | null>, body: unknown, id: string) {
  const text = JSON.stringify(body ?? null)
    .replaceAll(id, '<id>')
    .replace(/"(requestId|timestamp|createdAt|updatedAt|submittedAt)":"[^"]*"/g, '"$1":"…"');
  return { status, etag: headers.etag ?? null, replayed: headers['idempotency-replayed'] ?? null, body: JSON.parse(text) };
}

describe.each(storageModes())('writes over the WebSocket (%s)', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let token: string;
  let api: Client;
  let ws: WsClient;
  beforeAll(async () => {
    srv = await startServer(mode, { EVENTS_DISPATCH_INTERVAL_MS: '10' });
    tenant = await srv.newTenant();
    token = await srv.token({ tenant, roles: ['admin'], sub: 'rt-writer' });
    api = client(srv.url, token);
    ws = await openWs(srv.url, { token });
  });
  afterAll(async () => {
    ws?.close();
    await srv?.close();
  });

  it('the same request sequence gives the same statuses, headers and bodies over REST and over WS', async () => {
    const q = await api('POST', '/v1/questionnaires', { body: simpleQuestionnaire({ status: 'active' }) });
    const patient = (await api('POST', '/v1/patients', { body: patientInput() })).body;
    const viaRest = (await api('POST', '/v1/questionnaire-responses', { body: { questionnaireId: q.body.id, patientId: patient.id } })).body;
    // The twin is created over the WebSocket too.
    const created = await ws.call({ type: 'request', method: 'POST', path: '/v1/questionnaire-responses', body: { questionnaireId: q.body.id, patientId: patient.id } });
    expect(created).toMatchObject({ type: 'response', status: 201, headers: { etag: 'W/"1"', location: `/v1/questionnaire-responses/${created.body.id}` } });
    const viaWs = created.body;

    // Idempotency keys are per principal: each twin gets its own.
    const keyed = (h: Record<string, string> | undefined, twin: string) =>
      h && Object.fromEntries(Object.entries(h).map(([k, v]) => [k, k === 'idempotency-key' ? `${v}-${twin}` : v]));
    const rest: unknown[] = [];
    const overWs: unknown[] = [];
    for (const step of STEPS) {
      const r = await api(step.method, step.path(viaRest.id), { headers: keyed(step.headers, 'rest') ?? {}, ...(step.body !== undefined ? { body: step.body } : {}) });
      rest.push({ step: step.name, ...comparable(r.status, { etag: r.headers.get('etag'), 'idempotency-replayed': r.headers.get('idempotency-replayed') }, r.body, viaRest.id) });
      const w = await ws.call({ type: 'request', method: step.method, path: step.path(viaWs.id), ...(step.headers ? { headers: keyed(step.headers, 'ws') } : {}), ...(step.body !== undefined ? { body: step.body } : {}) });
      expect(w.type, step.name).toBe('response');
      expect(w.headers['x-request-id'], step.name).toEqual(expect.any(String));
      if (w.status >= 400) expect(w.body.error.requestId, step.name).toBe(w.headers['x-request-id']);
      overWs.push({ step: step.name, ...comparable(w.status, w.headers, w.body, viaWs.id) });
    }
    expect(overWs).toEqual(rest);
    // The sequence did exercise what it claims to.
    expect(rest.map((r: any) => `${r.step}:${r.status}${r.body?.error ? `:${r.body.error.code}` : ''}`)).toEqual([
      'no If-Match:428:PRECONDITION_REQUIRED',
      'stale If-Match:412:VERSION_CONFLICT',
      'bad If-Match:400:MALFORMED_REQUEST',
      'invalid body:400:VALIDATION_FAILED',
      'unknown linkId:400:VALIDATION_FAILED',
      'save:200',
      'replay:200',
      'key reused:422:IDEMPOTENCY_KEY_REUSED',
      'stale after save:412:VERSION_CONFLICT',
      'submit:200',
      'change submitted:409:RESPONSE_SUBMITTED',
      'read:200',
      'no such route:404:NOT_FOUND',
    ]);

    // The same audit trail: one record per access, the same actions and outcomes, with the WS
    // requests' own request IDs.
    const trail = async (id: string) => {
      let rows: any[] = [];
      await until(async () => {
        rows = (await api('GET', `/v1/audit-events?resourceId=${id}&limit=100`)).body?.data ?? [];
        return rows.length >= 9;
      }, 5000, 'audit records');
      return rows.map((r) => `${r.action}:${r.outcome}:${r.errorCode ?? ''}`).sort();
    };
    expect(await trail(viaWs.id)).toEqual(await trail(viaRest.id));

    // And the same events, for the same versions.
    const events = async (id: string) => {
      const sub = await openWs(srv.url, { token });
      await sub.call({ type: 'subscribe', topics: [`questionnaire-responses/${id}`], after: '0' });
      await until(() => sub.all.some((m) => m.type === 'questionnaire-response.updated' && m.resource.version === 3), 5000, 'events');
      sub.close();
      return sub.all.filter((m) => m.type.includes('.')).map((m) => `${m.type}@${m.resource.version}`);
    };
    expect(await events(viaWs.id)).toEqual(await events(viaRest.id));
  });
});
