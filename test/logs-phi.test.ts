// Logs never contain PHI or tokens, whatever the request does (creates, searches, patches,
// malformed and invalid input, unknown paths), and each request writes exactly one "request"
// line with the route template, status, duration, tenant, user and request id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, type Client, type Res } from './helpers/http.js';
import { parseLogs, requestLines, waitFor, type LogLine } from './helpers/logs.js';
import { startServer, storageModes, type TestServer } from './helpers/server.js';

const PHI = {
  given: 'Zebulonius',
  family: 'Quagmire-Thistlewood',
  birthDate: '1961-07-04',
  email: 'zebulonius.quagmire@phi-example.org',
  newEmail: 'zq.private-mailbox@phi-example.org',
  phone: '+1 555 867 5309',
  newPhone: '+1 555 246 8642',
  mrnSystem: 'urn:oid:2.16.840.1.113883.19.5',
  mrn: 'MRN-ZQ-9988776655',
  addressLine: '742 Evergreen Terrace Apt 3B',
  city: 'Shelbyvilleton',
};
/** The values that must never appear in a log line (compared case-insensitively). */
const FORBIDDEN = [PHI.given, PHI.family, PHI.birthDate, PHI.email, PHI.newEmail, PHI.phone, PHI.newPhone, PHI.mrn, PHI.addressLine, PHI.city, '867 5309', '8675309', 'Quagmire', 'Evergreen', '19610704', '07/04/1961'];

interface Sent {
  label: string;
  method: string;
  route: string;
  status: number;
  reqId: string;
  authenticated: boolean;
}

describe.each(storageModes())('logs carry no PHI on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  let token: string;
  let api: Client;
  let anon: Client;
  const sent: Sent[] = [];
  let firstLine = 0;

  /** Sends one request and records what its log line must say. */
  const send = async (label: string, expected: { status: number; route: string; authenticated?: boolean }, method: string, path: string, o: Parameters<Client>[2] = {}): Promise<Res> => {
    const res = await (expected.authenticated === false ? anon : api)(method, path, o);
    expect(res.status, `${label}: ${res.text.slice(0, 300)}`).toBe(expected.status);
    sent.push({ label, method, route: expected.route, status: expected.status, reqId: res.headers.get('x-request-id')!, authenticated: expected.authenticated !== false });
    return res;
  };

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    token = await srv.token({ tenant, roles: ['admin'], sub: 'phi-auditor' });
    api = client(srv.url, token);
    anon = client(srv.url);
    firstLine = srv.logs.length;

    const input = {
      name: { given: [PHI.given], family: PHI.family },
      birthDate: PHI.birthDate,
      gender: 'male',
      identifiers: [{ system: PHI.mrnSystem, value: PHI.mrn }],
      email: PHI.email,
      phone: PHI.phone,
      address: { line: [PHI.addressLine], city: PHI.city, state: 'IL', postalCode: '62701', country: 'US' },
    };
    const created = await send('create', { status: 201, route: '/v1/patients' }, 'POST', '/v1/patients', { body: input });
    const id = created.body.id as string;
    const item = '/v1/patients/:id';

    // Reads and searches whose query strings are PHI.
    await send('read', { status: 200, route: item }, 'GET', `/v1/patients/${id}`);
    const byName = await send('search name', { status: 200, route: '/v1/patients' }, 'GET', `/v1/patients?name=${encodeURIComponent(PHI.given)}`);
    expect(byName.body.data.map((p: { id: string }) => p.id)).toEqual([id]);
    await send('search full name', { status: 200, route: '/v1/patients' }, 'GET', `/v1/patients?name=${encodeURIComponent(`${PHI.given} ${PHI.family}`)}`);
    const byIdent = await send('search identifier', { status: 200, route: '/v1/patients' }, 'GET', `/v1/patients?identifier=${encodeURIComponent(`${PHI.mrnSystem}|${PHI.mrn}`)}`);
    expect(byIdent.body.data.length).toBe(1);
    await send('search bare identifier', { status: 200, route: '/v1/patients' }, 'GET', `/v1/patients?identifier=${encodeURIComponent(PHI.mrn)}`);
    await send('search birthDate', { status: 200, route: '/v1/patients' }, 'GET', `/v1/patients?birthDate=${PHI.birthDate}`);

    // Changes.
    await send('patch', { status: 200, route: item }, 'PATCH', `/v1/patients/${id}`, {
      body: { email: PHI.newEmail, phone: PHI.newPhone },
      headers: { 'if-match': 'W/"1"', 'content-type': 'application/merge-patch+json' },
    });
    await send('stale patch', { status: 412, route: item }, 'PATCH', `/v1/patients/${id}`, { body: { email: PHI.email }, headers: { 'if-match': 'W/"1"' } });
    await send('patch without If-Match', { status: 428, route: item }, 'PATCH', `/v1/patients/${id}`, { body: { email: PHI.email } });
    await send('patch with PHI in If-Match', { status: 400, route: item }, 'PATCH', `/v1/patients/${id}`, { body: { email: PHI.email }, headers: { 'if-match': PHI.family } });
    await send('patch producing an invalid patient', { status: 400, route: item }, 'PATCH', `/v1/patients/${id}`, { body: { birthDate: `${PHI.birthDate}T00:00`, email: `${PHI.given} at home` }, headers: { 'if-match': 'W/"2"' } });

    // Malformed bodies holding PHI.
    await send('invalid JSON', { status: 400, route: '/v1/patients' }, 'POST', '/v1/patients', {
      raw: `{"name":{"given":["${PHI.given}"],"family":"${PHI.family}"},"birthDate":"${PHI.birthDate}","email":"${PHI.email}"`,
      headers: { 'content-type': 'application/json' },
    });
    await send('invalid merge patch JSON', { status: 400, route: item }, 'PATCH', `/v1/patients/${id}`, {
      raw: `{"phone": "${PHI.phone}", "address": {"line": ["${PHI.addressLine}"]`,
      headers: { 'content-type': 'application/merge-patch+json', 'if-match': 'W/"2"' },
    });
    await send('text body', { status: 415, route: '/v1/patients' }, 'POST', '/v1/patients', { raw: `${PHI.given} ${PHI.family} ${PHI.birthDate}`, headers: { 'content-type': 'text/plain' } });
    await send('xml body', { status: 415, route: '/v1/patients' }, 'POST', '/v1/patients', { raw: `<name>${PHI.family}</name>`, headers: { 'content-type': 'application/xml' } });

    // Validation failures whose input is PHI.
    await send('invalid fields', { status: 400, route: '/v1/patients' }, 'POST', '/v1/patients', {
      body: { ...input, birthDate: `${PHI.given}-${PHI.birthDate}`, email: `${PHI.family} (no at sign)`, phone: `call ${PHI.phone}`, gender: PHI.given, [PHI.family]: PHI.mrn },
    });
    await send('future birth date', { status: 400, route: '/v1/patients' }, 'POST', '/v1/patients', { body: { ...input, birthDate: '2999-07-04' } });
    await send('bad identifier system', { status: 400, route: '/v1/patients' }, 'POST', '/v1/patients', { body: { ...input, identifiers: [{ system: `${PHI.addressLine}`, value: PHI.mrn }] } });
    await send('query validation', { status: 400, route: '/v1/patients' }, 'GET', `/v1/patients?birthDate=${encodeURIComponent(PHI.family)}&${encodeURIComponent(PHI.given)}=${encodeURIComponent(PHI.mrn)}`);
    await send('empty identifier value', { status: 400, route: '/v1/patients' }, 'GET', `/v1/patients?identifier=${encodeURIComponent(`${PHI.mrn}|`)}`);
    await send('path validation', { status: 400, route: item }, 'GET', `/v1/patients/${encodeURIComponent(PHI.family)}`);

    // 404s: unknown paths that carry PHI, and a missing resource.
    await send('unknown path', { status: 404, route: '(unmatched)', authenticated: false }, 'GET', `/v1/people/${encodeURIComponent(`${PHI.given} ${PHI.family}`)}/${PHI.birthDate}`);
    await send('unknown path with query', { status: 404, route: '(unmatched)', authenticated: false }, 'GET', `/v1/lookup?email=${encodeURIComponent(PHI.email)}&mrn=${PHI.mrn}`);
    await send('wrong method', { status: 405, route: '(unmatched)', authenticated: false }, 'PUT', `/v1/patients/${id}`, { body: { email: PHI.email } });
    await send('missing patient', { status: 404, route: item }, 'GET', '/v1/patients/0192f3c4-0000-7000-8000-000000000000');

    // Unauthenticated attempts, a token in the wrong place, and the delete.
    await send('no token', { status: 401, route: '/v1/patients', authenticated: false }, 'GET', `/v1/patients?name=${PHI.family}`);
    await send('bad token', { status: 401, route: '/v1/patients', authenticated: false }, 'GET', '/v1/patients', { headers: { authorization: `Bearer ${token.slice(0, -6)}AAAAAA` } });
    await send('token in query', { status: 400, route: '/v1/patients' }, 'GET', `/v1/patients?access_token=${token}`);
    await send('delete', { status: 204, route: item }, 'DELETE', `/v1/patients/${id}`, { headers: { 'if-match': 'W/"2"' } });
    await send('read deleted', { status: 404, route: item }, 'GET', `/v1/patients/${id}`);

    // The last request's line is written after its response: wait for all of them.
    await waitFor(() => requestLines(srv.logs.slice(firstLine)).length >= sent.length, 5000, 'request lines');
    await new Promise((r) => setTimeout(r, 100)); // any extra line would show up now
  });
  afterAll(() => srv?.close());

  it('none of the PHI values appears in any log line (case-insensitive)', () => {
    expect(sent.length).toBeGreaterThanOrEqual(30);
    const leaks: string[] = [];
    for (const line of srv.logs) {
      const lower = line.toLowerCase();
      for (const v of FORBIDDEN) if (lower.includes(v.toLowerCase())) leaks.push(`${v} in ${line}`);
    }
    expect(leaks).toEqual([]);
  });

  it('no log line contains the token or any part of it', () => {
    const [header, payload, signature] = token.split('.');
    for (const line of srv.logs) {
      expect(line).not.toContain(token);
      expect(line).not.toContain(payload!);
      expect(line).not.toContain(signature!.slice(0, 20));
      expect(line).not.toMatch(/bearer/i);
      expect(line).not.toMatch(/authorization/i);
    }
    expect(header).toBeDefined();
  });

  it('no log line holds a URL, query string, body or headers', () => {
    for (const l of parseLogs(srv.logs)) {
      for (const key of ['url', 'query', 'body', 'headers', 'req', 'res', 'params']) expect(l, JSON.stringify(l)).not.toHaveProperty(key);
      expect(JSON.stringify(l)).not.toMatch(/[?&](name|identifier|email|mrn|birthDate)=/);
    }
  });

  it('exactly one "request" line per request, with method, route template, status, durationMs, tenant, user and reqId', () => {
    const lines = requestLines(srv.logs.slice(firstLine));
    expect(lines.length).toBe(sent.length);
    const byId = new Map<string, LogLine[]>();
    for (const l of lines) byId.set(l.reqId!, [...(byId.get(l.reqId!) ?? []), l]);
    for (const s of sent) {
      const mine = byId.get(s.reqId) ?? [];
      expect(mine.length, `${s.label}: lines for ${s.reqId}`).toBe(1);
      const l = mine[0]!;
      expect(l, s.label).toMatchObject({ level: 'info', method: s.method, route: s.route, status: s.status, reqId: s.reqId });
      expect(typeof l.durationMs, s.label).toBe('number');
      expect(l.durationMs as number, s.label).toBeGreaterThanOrEqual(0);
      expect(typeof l.time, s.label).toBe('string');
      if (s.authenticated) expect(l, s.label).toMatchObject({ tenant, user: 'phi-auditor' });
      else {
        expect(l, s.label).not.toHaveProperty('tenant');
        expect(l, s.label).not.toHaveProperty('user');
      }
      if (s.status >= 400) expect(l.errorCode, s.label).toEqual(expect.any(String));
      else expect(l, s.label).not.toHaveProperty('errorCode');
    }
  });

  it('routes are templates, never concrete paths', () => {
    for (const l of requestLines(srv.logs)) {
      expect(String(l.route)).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
      expect(String(l.route)).not.toContain('?');
    }
  });

  it('every line of a request carries its request id', () => {
    const ids = new Set(sent.map((s) => s.reqId));
    for (const l of parseLogs(srv.logs.slice(firstLine))) {
      // Component lines (the cache adapter's connection warnings) are process-wide, not per request.
      if ('cache' in l) continue;
      if (l.msg === 'request' || l.level === 'error' || l.level === 'warn') expect(ids.has(l.reqId!), JSON.stringify(l)).toBe(true);
    }
  });
});
