// A write's audit record travels in its outbox row and the dispatcher stores it in a batch
// (migration 0014). Whichever of the two holds it, the trail shows it exactly once, exactly as
// signed: searches, the access log, erasure's count and verify; the dispatcher's batches keep
// outbox order and a batch's ten-minute span.
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { waitFor } from '../../../test/helpers/process.js';
import { asAdmin } from '../../../test/helpers/db.js';
import { client } from '../../../test/helpers/http.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { rowsOf } from '../../platform/db/db.js';
import { migrate } from '../../platform/db/migrate.js';
import { createPostgresDb } from '../../platform/db/postgres.js';
import { insertTenant } from '../tenants/tenants.service.js';
import { dispatchOnce } from '../events/dispatcher.js';
import { hmacMatches } from './audit-record.js';
import { countForPatient, recordsByTxid, searchTrail } from './audit-trail.sql.js';
import { sealTenant } from './sealer.js';
import { verifyTenant } from './verify.js';

/** Actors whose names are hard to carry through JSON inside JSON: each must come back byte for byte. */
const ACTORS = ['o\'brien "quoted" \\ back\\slash', 'Ünïcödé 日本語 🏥', 'null', '\\u0041 is not A', '[1,"x"]', ' spaced '];

describe.each(storageModes())('write audit records through the outbox on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(() => srv?.close());

  const outboxRecords = (tenant: string) =>
    srv.deps.db.withOwner((s) => s.query<{ n: number }>('select count(*)::int as n from outbox where tenant_id = $1 and audit is not null', [tenant]));
  const dispatched = (tenant: string) => waitFor(async () => (await outboxRecords(tenant))[0]!.n === 0, 10_000, () => 'the outbox dispatched');

  it('a record in its outbox row is found by every reader, once; after dispatch the same record is found in its batch', async () => {
    const tenant = await srv.newTenant();
    const patientId = randomUUID();
    const who = { tenantId: tenant, principal: { sub: 'writer', roles: new Set(['clinician']) }, requestId: randomUUID() };
    const element = srv.deps.audit.element(who, { action: 'update', resourceType: 'Patient', resourceId: patientId, patientId }, new Date());
    const id = JSON.parse(element)[1] as string;
    // Inside the writing transaction the dispatcher cannot take the row: every reader sees it there.
    const during = await srv.deps.db.tx(tenant, async (q) => {
      await q.execute(sql`insert into outbox (tenant_id, type, resource_type, resource_id, version, patient_id, occurred_at, audit)
        values (${tenant}, 'patient.updated', 'patients', ${patientId}, 2, ${patientId}::uuid, now(), ${element}::json)`);
      return {
        search: await searchTrail(q, tenant, { patientId }, { limit: 10 }),
        newest: await searchTrail(q, tenant, {}, { limit: 10, newestFirst: true }),
        count: await countForPatient(q, tenant, patientId),
        pending: await recordsByTxid(q, tenant, '0'),
      };
    });
    expect(during.search.map((r) => r.id)).toEqual([id]);
    expect(during.newest.map((r) => r.id)).toEqual([id]);
    expect(during.count).toBe(1);
    expect(during.pending.map((r) => r.id)).toEqual([id]);
    expect(hmacMatches(srv.deps.audit.key, during.search[0]!)).toBe(true);

    await dispatched(tenant);
    const after = await srv.deps.db.read(tenant, async (q) => ({
      search: await searchTrail(q, tenant, { patientId }, { limit: 10 }),
      count: await countForPatient(q, tenant, patientId),
    }));
    expect(after.search).toEqual(during.search);
    expect(after.count).toBe(1);
    const [batch] = await srv.deps.db.withOwner((s) => s.query<{ id: string; record_ids: string[] }>(
      'select id::text as id, record_ids::text[] as record_ids from audit_event_batches where tenant_id = $1', [tenant]));
    expect(batch).toEqual({ id, record_ids: [id] });
  });

  it('PATCHes by actors with awkward names: each record reads back exactly, in outbox order, and the sealed trail verifies', async () => {
    const tenant = await srv.newTenant();
    const admin = client(srv.url, await srv.token({ tenant, roles: ['admin'], sub: 'admin-1' }));
    const p = (await admin('POST', '/v1/patients', { body: patientInput() })).body as { id: string };
    for (const [i, sub] of ACTORS.entries()) {
      const api = client(srv.url, await srv.token({ tenant, roles: ['clinician'], sub }));
      const res = await api('PATCH', `/v1/patients/${p.id}`, { body: { phone: `+1 555 010 ${1000 + i}` }, headers: { 'if-match': `W/"${i + 1}"` } });
      expect(res.status).toBe(200);
    }
    const log = async () => ((await admin('GET', `/v1/patients/${p.id}/access-log?limit=100`)).body as { data: { action: string; actor: { sub: string } }[] }).data;
    const updates = async () => (await log()).filter((e) => e.action === 'update').map((e) => e.actor.sub);
    expect(new Set(await updates())).toEqual(new Set(ACTORS));
    await dispatched(tenant);
    expect(new Set(await updates())).toEqual(new Set(ACTORS));
    // One create and six updates, stored by the dispatcher in the order they were written.
    const batches = await srv.deps.db.withOwner((s) => s.query<{ actions: string[]; actors: string[] }>(
      `select array(select r->>5 from json_array_elements(records) r) as actions, array(select r->>3 from json_array_elements(records) r) as actors
       from audit_event_batches b where tenant_id = $1 and exists (select 1 from json_array_elements(records) r where r->>5 <> 'read') order by txid`, [tenant]));
    expect(batches.flatMap((b) => b.actions)).toEqual(['create', ...ACTORS.map(() => 'update')]);
    expect(batches.flatMap((b) => b.actors)).toEqual(['admin-1', ...ACTORS]);
    await srv.deps.audit.flush();
    await waitFor(async () => {
      await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date());
      const r = await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant);
      return !r.ok || r.pending === 0;
    }, 10_000, () => 'all sealed');
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, pending: 0 });
  });

  it('records written more than ten minutes apart go to separate batches (a batch spans at most ten minutes)', async () => {
    const tenant = await srv.newTenant();
    const who = { tenantId: tenant, principal: { sub: 'writer', roles: new Set(['clinician']) }, requestId: randomUUID() };
    const base = Math.floor(Date.now() / 600_000) * 600_000 - 3_600_000;
    const times = [base + 1_000, base + 2_000, base + 600_000 + 1_000];
    await srv.deps.db.tx(tenant, async (q) => {
      for (const t of times) {
        const element = srv.deps.audit.element(who, { action: 'update', resourceType: 'Patient', resourceId: randomUUID() }, new Date(t));
        await q.execute(sql`insert into outbox (tenant_id, type, resource_type, resource_id, version, occurred_at, audit)
          values (${tenant}, 'patient.updated', 'patients', ${randomUUID()}, 2, now(), ${element}::json)`);
      }
    });
    await dispatchOnce(srv.deps.db, 500);
    await dispatched(tenant);
    const counts = await srv.deps.db.read(tenant, async (q) =>
      rowsOf<{ n: number }>(await q.execute(sql`select record_count as n from audit_event_batches where tenant_id = ${tenant} order by first_id`)));
    expect(counts.map((c) => c.n)).toEqual([2, 1]);
  });
});

// Row-level security is forced on audit_event_batches, for its owner too, and the dispatcher runs
// as that owner with no tenant. A superuser owner (every other test) bypasses it; any other owner
// needs migration 0014's policy, or no event would ever be dispatched again.
describe.skipIf(!inject('postgresUrl'))('write audit records with a database owner that is not a superuser', () => {
  const admin = inject('postgresUrl')!;
  const suffix = randomBytes(4).toString('hex');
  const owner = `carebase_owner_${suffix}`;
  const database = `carebase_owned_${suffix}`;
  afterAll(async () => {
    await asAdmin(`drop database if exists ${database} with (force)`);
    await asAdmin(`drop role if exists ${owner}`);
  });

  it('migrates, and the dispatcher stores a write\'s record in a batch of its tenant', async () => {
    await asAdmin(`create role ${owner} login createrole nosuperuser nobypassrls`);
    await asAdmin(`create database ${database} owner ${owner}`);
    const url = new URL(admin);
    url.username = owner;
    url.password = '';
    url.pathname = `/${database}`;
    const db = await createPostgresDb({ url: url.toString(), poolSize: 2, connectTimeoutMs: 5000, statementTimeoutMs: 60_000 });
    try {
      await db.withOwner((s) => migrate(s));
      const [me] = await db.withOwner((s) => s.query<{ su: boolean }>('select rolsuper as su from pg_roles where rolname = current_user'));
      expect(me).toEqual({ su: false });
      const tenant = 'owned';
      await db.tx(tenant, (q) => insertTenant(q, tenant, tenant));
      const id = randomUUID();
      const element = JSON.stringify([tenant, id, new Date().toISOString(), 'writer', ['clinician'], 'update', 'Patient', null, null, 'success', 'r1', null, null, null, 'k1', 'aG1hYw']);
      await db.autocommit(tenant, (q) => q.execute(sql`insert into outbox (tenant_id, type, resource_type, resource_id, version, occurred_at, audit)
        values (${tenant}, 'patient.updated', 'patients', ${randomUUID()}, 2, now(), ${element}::json)`));
      expect((await dispatchOnce(db, 500)).map((e) => e.type)).toEqual(['patient.updated']);
      const batches = await db.read(tenant, async (q) =>
        rowsOf<{ ids: string[] }>(await q.execute(sql`select record_ids::text[] as ids from audit_event_batches where tenant_id = ${tenant}`)));
      expect(batches).toEqual([{ ids: [id] }]);
    } finally {
      await db.close();
    }
  });
});
