// Error tracking (SENTRY_DSN) against a fake Sentry endpoint on loopback: real requests through
// the real HTTP stack that fail inside (the patients table taken away in this server's own copy
// of the database, so the database's and drizzle's messages quote the request's values), with
// PHI in the body, the query string and the headers. Exactly one event per 500 arrives, with the
// exception type, route template and request id, and none of the PHI anywhere in what was sent;
// 4xx send nothing; crashes and shutdown are covered with child processes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantDirectory } from '../src/features/tenants/tenants.service.js';
import { createPgliteDb } from '../src/platform/db/pglite.js';
import { setErrorTracker, type ErrorTracker } from '../src/platform/error-tracking/index.js';
import { createSentryTracker } from '../src/platform/error-tracking/sentry.js';
import { WITHHELD } from '../src/platform/error-tracking/scrub.js';
import { startFakeSentry, type FakeSentry, type SentryEvent } from './helpers/fake-sentry.js';
import { client, expectError, type Client } from './helpers/http.js';
import { cleanupDirs, cliEnv, keyFileToken, killAll, migratedDataDir, procScope, ROOT, sleep } from './helpers/process.js';
import { startServer, type TestServer } from './helpers/server.js';

// A synthetic patient (Synthea), with an e-mail and a note added.
const SYNTHEA = fileURLToPath(new URL('../../shared/fixtures/synthea/synthea-5-patients.bundle.json', import.meta.url));
interface FhirPatient {
  resourceType: string;
  name: { family: string; given: string[] }[];
  birthDate: string;
  telecom: { value: string }[];
  identifier: { system?: string; value: string }[];
}
const source = (JSON.parse(readFileSync(SYNTHEA, 'utf8')) as { entry: { resource: FhirPatient }[] }).entry.map((e) => e.resource).find((r) => r.resourceType === 'Patient')!;
const ssn = source.identifier.find((i) => i.system === 'http://hl7.org/fhir/sid/us-ssn')!.value;
const PHI = {
  given: source.name[0]!.given[0]!,
  family: source.name[0]!.family,
  birthDate: source.birthDate,
  phone: source.telecom[0]!.value,
  ssn,
  email: 'yvone.private-inbox@phi-example.org',
  searchName: 'Xanthippe-Quillfeather',
  headerNote: 'diagnosed-with-rare-condition',
  cookie: 'session-cookie-7f3a9c',
};
const patientBody = () => ({
  name: { given: [PHI.given], family: PHI.family },
  birthDate: PHI.birthDate,
  gender: 'female',
  identifiers: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value: PHI.ssn }],
  email: PHI.email,
  phone: PHI.phone,
});
/** PHI headers sent with every request besides the token. */
const phiHeaders = { 'x-patient-note': PHI.headerNote, cookie: `sid=${PHI.cookie}` };

/** Every PHI value (and the token) that must not appear in anything sent to Sentry, case-insensitively. */
function leaks(raw: string, extra: string[] = []): string[] {
  const lower = raw.toLowerCase();
  const values = [...Object.values(PHI), PHI.ssn.replaceAll('-', ''), ...extra];
  return values.filter((v) => lower.includes(v.toLowerCase()));
}

/** The error event for one request (by its X-Request-ID tag). */
const eventFor = (events: SentryEvent[], requestId: string) => events.filter((e) => e.tags?.request_id === requestId);

/** Takes the patients table away as the owner: every patient query fails inside, quoting its parameters. */
const BREAK_PATIENTS = 'ALTER TABLE patients RENAME TO patients_offline';

describe('error tracking (Sentry) in the HTTP error handler', () => {
  let fake: FakeSentry;
  let srv: TestServer;
  let tracker: ErrorTracker;
  let api: Client;
  let token: string;
  /** What the handlers threw (seen by an onError hook): proves the messages did carry PHI. */
  const thrown: unknown[] = [];

  beforeAll(async () => {
    fake = await startFakeSentry();
    srv = await startServer('pglite', { SENTRY_DSN: fake.dsn, SENTRY_ENVIRONMENT: 'test', SENTRY_RELEASE: 'carebase@test' }, {
      beforeListen: (app) => {
        app.addHook('onError', async (_request, _reply, err) => {
          thrown.push(err);
        });
      },
    });
    const tenant = await srv.newTenant();
    token = await srv.token({ tenant, roles: ['clinician'], sub: 'dr-sentry' });
    api = client(srv.url, token);
    await srv.deps.db.withOwner((s) => s.exec(BREAK_PATIENTS));
  });

  afterAll(async () => {
    setErrorTracker(undefined);
    await tracker?.close(2000);
    await srv?.close();
    await fake?.close();
  });

  it('sends nothing while no tracker is installed (what serve does without SENTRY_DSN)', async () => {
    const res = await api('POST', '/v1/patients', { body: patientBody(), headers: phiHeaders });
    expectError(res, 500, 'INTERNAL');
    await sleep(300);
    expect(fake.envelopes).toHaveLength(0);
  });

  it('reports a 500 once, with type, route template, request id and tenant, and no PHI from the body or headers', async () => {
    tracker = await createSentryTracker(srv.deps.config.errorTracking!, srv.deps.log);
    setErrorTracker(tracker);
    thrown.length = 0;
    const requestId = 'sentry-create-0001';
    const res = await api('POST', '/v1/patients', { body: patientBody(), headers: { ...phiHeaders, 'x-request-id': requestId } });
    const body = expectError(res, 500, 'INTERNAL');
    expect(res.headers.get('x-request-id')).toBe(requestId);
    expect(body.requestId).toBe(requestId);

    const events = await fake.waitForEvents(1);
    await tracker.flush(2000);
    expect(fake.events()).toHaveLength(1);
    const [event] = eventFor(events, requestId);
    expect(event).toBeDefined();
    expect(event!.level).toBe('error');
    expect(event!.environment).toBe('test');
    expect(event!.release).toBe('carebase@test');
    expect(event!.transaction).toBe('POST /v1/patients');
    expect(event!.tags).toMatchObject({ method: 'POST', route: '/v1/patients', status_code: '500', error_code: 'INTERNAL', request_id: requestId, roles: 'clinician', 'db.sqlstate': '42P01' });
    expect(event!.tags!.tenant).toMatch(/^t-/);
    // The error and its cause (drizzle's query error wrapping the database's): types and frames, no messages.
    const values = event!.exception!.values;
    expect(values.length).toBeGreaterThanOrEqual(2);
    expect(values.at(-1)!.type).toBe('DrizzleQueryError');
    expect(values.at(-1)!.mechanism).toMatchObject({ type: 'carebase.http', handled: true });
    for (const v of values) {
      expect(v.value?.startsWith(WITHHELD)).toBe(true);
      for (const f of v.stacktrace?.frames ?? []) expect(Object.keys(f).every((k) => ['filename', 'abs_path', 'module', 'function', 'lineno', 'colno', 'in_app'].includes(k))).toBe(true);
    }
    expect(values.at(-1)!.stacktrace!.frames.some((f) => String(f.filename).includes('/src/features/patients/'))).toBe(true);
    // No user, request data, extra, breadcrumbs.
    for (const k of ['user', 'request', 'extra', 'breadcrumbs', 'modules']) expect(event).not.toHaveProperty(k);

    // Not vacuous: what the handler threw did quote the patient.
    const messages = thrown.map((e) => `${(e as Error).message} ${String((e as Error).cause)}`).join('\n');
    expect(leaks(messages).length).toBeGreaterThan(0);
    expect(messages).toMatch(/Failed query/);

    // Nothing of the request's PHI, the token, the header values or the error messages in any byte sent.
    const raw = fake.rawAll();
    expect(leaks(raw, [token, token.split('.')[1]!, 'Failed query', 'does not exist', 'insert into'])).toEqual([]);
  });

  it('reports a failed search without its query string', async () => {
    const before = fake.events().length;
    const requestId = 'sentry-search-0002';
    const res = await api('GET', `/v1/patients?name=${encodeURIComponent(PHI.searchName)}&birthDate=${PHI.birthDate}`, { headers: { ...phiHeaders, 'x-request-id': requestId } });
    expectError(res, 500, 'INTERNAL');
    const events = await fake.waitForEvents(before + 1);
    await tracker.flush(2000);
    expect(eventFor(fake.events(), requestId)).toHaveLength(1);
    const event = eventFor(events, requestId)[0]!;
    expect(event.tags).toMatchObject({ method: 'GET', route: '/v1/patients', request_id: requestId });
    expect(leaks(fake.rawAll(), [token, 'Failed query', 'name_tokens'])).toEqual([]);
  });

  it('reports a failed read by id with the route template, not the id', async () => {
    const before = fake.events().length;
    const id = '01900000-0000-7000-8000-00000000beef';
    const res = await api('GET', `/v1/patients/${id}`, { headers: { 'x-request-id': 'sentry-read-0003' } });
    expectError(res, 500, 'INTERNAL');
    const events = await fake.waitForEvents(before + 1);
    expect(eventFor(events, 'sentry-read-0003')[0]!.tags).toMatchObject({ route: '/v1/patients/:id' });
    expect(fake.rawAll()).not.toContain(id);
  });

  it('sends nothing for client errors (validation, unknown route, missing token, not found)', async () => {
    await tracker.flush(2000);
    const before = fake.envelopes.length;
    expectError(await api('POST', '/v1/patients', { body: { ...patientBody(), birthDate: 'not-a-date' }, headers: phiHeaders }), 400, 'VALIDATION_FAILED');
    expectError(await api('GET', `/v1/no-such-route?name=${PHI.searchName}`), 404, 'NOT_FOUND');
    expectError(await client(srv.url)('GET', '/v1/patients'), 401, 'UNAUTHENTICATED');
    expectError(await api('GET', '/v1/locations/01900000-0000-7000-8000-000000000001'), 404, 'NOT_FOUND');
    await tracker.flush(2000);
    await sleep(200);
    expect(fake.envelopes.length).toBe(before);
  });
});

describe('error tracking in the carebase process', () => {
  afterAll(async () => {
    await killAll();
    cleanupDirs();
  });

  it('refuses a malformed SENTRY_DSN at start (exit 2, naming it, without repeating it)', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const r = await cli.run(['serve'], cliEnv({ DATA_DIR: migratedDataDir(), SENTRY_DSN: 'https://sentry.example.org/not-a-project', SENTRY_SAMPLE_RATE: '2' }));
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.trim());
    expect(lines.filter((l) => /\bSENTRY_DSN\b/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /\bSENTRY_SAMPLE_RATE\b/.test(l))).toHaveLength(1);
    expect(r.stderr).not.toContain('sentry.example.org');
  });

  it('serve reports a 500 with no PHI, and a shutdown waits for a stalled Sentry at most ~2 s', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const fake = await startFakeSentry('42', 'k3y');
    onTestFinished(() => fake.close());
    const cli = procScope(onTestFinished);
    const dataDir = migratedDataDir();
    const tenant = 'sentry-e2e';
    const db = await createPgliteDb(join(dataDir, 'pg'));
    try {
      await createTenantDirectory(db).create(tenant, 'Sentry e2e');
      await db.withOwner((s) => s.exec(BREAK_PATIENTS));
    } finally {
      await db.close();
    }
    // A long shutdown deadline, so that only the flush bound can end a shutdown this early.
    const server = await cli.serve(dataDir, { SENTRY_DSN: fake.dsn, SEED_DEMO: 'false', LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '60000' });
    expect(server.proc.stdout()).toContain('error tracking on (Sentry)');
    const token = await keyFileToken(dataDir, { tenant, roles: ['staff'], sub: 'front-desk' });
    const api = client(server.url, token);

    const res = await api('POST', '/v1/patients', { body: patientBody(), headers: phiHeaders });
    expectError(res, 500, 'INTERNAL');
    const [event] = await fake.waitForEvents(1);
    expect(event!.tags).toMatchObject({ route: '/v1/patients', request_id: res.headers.get('x-request-id'), tenant, roles: 'staff' });
    expect(event!.environment).toBe('development');
    expect(event!.release).toMatch(/^carebase@\d+\.\d+\.\d+/);
    expect(fake.envelopes[0]!.path).toMatch(/^\/api\/42\/envelope\/\?.*sentry_key=k3y/);
    expect(leaks(fake.rawAll(), [token, 'Failed query'])).toEqual([]);

    // Sentry stops answering: the next report stays in flight, and SIGTERM still exits promptly.
    fake.stall();
    expectError(await api('GET', `/v1/patients?name=${PHI.searchName}`), 500, 'INTERNAL');
    await fake.waitForEvents(2);
    const t0 = Date.now();
    server.proc.child.kill('SIGTERM');
    const exit = await server.proc.exited;
    const elapsed = Date.now() - t0;
    expect(exit.code, server.proc.stderr()).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(1500); // it did wait for the report…
    expect(elapsed).toBeLessThan(10_000); // …for about FLUSH_TIMEOUT_MS (2 s), not until Sentry answers
    expect(leaks(fake.rawAll(), [token])).toEqual([]);
  });

  for (const mode of ['throw', 'reject'] as const) {
    it(`reports a crash (${mode === 'throw' ? 'uncaught exception' : 'unhandled rejection'}) before Node's own crash, without its message`, { timeout: 60_000 }, async ({ onTestFinished }) => {
      const fake = await startFakeSentry();
      onTestFinished(() => fake.close());
      const phi = `${PHI.given} ${PHI.family}`;
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/crash-child.ts'), mode, phi], {
        cwd: ROOT,
        env: cliEnv({ SENTRY_DSN: fake.dsn, LOG_LEVEL: 'warn' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      onTestFinished(() => void child.kill('SIGKILL'));
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      // Node's default behaviour is kept: the error on stderr (the operator's terminal), exit code 1.
      expect(code).toBe(1);
      expect(stderr).toContain(mode === 'throw' ? 'RangeError' : 'TypeError');
      const events = fake.events();
      expect(events).toHaveLength(1);
      expect(events[0]!.level).toBe('fatal');
      expect(events[0]!.tags).toEqual({ origin: mode === 'throw' ? 'uncaughtException' : 'unhandledRejection' });
      expect(events[0]!.exception!.values.at(-1)).toMatchObject({ type: mode === 'throw' ? 'RangeError' : 'TypeError', value: WITHHELD, mechanism: { handled: false } });
      expect(leaks(fake.rawAll(), ['cannot schedule', 'no record for'])).toEqual([]);
    });
  }
});
