// Robustness: heartbeats, a slow consumer is cut off at a bounded buffer with a reason, graceful
// shutdown tells every client to reconnect (SSE retry + closing event, WebSocket 1012).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { client } from '../../../test/helpers/http.js';
import { openSse, openWs, sleep, until } from '../../../test/helpers/realtime.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { realtimeStateOf } from './state.js';

describe.each(storageModes())('real-time robustness (%s)', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let token: string;
  beforeAll(async () => {
    srv = await startServer(mode, { REALTIME_HEARTBEAT_MS: '100', REALTIME_MAX_BUFFER_BYTES: '65536' });
    tenant = await srv.newTenant();
    token = await srv.token({ tenant, roles: ['admin'], sub: 'robust' });
  });
  afterAll(() => srv?.close());

  it('SSE streams carry heartbeat comments; WebSocket clients are pinged', async () => {
    const res = await fetch(`${srv.url}/v1/events?topic=rooms/beats`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(res.headers.get('x-request-id')).toEqual(expect.any(String));
    const reader = res.body!.getReader();
    let text = '';
    const end = Date.now() + 3000;
    while (!text.includes(': ping') && Date.now() < end) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toMatch(/^retry: \d+\n\n/);
    expect(text).toContain('event: ready\n');
    expect(text).toContain(': ping\n\n');
    await reader.cancel();
    const ws = await openWs(srv.url, { token });
    let pings = 0;
    ws.ws.on('ping', () => pings++);
    await until(() => pings >= 2, 3000, 'pings');
    ws.close();
  });

  it('a slow consumer gets a bounded buffer, then is disconnected with a reason (and its memory freed)', async () => {
    // Its own server, with the default heartbeat: a client that stops reading also stops answering
    // pings, and this file's 100 ms heartbeat could close it for that before its buffer fills.
    const own = await startServer(mode, { REALTIME_MAX_BUFFER_BYTES: '65536' });
    try {
      const tok = await own.token({ tenant: await own.newTenant(), roles: ['admin'], sub: 'robust' });
      const api = client(own.url, tok);
      // A large resource makes each reply big: the socket buffers fill fast.
      const big = simpleQuestionnaire({ status: 'active', description: 'x'.repeat(200_000) });
      const q = (await api('POST', '/v1/questionnaires', { body: big })).body;
      const ws = await openWs(own.url, { token: tok });
      const rt = realtimeStateOf(own.deps)!;
      const before = rt.connections.size;
      // Stop reading, and keep asking: replies pile up on the server side.
      (ws.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      for (let i = 0; i < 200; i++) ws.send({ type: 'request', id: `r${i}`, method: 'GET', path: `/v1/questionnaires/${q.id}` });
      await until(() => own.logs.some((l) => l.includes('"reason":"slow-consumer"')), 10_000, 'the slow-consumer close');
      expect(rt.connections.size).toBe(before - 1);
      (ws.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      const closed = await ws.closed;
      // The close frame may be lost with the unread data (the socket is dropped after a grace period).
      expect([1013, 1006]).toContain(closed.code);
      if (closed.code === 1013) expect(closed.reason).toMatch(/slow consumer/);
      // Far fewer replies than asked for reached the client: the rest were never buffered.
      expect(ws.all.filter((m) => m.type === 'response').length).toBeLessThan(200);
    } finally {
      await own.close();
    }
  });

  it('graceful shutdown closes WebSockets with 1012 and a reconnect delay, and SSE with retry and a closing event', async () => {
    const own = await startServer(mode, { REALTIME_RECONNECT_MS: '500' });
    const t = await own.newTenant();
    const tok = await own.token({ tenant: t, roles: ['clinician'] });
    const ws = await openWs(own.url, { token: tok });
    await ws.call({ type: 'subscribe', topics: ['rooms/shutdown'] });
    const sse = openSse(own.url, ['rooms/shutdown-sse'], { token: tok });
    await sse.next((m) => m.event === 'ready');
    const started = Date.now();
    await own.close();
    expect(Date.now() - started).toBeLessThan(5000);
    const closed = await ws.closed;
    expect(closed.code).toBe(1012);
    expect(closed.reason).toMatch(/reconnect in \d+ ms/);
    const closing = ws.all.find((m) => m.type === 'closing');
    expect(closing).toMatchObject({ reason: 'shutdown', retryAfterMs: expect.any(Number) });
    expect(closing.retryAfterMs).toBeGreaterThanOrEqual(500);
    expect(closing.retryAfterMs).toBeLessThanOrEqual(1000);
    const sseClosing = await sse.next((m) => m.event === 'closing');
    expect(sseClosing.data).toMatchObject({ reason: 'shutdown', retryAfterMs: expect.any(Number) });
    await sleep(10);
    sse.close();
  });
});
