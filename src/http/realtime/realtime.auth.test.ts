// Real-time authentication and refusals: bearer tokens and single-use tickets on both
// transports; bad, reused and expired tickets; unknown topics, malformed messages and topics the
// principal may not see — each a clear error in the contract's envelope that changes nothing.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { openSse, openWs, sleep, until } from '../../../test/helpers/realtime.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const FAST = { REALTIME_HEARTBEAT_MS: '200', REALTIME_RECONNECT_MS: '50', REALTIME_TICKET_TTL_SECONDS: '1' };

/** A refused WebSocket upgrade: its status and contract envelope. */
async function refusedWs(p: Promise<unknown>) {
  const err = (await p.then(
    () => {
      throw new Error('the upgrade was accepted');
    },
    (e: unknown) => e,
  )) as { status: number; body: any };
  return err;
}

describe.each(storageModes())('real-time auth and refusals (%s)', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let token: string;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode, FAST);
    tenant = await srv.newTenant();
    token = await srv.token({ tenant, roles: ['clinician'], sub: 'rt-clin' });
    api = client(srv.url, token);
  });
  afterAll(() => srv?.close());

  it('POST /v1/realtime/tickets gives a single-use ticket; it opens one WebSocket, then is refused', async () => {
    const res = await api('POST', '/v1/realtime/tickets');
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toEqual({ ticket: expect.stringMatching(/^rt_[A-Za-z0-9_-]{43}$/), expiresAt: expect.any(String) });
    const ws = await openWs(srv.url, { ticket: res.body.ticket });
    expect(await ws.call({ type: 'ping' })).toMatchObject({ type: 'pong' });
    ws.close();
    const again = await refusedWs(openWs(srv.url, { ticket: res.body.ticket }));
    expect(again.status).toBe(401);
    expect(again.body).toMatchObject({ success: false, error: { code: 'UNAUTHENTICATED', message: expect.stringMatching(/ticket/) } });
  });

  it('a ticket opens one SSE stream; reused, made up or expired it is 401 with the envelope', async () => {
    const { body } = await api('POST', '/v1/realtime/tickets', { body: {} });
    const sse = openSse(srv.url, ['rooms/front-desk'], { ticket: body.ticket });
    await sse.next((m) => m.event === 'ready');
    sse.close();
    const reused = await fetch(`${srv.url}/v1/events?topic=rooms/front-desk&ticket=${body.ticket}`);
    expectError({ status: reused.status, headers: reused.headers, body: await reused.json(), text: '' }, 401, 'UNAUTHENTICATED');
    const madeUp = await fetch(`${srv.url}/v1/events?topic=rooms/front-desk&ticket=rt_${'A'.repeat(43)}`);
    expect(madeUp.status).toBe(401);
    const expired = (await api('POST', '/v1/realtime/tickets')).body.ticket;
    await sleep(1100); // REALTIME_TICKET_TTL_SECONDS=1
    expect((await refusedWs(openWs(srv.url, { ticket: expired }))).status).toBe(401);
  });

  it('no credentials, a bad token, a non-upgrade GET /v1/ws: clear errors', async () => {
    const none = await refusedWs(openWs(srv.url, {}));
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHENTICATED');
    expect((await refusedWs(openWs(srv.url, { token: 'not.a.token' }))).status).toBe(401);
    const sse = await fetch(`${srv.url}/v1/events?topic=rooms/x`);
    expect(sse.status).toBe(401);
    expect(((await sse.json()) as any).error.code).toBe('UNAUTHENTICATED');
    const plain = await api('GET', '/v1/ws');
    expectError(plain, 400, 'MALFORMED_REQUEST');
    // Tickets are for bearer holders only.
    expectError(await client(srv.url)('POST', '/v1/realtime/tickets'), 401, 'UNAUTHENTICATED');
  });

  it('SSE: unknown, malformed and not-yet-available topics are 400 with every problem listed; missing topic too', async () => {
    const res = await api('GET', `/v1/events?topic=weather/today&topic=patients/not-a-uuid&topic=appointments/${randomUUID()}/2026-01-01&topic=rooms/Bad Name`);
    const err = expectError(res, 400, 'VALIDATION_FAILED');
    expect(err.details?.map((d) => d.path)).toEqual(['/query/topic/0', '/query/topic/1', '/query/topic/2', '/query/topic/3']);
    expect(err.details?.[2]?.message).toMatch(/appointments/);
    expectError(await api('GET', '/v1/events'), 400, 'VALIDATION_FAILED');
    expectError(await api('GET', '/v1/events?topic=rooms/x', { headers: { 'last-event-id': 'abc' } }), 400, 'VALIDATION_FAILED');
  });

  it('SSE and WS: a record the principal may not see is refused as REST refuses it (404 / 403)', async () => {
    const missing = randomUUID();
    const sse = await api('GET', `/v1/events?topic=patients/${missing}`);
    expectError(sse, 404, 'NOT_FOUND');
    const ws = await openWs(srv.url, { token });
    const reply = await ws.call({ type: 'subscribe', topics: [`patients/${missing}`] });
    expect(reply).toMatchObject({ type: 'error', success: false, error: { code: 'NOT_FOUND', requestId: expect.any(String) }, timestamp: expect.any(String) });
    // A patient may not join a free-named (staff) room.
    const patientToken = await srv.token({ tenant, roles: ['patient'], sub: 'p', patientId: randomUUID() });
    const pws = await openWs(srv.url, { token: patientToken });
    expect(await pws.call({ type: 'subscribe', topics: ['rooms/front-desk'] })).toMatchObject({ type: 'error', error: { code: 'FORBIDDEN' } });
    ws.close();
    pws.close();
  });

  it('WS: malformed JSON, unknown types, bad fields and unknown topics get error envelopes; the connection stays usable', async () => {
    const ws = await openWs(srv.url, { token });
    ws.send('{not json');
    expect(await ws.next((m) => m.type === 'error')).toMatchObject({ success: false, error: { code: 'MALFORMED_REQUEST' } });
    expect(await ws.call({ type: 'dance' })).toMatchObject({ type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '/type' }] } });
    expect(await ws.call({ type: 'subscribe', topics: 'patients' })).toMatchObject({ type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '/topics' }] } });
    expect(await ws.call({ type: 'subscribe', topics: ['nope/1'] })).toMatchObject({ type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '/topics/0' }] } });
    expect(await ws.call({ type: 'resume', after: '-1' })).toMatchObject({ type: 'error', error: { code: 'VALIDATION_FAILED' } });
    expect(await ws.call({ type: 'typing', room: 'front-desk', typing: true })).toMatchObject({ type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '/room' }] } });
    ws.ws.send(Buffer.from('{}'), { binary: true });
    await ws.next((m) => m.type === 'error' && /binary/.test(m.error.message));
    expect(await ws.call({ type: 'ping' })).toEqual({ type: 'pong', id: expect.any(String), lastEventId: null });
    ws.close();
  });

  it('WS requests cannot reach the real-time routes or leave /v1, and carry no other credentials', async () => {
    const ws = await openWs(srv.url, { token });
    for (const path of ['/v1/realtime/tickets', '/v1/ws', '/v1/events?topic=x', '/health/live', 'http://example.org/v1/patients', '/v1/../health/live']) {
      const r = await ws.call({ type: 'request', method: 'POST', path });
      expect(r, path).toMatchObject({ type: 'error', error: { code: 'VALIDATION_FAILED', details: [{ path: '/path' }] } });
    }
    // An Authorization header in the message is ignored: the request acts as the connection.
    const other = await srv.token({ tenant, roles: ['patient'], sub: 'x', patientId: randomUUID() });
    const created = await ws.call({ type: 'request', method: 'POST', path: '/v1/patients', headers: { authorization: `Bearer ${other}` }, body: patientInput() });
    expect(created).toMatchObject({ type: 'response', status: 201 });
    ws.close();
  });

  it('a connection whose token expires is closed (WS 1008, SSE closing event)', async () => {
    const short = await srv.deps.devIssuer!.sign({ tenant, roles: ['clinician'], sub: 'short' }, 2);
    const ws = await openWs(srv.url, { token: short });
    const sse = openSse(srv.url, ['rooms/lobby'], { token: short });
    await sse.next((m) => m.event === 'ready');
    const closed = await ws.closed;
    expect(closed.code).toBe(1008);
    expect(ws.all.find((m) => m.type === 'closing')).toMatchObject({ reason: 'token-expired', error: { code: 'UNAUTHENTICATED' } });
    await sse.next((m) => m.event === 'closing' && m.data.reason === 'token-expired', 5000);
    sse.close();
  });

  it('a connection that stops answering pings is dropped and leaves its rooms', async () => {
    const a = await openWs(srv.url, { token });
    const b = await openWs(srv.url, { token: await srv.token({ tenant, roles: ['staff'], sub: 'b' }) });
    await a.call({ type: 'subscribe', topics: ['rooms/ward-1'] });
    await b.call({ type: 'subscribe', topics: ['rooms/ward-1'] });
    await a.next((m) => m.type === 'member-joined');
    // b's socket stops reading and answering (its pongs never come back).
    (b.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const left = await a.next((m) => m.type === 'member-left', 5000);
    expect(left.member.sub).toBe('b');
    await until(() => b.ws.readyState !== b.ws.OPEN || true);
    a.close();
    b.ws.terminate();
  });
});
