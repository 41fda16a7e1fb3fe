// Edge protections: security headers, CORS allow-list and preflight, JSON depth, request deadline
// (504), HTTPS-only deployments, TLS, and secrets read from files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../test/helpers/db.js';
import { patientInput } from '../../test/helpers/factories.js';
import { client } from '../../test/helpers/http.js';
import { startServer, type TestServer } from '../../test/helpers/server.js';
import { ConfigError, loadConfig } from '../config.js';
import { jsonDepthExceeds } from './security.js';

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('jsonDepthExceeds', () => {
  it('counts arrays and objects, not brackets inside strings', () => {
    expect(jsonDepthExceeds(nested(10), 10)).toBe(false);
    expect(jsonDepthExceeds(nested(11), 10)).toBe(true);
    expect(jsonDepthExceeds(JSON.stringify({ a: { b: [{ c: 1 }] } }), 4)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ a: { b: [{ c: 1 }] } }), 3)).toBe(true);
    expect(jsonDepthExceeds(JSON.stringify({ s: '[[[[{{{{"\\"[[[[' }), 1)).toBe(false);
  });
});

describe('security headers, CORS, JSON depth and deadline', () => {
  let srv: TestServer;
  let tenant: string;
  let api: ReturnType<typeof client>;
  beforeAll(async () => {
    srv = await startServer('pglite', { CORS_ORIGINS: 'https://app.example.org,http://localhost:5173', REQUEST_TIMEOUT_MS: '300', JSON_MAX_DEPTH: '16' }, {
      beforeListen: (app) => {
        app.get('/v1/test-slow', { config: { public: true } }, async () => {
          await new Promise((r) => setTimeout(r, 1500));
          return { late: true };
        });
        app.get<{ Params: { ms: string } }>('/v1/test-wait/:ms', { config: { public: true } }, async (request) => {
          await new Promise((r) => setTimeout(r, Number(request.params.ms)));
          return { waited: Number(request.params.ms) };
        });
      },
    });
    tenant = await srv.newTenant();
    api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
  });
  afterAll(() => srv?.close());

  it('sends helmet\'s headers and a CSP, and no HSTS over plain HTTP', async () => {
    const r = await api('GET', '/v1/patients');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(r.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(r.headers.get('strict-transport-security')).toBeNull();
    // The interactive docs still load under that policy (their assets come from this server).
    expect((await fetch(`${srv.url}/docs/`)).status).toBe(200);
  });

  it('answers a preflight from an allowed origin with the API\'s methods and headers, with credentials', async () => {
    const res = await fetch(`${srv.url}/v1/patients/x`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.org', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization,if-match,content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.org');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-methods')).toContain('PATCH');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('if-match');
    expect(res.headers.get('vary')?.toLowerCase()).toContain('origin');
  });

  it('exposes ETag, Location and the rate-limit headers to allowed origins, and nothing to others', async () => {
    const ok = await api('POST', '/v1/patients', { body: patientInput(), headers: { origin: 'http://localhost:5173' } });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(ok.headers.get('access-control-expose-headers')).toContain('ETag');
    expect(ok.headers.get('access-control-expose-headers')).toContain('RateLimit-Remaining');
    const other = await api('GET', '/v1/patients', { headers: { origin: 'https://evil.example.com' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${srv.url}/v1/patients`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses JSON nested deeper than JSON_MAX_DEPTH with 400 before parsing it, and creates nothing', async () => {
    const deep = JSON.stringify({ ...patientInput(), extra: JSON.parse(nested(20)) });
    const r = await api('POST', '/v1/patients', { raw: deep, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'MALFORMED_REQUEST', message: expect.stringContaining('deeper than 16') });
    const patch = await api('PATCH', `/v1/patients/${'0'.repeat(8)}-0000-7000-8000-${'0'.repeat(12)}`, { raw: nested(40), headers: { 'content-type': 'application/merge-patch+json', 'if-match': 'W/"1"' } });
    expect(patch.status).toBe(400);
    expect(await rowsOf(srv, tenant, sql`select id from patients where name->>'family' is null`)).toEqual([]);
    // Brackets inside strings are text, not nesting.
    const bracketed = await api('POST', '/v1/patients', { body: patientInput({ name: { given: ['A'], family: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' } }) });
    expect(bracketed.status).toBe(201);
  });

  it('compresses large JSON as the client asks (brotli, gzip), never small answers or event streams', async () => {
    for (let i = 0; i < 12; i++) expect((await api('POST', '/v1/patients', { body: patientInput() })).status).toBe(201);
    const token = await srv.token({ tenant, roles: ['clinician'] });
    const get = (encoding: string, path = '/v1/patients?limit=50') =>
      new Promise<{ encoding: string | undefined; body: Buffer; type: string | undefined }>((resolve, reject) => {
        httpRequest(`${srv.url}${path}`, { headers: { authorization: `Bearer ${token}`, 'accept-encoding': encoding } }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ encoding: r.headers['content-encoding'], body: Buffer.concat(chunks), type: r.headers['content-type'] }));
        })
          .on('error', reject)
          .end();
      });
    const plain = await get('identity');
    expect(plain.encoding).toBeUndefined();
    const list = JSON.parse(plain.body.toString('utf8'));
    expect(list.data.length).toBeGreaterThanOrEqual(12);
    const br = await get('br, gzip');
    expect(br.encoding).toBe('br');
    expect(JSON.parse(brotliDecompressSync(br.body).toString('utf8'))).toEqual(list);
    const gz = await get('gzip');
    expect(gz.encoding).toBe('gzip');
    expect(gunzipSync(gz.body).length).toBe(plain.body.length);
    expect(gz.body.length).toBeLessThan(plain.body.length / 2);
    // A small answer is sent as it is.
    expect((await get('gzip', `/v1/patients/${list.data[0].id}`)).encoding).toBeUndefined();
  });

  it('refuses prototype-poisoning keys', async () => {
    const r = await api('POST', '/v1/patients', { raw: '{"__proto__": {"admin": true}, "birthDate": "1980-01-01"}', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('MALFORMED_REQUEST');
  });

  it('answers 504 TIMEOUT in the envelope when a request runs past REQUEST_TIMEOUT_MS', async () => {
    const started = Date.now();
    const r = await client(srv.url)('GET', '/v1/test-slow', { headers: { 'x-request-id': 'slow-1' } });
    expect(r.status).toBe(504);
    expect(r.body.error).toMatchObject({ code: 'TIMEOUT', requestId: 'slow-1' });
    expect(Date.now() - started).toBeLessThan(1400);
  });

  it('keeps each deadline when requests in flight finish out of order', async () => {
    // Requests leave the in-flight list from its head, middle and tail while others wait.
    const waits = [1500, 10, 1500, 120, 0, 1500, 60, 200];
    const answers = await Promise.all(
      waits.map(async (ms, i) => {
        await new Promise((r) => setTimeout(r, i * 5));
        return client(srv.url)('GET', `/v1/test-wait/${ms}`);
      }),
    );
    expect(answers.map((a) => a.status)).toEqual(waits.map((ms) => (ms > 300 ? 504 : 200)));
    expect(answers[3]!.body).toEqual({ waited: 120 });
    // After the sweep has taken the late ones off, a new request still gets its full time.
    expect((await client(srv.url)('GET', '/v1/test-wait/200')).status).toBe(200);
  });
});

describe('CORS_ORIGINS=*', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer('pglite', { CORS_ORIGINS: '*' });
  });
  afterAll(() => srv?.close());

  it('allows every origin, never with credentials', async () => {
    const res = await fetch(`${srv.url}/v1/openapi.json`, { headers: { origin: 'https://anywhere.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });
});

describe('REQUIRE_HTTPS behind a proxy', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer('pglite', { REQUIRE_HTTPS: 'true', TRUST_PROXY: 'true' });
  });
  afterAll(() => srv?.close());

  it('refuses plain HTTP with 403, serves HTTPS (X-Forwarded-Proto) with HSTS, and leaves health probes alone', async () => {
    const tenant = await srv.newTenant();
    const api = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
    const plain = await api('GET', '/v1/patients');
    expect(plain.status).toBe(403);
    expect(plain.body.error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('HTTPS') });
    const https = await api('GET', '/v1/patients', { headers: { 'x-forwarded-proto': 'https' } });
    expect(https.status).toBe(200);
    expect(https.headers.get('strict-transport-security')).toMatch(/max-age=31536000/);
    expect((await fetch(`${srv.url}/health/live`)).status).toBe(200);
  });
});

describe('TLS', () => {
  let srv: TestServer;
  let cert: string;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebase-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    cert = (await import('node:fs')).readFileSync(join(dir, 'cert.pem'), 'utf8');
    srv = await startServer('pglite', { TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') });
  });
  afterAll(() => srv?.close());

  it('serves HTTPS with the configured certificate, with HSTS', async () => {
    expect(srv.url).toMatch(/^https:/);
    const res = await new Promise<{ status: number; hsts: unknown }>((resolve, reject) => {
      httpsRequest(`${srv.url}/health/live`, { ca: cert }, (r) => {
        r.resume();
        resolve({ status: r.statusCode!, hsts: r.headers['strict-transport-security'] });
      })
        .on('error', reject)
        .end();
    });
    expect(res).toEqual({ status: 200, hsts: expect.stringMatching(/max-age=31536000/) });
  });

  it('refuses a half or unreadable TLS configuration at start, naming the variable', () => {
    const base = { DATA_DIR: '/tmp/x' };
    expect(() => loadConfig({ ...base, TLS_CERT_FILE: '/nonexistent/cert.pem' })).toThrow(/TLS_KEY_FILE: TLS_CERT_FILE and TLS_KEY_FILE go together/);
    expect(() => loadConfig({ ...base, TLS_CERT_FILE: '/nonexistent/cert.pem', TLS_KEY_FILE: '/nonexistent/key.pem' })).toThrow(/TLS_CERT_FILE: cannot read \/nonexistent\/cert.pem \(ENOENT\)/);
  });
});

describe('edge settings', () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (e) {
      return (e as ConfigError).problems;
    }
    return [];
  };

  it('refuses malformed values at start, one line per problem naming the variable', () => {
    expect(problems({ CORS_ORIGINS: 'https://app.example.org/path' })).toEqual(['CORS_ORIGINS: origins are scheme://host[:port] without a path (got https://app.example.org/path)']);
    expect(problems({ CORS_ORIGINS: '*,https://app.example.org' })).toEqual(['CORS_ORIGINS: * allows every origin (without credentials); it cannot be combined with a list']);
    const several = problems({ JSON_MAX_DEPTH: '3', REQUEST_TIMEOUT_MS: 'soon', RATE_LIMIT_READ_POINTS: '0', ALERT_WEBHOOK_URL: 'ftp://alerts.example' });
    expect(several).toHaveLength(4);
    expect(several).toEqual(expect.arrayContaining([
      expect.stringMatching(/^JSON_MAX_DEPTH: /),
      expect.stringMatching(/^REQUEST_TIMEOUT_MS: /),
      expect.stringMatching(/^RATE_LIMIT_READ_POINTS: /),
      'ALERT_WEBHOOK_URL: must be an http(s) URL',
    ]));
  });

  it('reads TRUST_PROXY as a switch, a hop count or an address list', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
  });
});

describe('secrets from files (*_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'carebase-secrets-'));
  const file = (name: string, content: string) => {
    writeFileSync(join(dir, name), content);
    return join(dir, name);
  };

  it('reads a secret from its file, without the trailing newline', () => {
    const c = loadConfig({ METRICS_TOKEN_FILE: file('metrics', 'token-from-a-file-0123456789\n'), REDIS_URL_FILE: file('redis', 'redis://10.0.0.5:6379\n') });
    expect(c.metrics.token).toBe('token-from-a-file-0123456789');
    expect(c.redisUrl).toBe('redis://10.0.0.5:6379');
  });

  it('refuses both a variable and its file, or an unreadable file, one line per problem', () => {
    let err: unknown;
    try {
      loadConfig({ METRICS_TOKEN: 'x'.repeat(30), METRICS_TOKEN_FILE: file('m2', 'y'.repeat(30)), AUDIT_HMAC_KEY_FILE: join(dir, 'missing') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      `AUDIT_HMAC_KEY_FILE: cannot read ${join(dir, 'missing')} (ENOENT)`,
      'METRICS_TOKEN_FILE: set either METRICS_TOKEN or METRICS_TOKEN_FILE, not both',
    ]);
  });

  it('validates a secret read from a file like one from the environment', () => {
    expect(() => loadConfig({ AUDIT_HMAC_KEY_FILE: file('weak', 'c2hvcnQ=') })).toThrow(/AUDIT_HMAC_KEY must be base64 of at least 32 random bytes/);
  });
});
