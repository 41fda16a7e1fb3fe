// The HTTP contract shared by every route: the error envelope on every error path (routing,
// parsing, media type, size, validation, crashes, outages), X-Request-ID, X-Response-Time, health.
import { rmSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../src/errors.js';
import { patientInput } from './helpers/factories.js';
import { client, expectError, type Client, type Res } from './helpers/http.js';
import { parseLogs, requestLineOf, waitFor } from './helpers/logs.js';
import { startServer, storageModes, type Mode, type TestServer } from './helpers/server.js';

const RESPONSE_TIME = /^\d+\.\d{2}ms$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MISSING_ID = '0192f3c4-0000-7000-8000-000000000000';
const PHI_NAME = 'Zebulon Quagmire-Thistlewood';

/** The distinct detail paths of a validation error, sorted (one problem may carry several messages). */
const pathsOf = (err: { details?: { path: string }[] }) => [...new Set((err.details ?? []).map((d) => d.path))].sort();
const expectResponseTime = (res: Res) => expect(res.headers.get('x-response-time')).toMatch(RESPONSE_TIME);

describe.each(storageModes())('HTTP contract on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  let anon: Client;
  let tenant: string;
  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    anon = client(srv.url);
  });
  afterAll(() => srv?.close());

  const patientCount = async () => {
    const res = await api('GET', '/v1/patients?limit=100');
    expect(res.status).toBe(200);
    return (res.body.data as unknown[]).length;
  };

  describe('routing', () => {
    it('an unknown route is 404 NOT_FOUND in the envelope, with or without a token, inside and outside /v1', async () => {
      for (const path of ['/nope', '/v1/nope', '/v1/patients/a/b/c', '/v2/patients']) {
        expectError(await anon('GET', path), 404, 'NOT_FOUND');
        expectError(await api('GET', path), 404, 'NOT_FOUND');
      }
      expectError(await api('DELETE', '/v1/nope'), 404, 'NOT_FOUND');
    });

    it('a known path with a wrong method is 405 METHOD_NOT_ALLOWED with an Allow header', async () => {
      const put = await api('PUT', '/v1/patients', { body: patientInput() });
      expectError(put, 405, 'METHOD_NOT_ALLOWED');
      const allowCollection = put.headers.get('allow')!.split(/,\s*/);
      expect(allowCollection).toEqual(expect.arrayContaining(['GET', 'POST']));
      expect(allowCollection).not.toContain('PUT');
      expect(allowCollection).not.toContain('PATCH');

      const post = await api('POST', `/v1/patients/${MISSING_ID}`, { body: patientInput() });
      expectError(post, 405, 'METHOD_NOT_ALLOWED');
      const allowItem = post.headers.get('allow')!.split(/,\s*/);
      expect(allowItem).toEqual(expect.arrayContaining(['GET', 'PATCH', 'DELETE']));
      expect(allowItem).not.toContain('POST');

      // Without a token too: the method is wrong whoever asks.
      expectError(await anon('DELETE', '/v1/providers'), 405, 'METHOD_NOT_ALLOWED');
      expectError(await anon('PUT', `/v1/locations/${MISSING_ID}`), 405, 'METHOD_NOT_ALLOWED');
      expect(await patientCount()).toBe(0);
    });
  });

  describe('request bodies', () => {
    it('invalid JSON is 400 MALFORMED_REQUEST and the message does not echo the body', async () => {
      const raw = `{"name": {"given": ["Zebulon"], "family": "${PHI_NAME}"}, "birthDate": "1961-07-04",`;
      const res = await api('POST', '/v1/patients', { raw, headers: { 'content-type': 'application/json' } });
      const err = expectError(res, 400, 'MALFORMED_REQUEST');
      expect(res.text).not.toContain('Zebulon');
      expect(res.text).not.toContain('1961-07-04');
      expect(err.message).not.toMatch(/Unexpected|position|token/i); // not the parser's own message
      // Same on PATCH with the merge-patch media type.
      const patch = await api('PATCH', `/v1/patients/${MISSING_ID}`, {
        raw: `{"email": "zebulon@example.org"`,
        headers: { 'content-type': 'application/merge-patch+json', 'if-match': 'W/"1"' },
      });
      expectError(patch, 400, 'MALFORMED_REQUEST');
      expect(patch.text).not.toContain('zebulon');
    });

    it('an empty JSON body is 400', async () => {
      const res = await api('POST', '/v1/patients', { raw: '', headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(400);
      expectError(res, 400, res.body.error.code);
      expect(['MALFORMED_REQUEST', 'VALIDATION_FAILED']).toContain(res.body.error.code);
    });

    it('a JSON body of the wrong type ([], "x", null) is 400 VALIDATION_FAILED', async () => {
      for (const raw of ['[]', '"x"', 'null', '42']) {
        const res = await api('POST', '/v1/patients', { raw, headers: { 'content-type': 'application/json' } });
        expect(res.status, raw).toBe(400);
        expect(['MALFORMED_REQUEST', 'VALIDATION_FAILED']).toContain(expectError(res, 400, res.body.error.code).code);
      }
    });

    it('prototype-poisoning bodies are 400, create nothing and pollute nothing', async () => {
      const valid = JSON.stringify(patientInput()).slice(1, -1); // otherwise a valid patient
      const bodies = [
        '{"__proto__":{"x":1}}',
        '{"constructor":{"prototype":{}}}',
        `{${valid},"__proto__":{"polluted":"yes"}}`,
        `{${valid},"constructor":{"prototype":{"polluted":"yes"}}}`,
        `{${valid},"name":{"given":["A"],"family":"B","__proto__":{"polluted":"yes"}}}`,
      ];
      for (const raw of bodies) {
        const res = await api('POST', '/v1/patients', { raw, headers: { 'content-type': 'application/json' } });
        expect(res.status, raw).toBe(400);
        expectError(res, 400, res.body.error.code);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(({} as Record<string, unknown>).x).toBeUndefined();
      expect(await patientCount()).toBe(0);
    });

    it('a wrong content type is 415 UNSUPPORTED_MEDIA_TYPE and creates nothing', async () => {
      const json = JSON.stringify(patientInput());
      for (const ct of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const res = await api('POST', '/v1/patients', { raw: json, headers: { 'content-type': ct } });
        expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
        expectResponseTime(res);
      }
      expectError(await api('POST', '/v1/patients', { raw: '<patient/>', headers: { 'content-type': 'application/xml' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect(await patientCount()).toBe(0);
    });

    it('a body over 1 MiB is 413 PAYLOAD_TOO_LARGE', async () => {
      const raw = JSON.stringify({ ...patientInput(), padding: 'x'.repeat(1024 * 1024 + 16) });
      const res = await api('POST', '/v1/patients', { raw, headers: { 'content-type': 'application/json' } });
      expectError(res, 413, 'PAYLOAD_TOO_LARGE');
      expectResponseTime(res);
      expect(await patientCount()).toBe(0);
    });
  });

  describe('validation', () => {
    it('a non-uuid id in the path is 400 VALIDATION_FAILED at /params/id, on every item route', async () => {
      for (const kind of ['patients', 'providers', 'locations']) {
        for (const method of ['GET', 'PATCH', 'DELETE']) {
          const res = await api(method, `/v1/${kind}/not-a-uuid`, method === 'PATCH' ? { body: { name: 'x' }, headers: { 'if-match': 'W/"1"' } } : { headers: { 'if-match': 'W/"1"' } });
          const err = expectError(res, 400, 'VALIDATION_FAILED');
          expect(err.details!.length, `${method} ${kind}`).toBeGreaterThan(0);
          expect(pathsOf(err), `${method} ${kind}`).toEqual(['/params/id']);
        }
      }
    });

    it('query validation errors use /query/<name> paths and list every problem', async () => {
      const bad = expectError(await api('GET', '/v1/patients?limit=abc&foo=1'), 400, 'VALIDATION_FAILED');
      expect(pathsOf(bad)).toEqual(['/query/foo', '/query/limit']);
      for (const q of ['limit=0', 'limit=101', 'limit=1.5']) {
        const e = expectError(await api('GET', `/v1/patients?${q}`), 400, 'VALIDATION_FAILED');
        expect(pathsOf(e)).toEqual(['/query/limit']);
      }
      const date = expectError(await api('GET', '/v1/patients?birthDate=yesterday'), 400, 'VALIDATION_FAILED');
      expect(pathsOf(date)).toEqual(['/query/birthDate']);
      const loc = expectError(await api('GET', '/v1/providers?locationId=nope'), 400, 'VALIDATION_FAILED');
      expect(pathsOf(loc)).toEqual(['/query/locationId']);
      // A valid query is fine.
      expect((await api('GET', '/v1/patients?limit=100')).status).toBe(200);
    });

    it('body validation errors are 400 VALIDATION_FAILED with JSON-pointer paths of every problem', async () => {
      const e = expectError(
        await api('POST', '/v1/patients', { body: { ...patientInput(), birthDate: 'soon', gender: 'x', extra: 1 } }),
        400,
        'VALIDATION_FAILED',
      );
      const paths = e.details!.map((d) => d.path);
      expect(paths).toEqual(expect.arrayContaining(['/birthDate', '/gender', '/extra']));
    });
  });

  describe('X-Request-ID', () => {
    it('a valid client value is echoed, is the error body requestId, and is the reqId of that request\'s log line', async () => {
      const id = `client-req.${Date.now()}_A-z`;
      const res = await api('GET', `/v1/patients/${MISSING_ID}`, { headers: { 'x-request-id': id } });
      expect(res.headers.get('x-request-id')).toBe(id);
      expect(expectError(res, 404, 'NOT_FOUND').requestId).toBe(id);
      const line = await requestLineOf(srv.logs, id);
      expect(line).toMatchObject({ reqId: id, status: 404, route: '/v1/patients/:id', method: 'GET' });
      // Echoed on success too.
      const ok = await api('GET', '/v1/patients', { headers: { 'x-request-id': `${id}-ok` } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-request-id')).toBe(`${id}-ok`);
      await requestLineOf(srv.logs, `${id}-ok`);
      // The longest allowed value (128) is accepted.
      const long = 'a'.repeat(128);
      expect((await api('GET', '/health/live', { headers: { 'x-request-id': long } })).headers.get('x-request-id')).toBe(long);
    });

    it('an invalid value (too long, bad characters) is replaced by a generated one', async () => {
      for (const given of ['a'.repeat(129), 'has space', 'semi;colon', '<script>', 'slash/ed', 'ünïcode', 'line%0Abreak']) {
        const res = await api('GET', `/v1/patients/${MISSING_ID}`, { headers: { 'x-request-id': given } });
        const echoed = res.headers.get('x-request-id')!;
        expect(echoed, given).not.toBe(given);
        expect(echoed).toMatch(UUID);
        expect(expectError(res, 404, 'NOT_FOUND').requestId).toBe(echoed);
      }
      await waitFor(() => parseLogs(srv.logs).some((l) => l.msg === 'request' && l.status === 404), 5000);
      for (const l of srv.logs) expect(l).not.toContain('<script>');
    });

    it('a generated request id is a UUID, different on every request', async () => {
      const a = await api('GET', '/health/live');
      const b = await api('GET', '/health/live');
      expect(a.headers.get('x-request-id')).toMatch(UUID);
      expect(b.headers.get('x-request-id')).toMatch(UUID);
      expect(a.headers.get('x-request-id')).not.toBe(b.headers.get('x-request-id'));
    });
  });

  it('every response has X-Response-Time like 3.41ms (2xx, 4xx, 404, 405, health, docs)', async () => {
    const created = await api('POST', '/v1/patients', { body: patientInput() });
    expect(created.status).toBe(201);
    const responses = [
      created,
      await api('GET', `/v1/patients/${created.body.id}`),
      await api('GET', '/v1/patients'),
      await anon('GET', '/v1/patients'),
      await api('GET', '/v1/patients/not-a-uuid'),
      await api('GET', `/v1/patients/${MISSING_ID}`),
      await api('GET', '/nope'),
      await api('PUT', '/v1/patients'),
      await api('DELETE', `/v1/patients/${created.body.id}`, { headers: { 'if-match': 'W/"1"' } }),
      await anon('GET', '/health/live'),
      await anon('GET', '/health/ready'),
      await anon('GET', '/v1/openapi.json'),
    ];
    expect(responses.map((r) => r.status)).toEqual([201, 200, 200, 401, 400, 404, 404, 405, 204, 200, 200, 200]);
    for (const r of responses) expectResponseTime(r);
  });

  it('GET /health/live is 200 and GET /health/ready is 200 with the database check', async () => {
    const live = await anon('GET', '/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ status: 'ok' });
    const ready = await anon('GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ok', checks: { database: { status: 'ok', latencyMs: expect.any(Number) } } });
    expect(ready.body.checks.database.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('responses are application/json; charset=utf-8, errors included', async () => {
    expect((await api('GET', '/v1/patients')).headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect((await api('GET', '/nope')).headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect((await anon('GET', '/v1/patients')).headers.get('content-type')).toBe('application/json; charset=utf-8');
  });
});

describe.each(storageModes())('HTTP contract with BODY_LIMIT_BYTES=2048 on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode, { BODY_LIMIT_BYTES: '2048' });
    api = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'] }));
  });
  afterAll(() => srv?.close());

  it('a 3 KB body is 413 PAYLOAD_TOO_LARGE; a small one still works', async () => {
    const raw = JSON.stringify({ ...patientInput(), padding: 'x'.repeat(3 * 1024) });
    expect(raw.length).toBeGreaterThan(3 * 1024);
    const res = await api('POST', '/v1/patients', { raw, headers: { 'content-type': 'application/json' } });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expectError(
      await api('PATCH', `/v1/patients/${MISSING_ID}`, { raw, headers: { 'content-type': 'application/merge-patch+json', 'if-match': 'W/"1"' } }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expect((await api('POST', '/v1/patients', { body: patientInput() })).status).toBe(201);
  });
});

describe.each(storageModes())('HTTP contract when the database is gone on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(async () => {
    // The database was closed by the test: close the HTTP side only, then clean up.
    await srv?.app.close();
    rmSync(srv.dataDir, { recursive: true, force: true });
  });

  it('GET /health/ready is 503 SERVICE_UNAVAILABLE with Retry-After; /health/live stays 200', async () => {
    const anon = client(srv.url);
    expect((await anon('GET', '/health/ready')).status).toBe(200);
    await srv.deps.db.close();
    const res = await anon('GET', '/health/ready');
    expectError(res, 503, 'SERVICE_UNAVAILABLE');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.text).not.toMatch(/pool|pglite|closed|ECONN/i);
    expect((await anon('GET', '/health/live')).status).toBe(200);
  });
});

describe('HTTP contract when the database is unreachable (PostgreSQL refusing connections)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    // Port 1 on loopback: nothing listens there, so every connection is refused.
    srv = await startServer('pglite', { DATABASE_URL: 'postgres://carebase@127.0.0.1:1/carebase', DATABASE_CONNECT_TIMEOUT_MS: '1000' });
  });
  afterAll(() => srv?.close());

  it('health/ready and API routes are 503 SERVICE_UNAVAILABLE with Retry-After, never 500', async () => {
    const anon = client(srv.url);
    const ready = await anon('GET', '/health/ready');
    expectError(ready, 503, 'SERVICE_UNAVAILABLE');
    expect(ready.headers.get('retry-after')).toMatch(/^\d+$/);
    // The token check needs the tenant directory, i.e. the database.
    const api = client(srv.url, await srv.token({ tenant: 'some-tenant', roles: ['admin'] }));
    const res = await api('GET', '/v1/patients');
    expectError(res, 503, 'SERVICE_UNAVAILABLE');
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
  });
});

// A test server with extra routes that throw, added before it listens.
interface BoomServer extends TestServer {
  adminToken: string;
}

const PHI_MESSAGE = `Patient ${PHI_NAME} born 1961-07-04, MRN-ZQ-998877, zebulon.q@example.org`;

async function startBoomServer(mode: Mode): Promise<BoomServer> {
  const tenant = `t-boom-${Math.random().toString(16).slice(2, 10)}`;
  const srv = await startServer(mode, {}, {
    beforeListen(app, deps) {
      app.get('/v1/boom', async () => {
        throw new Error(PHI_MESSAGE);
      });
      app.get('/v1/boom-sync', () => {
        throw new TypeError(PHI_MESSAGE);
      });
      app.get('/v1/boom-object', async () => {
        throw { message: PHI_MESSAGE, patient: PHI_NAME };
      });
      // A database error whose message (and drizzle's wrapper, which lists parameters) quotes the input.
      app.get('/v1/boom-db', async () => deps.db.read(tenant, (q) => q.execute(sql`select ${PHI_MESSAGE}::int as n`)));
      app.get('/v1/boom-public', { config: { public: true } }, async () => {
        throw new RangeError(PHI_MESSAGE);
      });
    },
  });
  await srv.deps.tenants.create(tenant, 'Boom');
  return Object.assign(srv, { adminToken: await srv.token({ tenant, roles: ['admin'], sub: 'boom-tester' }) });
}

describe.each(storageModes())('unexpected errors on %s', (mode) => {
  let srv: BoomServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startBoomServer(mode);
    api = client(srv.url, srv.adminToken);
  });
  afterAll(() => srv?.close());

  it.each(['/v1/boom', '/v1/boom-sync', '/v1/boom-object', '/v1/boom-db', '/v1/boom-public'])(
    'GET %s → 500 INTERNAL with the generic message; the error is logged with the request id, without the PHI',
    async (path) => {
      const reqId = `boom-${path.split('/').pop()}-${Date.now()}`;
      const res = await api('GET', path, { headers: { 'x-request-id': reqId } });
      const err = expectError(res, 500, 'INTERNAL');
      expect(err.message).toBe(ERRORS.INTERNAL.message);
      expect(err.requestId).toBe(reqId);
      expect(err.details).toBeUndefined();
      expect(res.text).not.toContain('Zebulon');
      expect(res.text).not.toMatch(/at .*\.ts|stack|select/i);
      expectResponseTime(res);

      const line = await requestLineOf(srv.logs, reqId);
      expect(line).toMatchObject({ status: 500, errorCode: 'INTERNAL', route: path });
      const errorLines = parseLogs(srv.logs).filter((l) => l.reqId === reqId && l.level === 'error');
      expect(errorLines.length).toBe(1);
      expect(errorLines[0]).toMatchObject({ code: 'INTERNAL', err: expect.any(Object) });
      const mine = srv.logs.filter((l) => l.includes(reqId));
      expect(mine.length).toBe(2);
      for (const l of srv.logs) {
        const lower = l.toLowerCase();
        for (const phi of ['zebulon', 'quagmire', '1961-07-04', 'mrn-zq-998877']) expect(lower, l).not.toContain(phi);
      }
    },
  );

  it('the server keeps serving after crashes', async () => {
    expect((await api('GET', '/health/live')).status).toBe(200);
    expect((await api('GET', '/v1/patients')).status).toBe(200);
  });
});
