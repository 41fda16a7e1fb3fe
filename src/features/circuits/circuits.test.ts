// GET /v1/admin/circuits and PUT /v1/admin/circuits/{name} on a real server: roles, 404, 400,
// forcing the alert webhook's circuit open and back, the state and counts at /metrics, the
// operator's log line; and, with PostgreSQL + Redis, a forced-open made on one server refused on
// another. Each server gets its own CIRCUIT_SCOPE so suites running at the same time on the same
// Redis never see each other's circuits.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { AppError } from '../../errors.js';
import { createCircuitRegistry, createRedisCircuitStore, UpstreamUnavailable } from '../../platform/circuit/index.js';
import { createLogger } from '../../platform/log.js';
import { setCircuitMode } from './circuits.service.js';

const OPERATORS = `ops-${randomBytes(4).toString('hex')}`;
const env = (scope: string) => ({ ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/hook', CIRCUIT_SCOPE: scope, CIRCUIT_OPERATOR_TENANTS: OPERATORS });
/** The operator tenant, created on the server (idempotent: servers may share a database). */
async function operatorTenant(srv: TestServer): Promise<string> {
  await srv.deps.tenants.create(OPERATORS, 'Operators');
  return OPERATORS;
}
const scope = () => `test-${randomBytes(6).toString('hex')}`;

async function metric(srv: TestServer, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe.each(storageModes())('/v1/admin/circuits on %s', (mode) => {
  let srv: TestServer;
  let admin: Client;
  let manager: Client;
  let clinician: Client;
  let tenantAdmin: Client;
  beforeAll(async () => {
    srv = await startServer(mode, env(scope()));
    const tenant = await operatorTenant(srv);
    admin = client(srv.url, await srv.token({ tenant, roles: ['admin'], sub: 'ops-admin' }));
    tenantAdmin = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['admin'], sub: 'clinic-admin' }));
    manager = client(srv.url, await srv.token({ tenant, roles: ['manager'] }));
    clinician = client(srv.url, await srv.token({ tenant, roles: ['clinician'] }));
  });
  afterAll(() => srv?.close());

  it('lists each circuit to admins and managers; refuses clinicians (403) and anonymous callers (401)', async () => {
    const r = await admin('GET', '/v1/admin/circuits');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toEqual({
      shared: mode === 'postgres' && srv.deps.config.redisUrl !== undefined,
      circuits: [
        {
          name: 'alert-webhook',
          state: 'closed',
          mode: 'auto',
          since: expect.any(String),
          openUntil: null,
          lastFailure: null,
          lastFailureAt: null,
          failures: { consecutive: 0, total: 0 },
          rejections: 0,
          forcedBy: null,
        },
      ],
    });
    expect((await manager('GET', '/v1/admin/circuits')).status).toBe(200);
    expectError(await clinician('GET', '/v1/admin/circuits'), 403, 'FORBIDDEN');
    expectError(await client(srv.url)('GET', '/v1/admin/circuits'), 401, 'UNAUTHENTICATED');
  });

  it("PUT: an admin of a tenant that is not an operator tenant is refused (403): a circuit stops the upstream for every tenant", async () => {
    expect((await tenantAdmin('GET', '/v1/admin/circuits')).status).toBe(200);
    expectError(await tenantAdmin('PUT', '/v1/admin/circuits/alert-webhook', { body: { mode: 'forced-open' } }), 403, 'FORBIDDEN');
    expect((await admin('GET', '/v1/admin/circuits')).body.circuits[0].mode).toBe('auto');
  });

  it('PUT: operator admins only; unknown circuit 404; a bad body 400 with every problem', async () => {
    expectError(await manager('PUT', '/v1/admin/circuits/alert-webhook', { body: { mode: 'forced-open' } }), 403, 'FORBIDDEN');
    expectError(await clinician('PUT', '/v1/admin/circuits/alert-webhook', { body: { mode: 'forced-open' } }), 403, 'FORBIDDEN');
    expectError(await admin('PUT', '/v1/admin/circuits/no-such-upstream', { body: { mode: 'forced-open' } }), 404, 'NOT_FOUND');
    const bad = expectError(await admin('PUT', '/v1/admin/circuits/alert-webhook', { body: { mode: 'open', extra: true } }), 400, 'VALIDATION_FAILED');
    expect(bad.details!.map((d) => d.path).sort()).toEqual(['/extra', '/mode']);
    expect(expectError(await admin('PUT', '/v1/admin/circuits/alert-webhook', { body: {} }), 400, 'VALIDATION_FAILED').details).toHaveLength(1);
    expectError(await admin('PUT', '/v1/admin/circuits/alert-webhook', { raw: '{"mode":', headers: { 'content-type': 'application/json' } }), 400, 'MALFORMED_REQUEST');
    expect((await admin('GET', '/v1/admin/circuits')).body.circuits[0].mode).toBe('auto'); // nothing changed
  });

  it('forced open: calls refused (counted), state 3 at /metrics, who did it logged; back to auto: closed again', async () => {
    const forced = await admin('PUT', '/v1/admin/circuits/alert-webhook', { body: { mode: 'forced-open' } });
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({ name: 'alert-webhook', state: 'forced-open', mode: 'forced-open', forcedBy: 'ops-admin', openUntil: null });
    const circuit = srv.deps.circuits.get('alert-webhook')!;
    const refused = await circuit.execute(async () => 'posted').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UpstreamUnavailable);
    expect(refused).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503, reason: 'forced-open' });
    expect(await metric(srv, 'circuit_breaker_state{circuit="alert-webhook"}')).toBe(3);
    expect(await metric(srv, 'circuit_breaker_rejections_total{circuit="alert-webhook"}')).toBe(1);
    expect(await metric(srv, 'circuit_breaker_failures_total{circuit="alert-webhook"}')).toBe(0);
    const logged = srv.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'circuit mode changed by an operator');
    expect(logged).toMatchObject({ circuit: 'alert-webhook', mode: 'forced-open', sub: 'ops-admin' });

    const auto = await admin('PUT', '/v1/admin/circuits/alert-webhook', { body: { mode: 'auto' } });
    expect(auto.body).toMatchObject({ state: 'closed', mode: 'auto', forcedBy: null, rejections: 1 });
    expect(await metric(srv, 'circuit_breaker_state{circuit="alert-webhook"}')).toBe(0);
  });
});

describe.runIf(storageModes().includes('postgres') && inject('redisUrl'))('forced open across two servers (PostgreSQL + Redis)', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const shared = env(scope());
    [a, b] = await Promise.all([startServer('postgres', shared), startServer('postgres', shared)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('an admin forcing a circuit open on one server stops the calls of the other, until set back to auto there', async () => {
    const tenant = await operatorTenant(a);
    const token = await a.token({ tenant, roles: ['admin'], sub: 'ops-admin' });
    const onA = client(a.url, token);
    const onB = client(b.url, await b.token({ tenant, roles: ['admin'], sub: 'other-admin' }));
    expect((await onA('PUT', '/v1/admin/circuits/alert-webhook', { body: { mode: 'forced-open' } })).status).toBe(200);
    expect((await onB('GET', '/v1/admin/circuits')).body).toMatchObject({ shared: true, circuits: [{ name: 'alert-webhook', state: 'forced-open', forcedBy: 'ops-admin' }] });
    let posted = 0;
    await expect(b.deps.circuits.get('alert-webhook')!.execute(async () => ++posted)).rejects.toMatchObject({ reason: 'forced-open' });
    expect(posted).toBe(0);
    expect(await metric(b, 'circuit_breaker_state{circuit="alert-webhook"}')).toBe(3);
    expect((await onB('PUT', '/v1/admin/circuits/alert-webhook', { body: { mode: 'auto' } })).body).toMatchObject({ state: 'closed', mode: 'auto' });
    expect((await onA('GET', '/v1/admin/circuits')).body.circuits[0]).toMatchObject({ state: 'closed', mode: 'auto' });
    await expect(a.deps.circuits.get('alert-webhook')!.execute(async () => ++posted)).resolves.toBe(1);
  });
});

describe('forcing a circuit while Redis is unreachable', () => {
  it('is 503 SERVICE_UNAVAILABLE with Retry-After, and changes nothing (applying it on one instance alone would mislead)', async () => {
    const circuits = createCircuitRegistry({
      store: createRedisCircuitStore({ url: 'redis://127.0.0.1:1', scope: scope() }),
      log: createLogger('silent'),
      defaults: { failureThreshold: 3, halfOpenAfterMs: 1000, timeoutMs: 100, retries: 0, retryDelayMs: 1, retryMaxDelayMs: 5 },
    });
    try {
      circuits.define('ehr');
      const admin = { sub: 'ops-admin', tenantId: 't-ops', roles: new Set(['admin'] as const) };
      const err = await setCircuitMode(admin, circuits, ['t-ops'], 'ehr', 'forced-open').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503, headers: { 'Retry-After': '5' } });
      expect((await circuits.views())[0]).toMatchObject({ state: 'closed', mode: 'auto' });
    } finally {
      await circuits.close();
    }
  });
});
