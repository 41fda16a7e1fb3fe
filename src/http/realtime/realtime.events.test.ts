// Event delivery over real clients (the `eventsource` package for SSE, `ws`): only the subscribed
// topics, never another patient's events, resume after a forced disconnect while writes go on
// (the client ends with exactly the committed sequence), and resync-required.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, ifMatch, type Client } from '../../../test/helpers/http.js';
import { simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { openSse, openWs, until, type WsClient } from '../../../test/helpers/realtime.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { realtimeStateOf } from './state.js';

const FAST = { REALTIME_HEARTBEAT_MS: '200', REALTIME_RECONNECT_MS: '30', REALTIME_REPLAY_PAGE_SIZE: '10', EVENTS_DISPATCH_INTERVAL_MS: '10' };

/** (resource id, version) of resource events, in arrival order. */
const seq = (events: { resource: { id: string; version: number } }[]) => events.map((e) => `${e.resource.id.slice(-4)}@${e.resource.version}`);

describe.each(storageModes())('real-time event delivery (%s)', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let staff: Client;
  let staffToken: string;
  let questionnaireId: string;
  const patient = async () => (await staff('POST', '/v1/patients', { body: patientInput() })).body as { id: string; version: number };
  const touch = async (id: string, version: number) => {
    const r = await staff('PATCH', `/v1/patients/${id}`, { body: { gender: version % 2 ? 'male' : 'female' }, headers: ifMatch(version) });
    expect(r.status).toBe(200);
    return r.body.version as number;
  };
  const startResponse = async (patientId: string) => (await staff('POST', '/v1/questionnaire-responses', { body: { questionnaireId, patientId } })).body as { id: string; version: number };
  const saveDraft = async (id: string, version: number, as: Client = staff) => {
    const r = await as('PATCH', `/v1/questionnaire-responses/${id}`, { body: { item: [{ linkId: 'smoker', answer: [{ valueBoolean: version % 2 === 0 }] }] }, headers: ifMatch(version) });
    expect(r.status).toBe(200);
    return r.body.version as number;
  };

  beforeAll(async () => {
    srv = await startServer(mode, FAST);
    tenant = await srv.newTenant();
    staffToken = await srv.token({ tenant, roles: ['admin'], sub: 'rt-admin' });
    staff = client(srv.url, staffToken);
    const q = await staff('POST', '/v1/questionnaires', { body: simpleQuestionnaire({ status: 'active' }) });
    expect(q.status).toBe(201);
    questionnaireId = q.body.id;
  });
  afterAll(() => srv?.close());

  it('SSE and WS deliver the events of subscribed topics only, in the contract shape, after ready/subscribed', async () => {
    const [a, b] = [await patient(), await patient()];
    const sse = openSse(srv.url, [`patients/${a.id}`], { token: staffToken });
    const ready = await sse.next((m) => m.event === 'ready');
    expect(ready.data).toMatchObject({ type: 'ready', topics: [`patients/${a.id}`], lastEventId: expect.stringMatching(/^\d+$/) });
    const ws = await openWs(srv.url, { token: staffToken });
    const sub = await ws.call({ type: 'subscribe', topics: [`patients/${a.id}`] });
    expect(sub).toMatchObject({ type: 'subscribed', topics: [`patients/${a.id}`], lastEventId: expect.stringMatching(/^\d+$/), rooms: {} });
    await touch(b.id, 1);
    await touch(a.id, 1);
    const got = await sse.next((m) => m.event === 'patient.updated');
    expect(got.data).toEqual({ id: got.id, type: 'patient.updated', resource: { type: 'patients', id: a.id, version: 2 }, occurredAt: expect.any(String), requestId: expect.any(String) });
    const wsGot = await ws.next((m) => m.type === 'patient.updated');
    expect(wsGot).toEqual(got.data); // the same JSON on both transports
    await touch(a.id, 2);
    await sse.next((m) => m.data?.resource?.version === 3);
    // (a's creation may be dispatched after ready, and then arrives live: legitimately.)
    expect(seq(sse.events().map((e) => e.data)).filter((x) => x !== `${a.id.slice(-4)}@1`)).toEqual([`${a.id.slice(-4)}@2`, `${a.id.slice(-4)}@3`]);
    expect(ws.all.filter((m) => m.resource?.id === b.id)).toEqual([]);
    sse.close();
    ws.close();
  });

  it('a patient principal sees its own record and responses only, even on a questionnaire-wide topic', async () => {
    const [p1, p2] = [await patient(), await patient()];
    const p1Token = await srv.token({ tenant, roles: ['patient'], sub: 'rt-p1', patientId: p1.id });
    const p1Api = client(srv.url, p1Token);
    // Another patient's record is refused as REST refuses it.
    expect((await p1Api('GET', `/v1/events?topic=patients/${p2.id}`)).status).toBe(404);
    const pws = await openWs(srv.url, { token: p1Token });
    expect(await pws.call({ type: 'subscribe', topics: [`patients/${p2.id}`] })).toMatchObject({ type: 'error', error: { code: 'NOT_FOUND' } });
    const sse = openSse(srv.url, [`patients/${p1.id}`, `questionnaires/${questionnaireId}/responses`], { token: p1Token });
    await sse.next((m) => m.event === 'ready');
    expect((await pws.call({ type: 'subscribe', topics: [`questionnaires/${questionnaireId}/responses`] })).type).toBe('subscribed');
    const staffSse = openSse(srv.url, [`questionnaires/${questionnaireId}/responses`], { token: staffToken });
    await staffSse.next((m) => m.event === 'ready');
    const r1 = await startResponse(p1.id);
    const r2 = await startResponse(p2.id);
    await saveDraft(r2.id, 1);
    await saveDraft(r1.id, 1, p1Api);
    await touch(p2.id, 1);
    await touch(p1.id, 1);
    await sse.next((m) => m.event === 'patient.updated');
    await staffSse.next((m) => m.data?.resource?.id === r1.id && m.data.resource.version === 2);
    const seen = sse.events().map((e) => e.data.resource.id);
    expect(new Set(seen)).toEqual(new Set([r1.id, p1.id]));
    expect(seq(sse.events().map((e) => e.data)).filter((x) => x !== `${p1.id.slice(-4)}@1`)).toEqual([`${r1.id.slice(-4)}@1`, `${r1.id.slice(-4)}@2`, `${p1.id.slice(-4)}@2`]);
    await until(() => pws.all.some((m) => m.resource?.version === 2));
    expect(pws.all.filter((m) => m.type?.includes('.')).every((m) => m.resource.id === r1.id)).toBe(true);
    // Staff see both patients' responses on the same topic.
    expect(new Set(staffSse.events().map((e) => e.data.resource.id))).toEqual(new Set([r1.id, r2.id]));
    sse.close();
    staffSse.close();
    pws.close();
  });

  it('SSE: a forced disconnect while writes go on is resumed with Last-Event-ID: exactly the committed sequence', async () => {
    const [a, b] = [await patient(), await patient()];
    // From the tenant's first event, so the expected sequence does not depend on dispatch timing.
    const sse = openSse(srv.url, [`patients/${a.id}`], { token: staffToken }, { 'last-event-id': '0' });
    await sse.next((m) => m.event === 'ready');
    const rt = realtimeStateOf(srv.deps)!;
    let [va, vb] = [1, 1];
    for (let i = 0; i < 30; i++) {
      va = await touch(a.id, va);
      vb = await touch(b.id, vb);
      // Drop every stream of this server mid-flight, twice (as a network failure would). The second
      // drop waits for the first reconnection: on a fast machine the writes between the two can
      // all be done before the EventSource is back, and there would be nothing to drop.
      if (i === 19) await until(() => sse.all.filter((m) => m.event === 'ready').length === 2, 10_000, 'the first reconnection');
      if (i === 8 || i === 19) for (const c of [...rt.connections]) if (c.principal.tenantId === tenant) c.drop();
    }
    await until(() => sse.events().some((e) => e.data.resource.version === va), 10_000, 'the last event');
    const expected = Array.from({ length: va }, (_, i) => `${a.id.slice(-4)}@${i + 1}`);
    expect(seq(sse.events().map((e) => e.data))).toEqual(expected);
    const ids = sse.events().map((e) => BigInt(e.id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    expect(sse.all.filter((m) => m.event === 'ready').length).toBe(3); // one per (re)connection
    sse.close();
  });

  it('WS: reconnecting with subscribe {after} after a forced disconnect continues with no gap and no duplicate', async () => {
    const a = await patient();
    const r = await startResponse(a.id);
    const topics = [`patients/${a.id}`, `questionnaire-responses/${r.id}`];
    const received: any[] = [];
    let ws: WsClient = await openWs(srv.url, { token: staffToken });
    const collect = (c: WsClient) => c.ws.on('message', (d) => { const m = JSON.parse(String(d)); if (m.type.includes('.')) received.push(m); });
    collect(ws);
    await ws.call({ type: 'subscribe', topics, after: '0' });
    const rt = realtimeStateOf(srv.deps)!;
    let [va, vr] = [1, 1];
    const writes = (async () => {
      for (let i = 0; i < 24; i++) {
        va = await touch(a.id, va);
        vr = await saveDraft(r.id, vr);
      }
    })();
    for (let round = 0; round < 2; round++) {
      await until(() => received.length > 5 + round * 12, 10_000, 'some events');
      for (const c of [...rt.connections]) if (c.principal.tenantId === tenant) c.drop();
      await ws.closed;
      const last = received[received.length - 1].id as string;
      ws = await openWs(srv.url, { token: staffToken });
      collect(ws);
      // Resume first, then subscribe: the subscription starts from the resumed position.
      expect(await ws.call({ type: 'resume', after: last })).toMatchObject({ type: 'resumed', lastEventId: null });
      await ws.call({ type: 'subscribe', topics });
    }
    await writes;
    await until(() => received.some((m) => m.resource.id === r.id && m.resource.version === vr) && received.some((m) => m.resource.id === a.id && m.resource.version === va), 10_000, 'the last events');
    const ofA = received.filter((m) => m.resource.id === a.id).map((m) => m.resource.version);
    const ofR = received.filter((m) => m.resource.id === r.id).map((m) => m.resource.version);
    expect(ofA).toEqual(Array.from({ length: va }, (_, i) => i + 1));
    expect(ofR).toEqual(Array.from({ length: vr }, (_, i) => i + 1));
    const ids = received.map((m) => BigInt(m.id));
    expect(new Set(ids.map(String)).size).toBe(ids.length);
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    ws.close();
  });

  it('SSE: a stream that has received no event yet resumes from its ready position (ready carries the id)', async () => {
    const a = await patient();
    const sse = openSse(srv.url, [`patients/${a.id}`], { token: staffToken });
    const ready = await sse.next((m) => m.event === 'ready');
    expect(ready.id).toBe(ready.data.lastEventId);
    const rt = realtimeStateOf(srv.deps)!;
    for (const c of [...rt.connections]) if (c.principal.tenantId === tenant) c.drop();
    // Written while the client is away (before it reconnects, which takes REALTIME_RECONNECT_MS or more).
    await touch(a.id, 1);
    await until(() => sse.all.filter((m) => m.event === 'ready').length === 2, 5000, 'the reconnection');
    await sse.next((m) => m.event === 'patient.updated');
    // (@1, the creation, may be dispatched after the first ready, and then arrives live.)
    expect(seq(sse.events().map((e) => e.data)).filter((x) => !x.endsWith('@1'))).toEqual([`${a.id.slice(-4)}@2`]);
    sse.close();
  });

  it('resuming from an id the log does not have says resync-required, then goes on live', async () => {
    const a = await patient();
    const sse = openSse(srv.url, [`patients/${a.id}`], { token: staffToken }, { 'last-event-id': '999999999' });
    const resync = await sse.next((m) => m.event === 'resync-required');
    expect(resync.data).toMatchObject({ type: 'resync-required', after: '999999999', head: expect.stringMatching(/^\d+$/), lastEventId: resync.data.head });
    await sse.next((m) => m.event === 'ready');
    await touch(a.id, 1);
    await sse.next((m) => m.event === 'patient.updated');
    const ws = await openWs(srv.url, { token: staffToken });
    await ws.call({ type: 'subscribe', topics: [`patients/${a.id}`] });
    await ws.call({ type: 'resume', after: '999999999' });
    expect(ws.all.find((m) => m.type === 'resync-required')).toMatchObject({ after: '999999999' });
    sse.close();
    ws.close();
  });

  it('events of another tenant never reach a subscriber, whatever its topics', async () => {
    const other = await srv.newTenant();
    const otherStaff = client(srv.url, await srv.token({ tenant: other, roles: ['admin'] }));
    const theirs = (await otherStaff('POST', '/v1/patients', { body: patientInput() })).body;
    // Not even by naming the other tenant's record: it does not exist in this tenant.
    expect((await staff('GET', `/v1/events?topic=patients/${theirs.id}`)).status).toBe(404);
    const ws = await openWs(srv.url, { token: staffToken });
    expect((await ws.call({ type: 'subscribe', topics: [`patients/${randomUUID()}`] })).error.code).toBe('NOT_FOUND');
    ws.close();
  });
});
