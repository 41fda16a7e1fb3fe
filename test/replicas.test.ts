// Read replicas (DATABASE_READ_URLS): list pages (patients, questionnaires, responses…) come from a
// replica, a user who just wrote reads the primary (read-your-writes), reads by id and writes never
// touch a replica, a replica that fails is answered for by the primary, and each replica is a
// dependency in /v1/admin/health.
//
// The "replica" is a second migrated database that a second server writes to: it holds what the
// primary does not, so every answer shows where it was read from. (Physical replication would
// copy the primary; the routing is what is under test here.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownDatabase, type OwnDatabase } from './helpers/db.js';
import { simpleQuestionnaire } from './helpers/questionnaires.js';
import { client } from './helpers/http.js';
import { startServer, storageModes, type TestServer } from './helpers/server.js';
import { tcpProxy } from './helpers/tcp-proxy.js';

const patient = (family: string) => ({ name: { given: ['Rhea'], family }, birthDate: '1990-04-01', gender: 'female' });
const families = (r: { body: { data: { name: { family: string } }[] } }) => r.body.data.map((p) => p.name.family).sort();

describe.runIf(storageModes().includes('postgres'))('read replicas', () => {
  let replica: OwnDatabase;
  let proxy: Awaited<ReturnType<typeof tcpProxy>>;
  let srv: TestServer;
  let other: TestServer;
  let onReplica: TestServer;
  let tenant: string;

  beforeAll(async () => {
    replica = await ownDatabase();
    await replica.migrate();
    // The replica is reached through a proxy the test can cut; the second entry never answers.
    const viaProxy = new URL(replica.url);
    proxy = await tcpProxy(Number(viaProxy.port || 5432));
    viaProxy.port = String(proxy.port);
    const env = { DATABASE_READ_URLS: `${viaProxy},postgres://carebase@127.0.0.1:1/none`, DATABASE_READ_AFTER_WRITE_SECONDS: '1', DATABASE_CONNECT_TIMEOUT_MS: '500' };
    // Two instances: read-your-writes holds across them (through Redis).
    [srv, other] = await Promise.all([startServer('postgres', env), startServer('postgres', env)]);
    onReplica = await startServer('postgres', { DATABASE_URL: replica.url });
    tenant = await srv.newTenant();
    await onReplica.deps.tenants.create(tenant, 'on the replica');
    const seeded = await client(onReplica.url, await onReplica.token({ tenant, roles: ['clinician'], sub: 'seeder' }))('POST', '/v1/patients', { body: patient('Replicated') });
    expect(seeded.status).toBe(201);
    const manager = client(onReplica.url, await onReplica.token({ tenant, roles: ['manager'], sub: 'seeder' }));
    const form = await manager('POST', '/v1/questionnaires', { body: simpleQuestionnaire({ title: 'Replicated form' }) });
    expect(form.status).toBe(201);
    expect((await manager('PATCH', `/v1/questionnaires/${form.body.id}`, { body: { status: 'active' }, headers: { 'if-match': 'W/"1"' } })).status).toBe(200);
    const started = await manager('POST', '/v1/questionnaire-responses', { body: { questionnaireId: form.body.id, patientId: seeded.body.id } });
    expect(started.status, started.text).toBe(201);
  });
  afterAll(async () => {
    await Promise.all([srv?.close(), other?.close(), onReplica?.close()]);
    await proxy?.close();
    await replica?.drop();
  });

  it('lists questionnaires and responses from a replica too', async () => {
    const manager = client(srv.url, await srv.token({ tenant, roles: ['manager'], sub: 'form-writer' }));
    expect((await manager('POST', '/v1/questionnaires', { body: simpleQuestionnaire({ title: 'Primary form' }) })).status).toBe(201);
    const reader = client(srv.url, await srv.token({ tenant, roles: ['manager'], sub: 'form-reader' }));
    const titles = async (api: typeof reader) => (await api('GET', '/v1/questionnaires')).body.data.map((q: { title: string }) => q.title);
    expect(await titles(reader)).toEqual(['Replicated form']);
    expect(await titles(manager)).toEqual(['Primary form']);
    // The only response is the replica's (the primary has none).
    const responses = await reader('GET', '/v1/questionnaire-responses');
    expect(responses.body.data.map((r: { status: string }) => r.status)).toEqual(['in-progress']);
  });

  it('lists from a replica, except for a user who just wrote; reads by id and writes go to the primary', async () => {
    const writer = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'writer' }));
    const reader = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'reader' }));
    const created = await writer('POST', '/v1/patients', { body: patient('Primary') });
    expect(created.status).toBe(201);

    expect(families(await reader('GET', '/v1/patients'))).toEqual(['Replicated']);
    expect(families(await writer('GET', '/v1/patients'))).toEqual(['Primary']);
    if (srv.deps.config.redisUrl) {
      const writerElsewhere = client(other.url, await other.token({ tenant, roles: ['clinician'], sub: 'writer' }));
      expect(families(await writerElsewhere('GET', '/v1/patients'))).toEqual(['Primary']);
    }
    expect((await reader('GET', `/v1/patients/${created.body.id}`)).status).toBe(200);
    // The writer's window (1 s here) ends: its lists come from the replica again.
    await new Promise((r) => setTimeout(r, 1200));
    expect(families(await writer('GET', '/v1/patients'))).toEqual(['Replicated']);
    // A failed write (412) does not count as one.
    const stale = await writer('PATCH', `/v1/patients/${created.body.id}`, { body: { active: false }, headers: { 'if-match': 'W/"9"' } });
    expect(stale.status).toBe(412);
    expect(families(await writer('GET', '/v1/patients'))).toEqual(['Replicated']);
  });

  it('reports each replica in /v1/admin/health, the unreachable one as down (degraded, not down)', async () => {
    const admin = client(srv.url, await srv.token({ tenant, roles: ['admin'] }));
    // A status changes after two checks that agree.
    await admin('GET', '/v1/admin/health');
    const r = await admin('GET', '/v1/admin/health');
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('degraded');
    const byName = Object.fromEntries(r.body.dependencies.map((d: { name: string }) => [d.name, d]));
    expect(byName['postgresql']).toMatchObject({ status: 'ok', required: true });
    expect(byName['postgresql-replica-1']).toMatchObject({ status: 'ok', required: false, lastError: null, latencyMs: expect.any(Number) });
    expect(byName['postgresql-replica-2']).toMatchObject({ status: 'down', required: false, lastError: expect.stringMatching(/\S/) });
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toMatch(/^db_replicas_usable 1$/m);
    expect(metrics).toMatch(/^db_replica_lag_seconds_max 0$/m);
    // No replica URL (it may hold credentials) in the report; connection errors name host and port.
    expect(JSON.stringify(r.body)).not.toMatch(/postgres(ql)?:\/\/|carebase@/);
  });

  it('a replica that goes away is answered for by the primary, and comes back once it answers', async () => {
    const reader = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub: 'reader-2' }));
    expect(families(await reader('GET', '/v1/patients'))).toEqual(['Replicated']);
    await proxy.cut();
    const during = await reader('GET', '/v1/patients');
    expect(during.status).toBe(200);
    expect(families(during)).toContain('Primary');
    await proxy.restore();
    // The next check finds it well again (a health check runs one now).
    await client(srv.url, await srv.token({ tenant, roles: ['admin'] }))('GET', '/v1/admin/health');
    expect(families(await reader('GET', '/v1/patients'))).toEqual(['Replicated']);
  });
});
