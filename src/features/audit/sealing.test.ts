// Sealing audit records into the per-tenant chain of seals: ranges of finished transactions,
// order, batches, late commits, concurrent sealers, a sealing pass over tenants (the audit.seal job's); and that the
// application role cannot change or remove audit rows (grants), nor can the owner while the
// triggers are on.
import { randomUUID } from 'node:crypto';
import { asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { clientAs, startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { waitFor } from '../../../test/helpers/process.js';
import { pgError } from '../../platform/db/errors.js';
import { createLogger } from '../../platform/log.js';
import { asColumnsJson } from './audit-record.js';
import { auditSeals, auditTrail } from './audit.table.js';
import { createAuditor } from './auditor.js';
import { digestOf, FIRST_TXID, genesisOf, sealHash } from './chain.js';
import { listTenantIds, sealPendingRecords, sealTenant } from './sealer.js';
import { verifyTenant } from './verify.js';

/** Creates, reads and updates a patient: a few audit records, all written when this returns. */
async function activity(srv: TestServer, tenant: string, patients = 2): Promise<void> {
  const api = await clientAs(srv, tenant, 'clinician');
  for (let i = 0; i < patients; i++) {
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    expect(p.status).toBe(201);
    expect((await api('GET', `/v1/patients/${p.body.id}`)).status).toBe(200);
    expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: '+1 555 010 9999' }, headers: { 'if-match': 'W/"1"' } })).status).toBe(200);
  }
  await srv.deps.audit.flush();
}

const chainOf = (srv: TestServer, tenant: string) =>
  srv.deps.db.read(tenant, (q) => q.select().from(auditSeals).where(eq(auditSeals.tenantId, tenant)).orderBy(asc(auditSeals.position)));
/** The tenant's records in sealing order: by writing transaction, then id. */
const eventsOf = (srv: TestServer, tenant: string) =>
  srv.deps.db.read(tenant, (q) => q.select().from(auditTrail).where(eq(auditTrail.tenantId, tenant)).orderBy(asc(auditTrail.txid), asc(auditTrail.id)));
const sealedIds = async (srv: TestServer, tenant: string) => (await chainOf(srv, tenant)).flatMap((c) => c.eventIds);

/**
 * Seals until every record written so far is sealed. On PostgreSQL other test files run
 * transactions at the same time, and a seal stops below the oldest transaction still running, so
 * one call may leave some records for a moment.
 */
async function sealAll(srv: TestServer, tenant: string, batch?: number): Promise<number> {
  const total = (await eventsOf(srv, tenant)).length;
  let head = 0;
  await waitFor(async () => {
    head = (await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), batch ? { batch } : {})).head || head;
    return (await sealedIds(srv, tenant)).length === total;
  }, 10_000, () => `all ${total} records of ${tenant} sealed`);
  return head;
}

/** An authentic record (signed with the server's key) that occurred at `at`. */
async function recordAt(srv: TestServer, tenant: string, at: Date): Promise<void> {
  await srv.deps.audit.record({ tenantId: tenant, principal: { sub: 'late-writer', roles: new Set(['clinician']) }, requestId: randomUUID() }, { action: 'read', resourceType: 'Patient', resourceId: randomUUID() }, at);
  await srv.deps.audit.flush();
}

describe.each(storageModes())('audit sealing on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(() => srv?.close());

  it('seals every record once, in (transaction, id) order, into seals whose ranges tile the history and whose hashes recompute', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant);
    const events = await eventsOf(srv, tenant);
    expect(events.length).toBeGreaterThanOrEqual(6);
    const head = await sealAll(srv, tenant);
    const chain = await chainOf(srv, tenant);
    expect(chain.map((c) => c.position)).toEqual(chain.map((_, i) => i + 1));
    expect(head).toBe(chain.length);
    expect(chain.flatMap((c) => c.eventIds)).toEqual(events.map((e) => e.id));
    let prev = genesisOf(tenant);
    let prevTo = FIRST_TXID;
    for (const c of chain) {
      expect(c.fromTxid).toBe(prevTo);
      expect(BigInt(c.toTxid)).toBeGreaterThan(BigInt(c.fromTxid));
      const mine = events.filter((e) => c.eventIds.includes(e.id));
      for (const e of mine) expect(BigInt(e.txid) >= BigInt(c.fromTxid) && BigInt(e.txid) < BigInt(c.toTxid)).toBe(true);
      expect(c.digest).toBe(digestOf(mine));
      expect(c.hash).toBe(sealHash(srv.deps.audit.key, prev, { position: c.position, fromTxid: c.fromTxid, toTxid: c.toTxid, count: c.eventIds.length, digest: c.digest }));
      prev = c.hash;
      prevTo = c.toTxid;
    }
    // Nothing left: another call appends no seal.
    expect(await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date())).toMatchObject({ sealed: 0, head: chain.length });
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toEqual({
      ok: true, tenantId: tenant, checked: events.length, sealed: events.length, pending: 0, head: { position: chain.length, hash: prev },
    });
  });

  // PGlite runs one transaction at a time, so nothing can commit while another is open there.
  it.skipIf(mode === 'pglite')('never seals past a transaction still running; once it commits, its record is sealed before later ones (a late commit is not lost)', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 1);
    await sealAll(srv, tenant);
    const record = srv.deps.audit.sign({ tenantId: tenant, principal: { sub: 'slow-writer', roles: new Set(['clinician']) }, requestId: randomUUID() }, { action: 'read', resourceType: 'Patient', resourceId: randomUUID() }, new Date());
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let wrote!: () => void;
    const written = new Promise<void>((r) => (wrote = r));
    const slow = srv.deps.db.tx(tenant, async (q) => {
      await q.execute(sql`insert into audit_events (tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id, patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac)
        select tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id, patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac
        from jsonb_populate_record(null::audit_events, ${JSON.stringify(asColumnsJson(record))}::jsonb)`);
      wrote();
      await held;
    });
    try {
      await written;
      const sealedBefore = new Set(await sealedIds(srv, tenant));
      // Records that commit while the slow transaction is open...
      await activity(srv, tenant, 1);
      const later = (await eventsOf(srv, tenant)).filter((e) => !sealedBefore.has(e.id));
      expect(later.length).toBeGreaterThan(0);
      // ...are not sealed yet: a seal stops below the oldest transaction still running.
      await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date());
      const sealedDuring = new Set(await sealedIds(srv, tenant));
      expect(later.filter((e) => sealedDuring.has(e.id))).toEqual([]);
    } finally {
      release();
      await slow;
    }
    await sealAll(srv, tenant);
    const ids = await sealedIds(srv, tenant);
    expect(ids).toContain(record.id);
    // In write order: the slow transaction's record comes before those committed while it was open.
    const events = await eventsOf(srv, tenant);
    expect(ids).toEqual(events.map((e) => e.id));
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, pending: 0, sealed: events.length });
  });

  it('a record that lands long after it occurred (a retried flush) is sealed with its transaction', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 1);
    const head = await sealAll(srv, tenant);
    await recordAt(srv, tenant, new Date(Date.now() - 60 * 60_000));
    expect(await sealAll(srv, tenant)).toBe(head + 1);
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, pending: 0 });
  });

  it('seals in batches without splitting a transaction: a backlog larger than the batch takes several seals', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 2);
    const n = (await eventsOf(srv, tenant)).length;
    await sealAll(srv, tenant, 2);
    const chain = await chainOf(srv, tenant);
    expect(chain.length).toBeGreaterThan(1);
    expect(chain.reduce((s, c) => s + c.eventIds.length, 0)).toBe(n);
    // The read records of one flush share a transaction: no transaction's records are in two seals.
    const events = await eventsOf(srv, tenant);
    const sealOf = new Map(chain.flatMap((c) => c.eventIds.map((id) => [id, c.position] as const)));
    const byTx = new Map<string, Set<number>>();
    for (const e of events) byTx.set(e.txid, (byTx.get(e.txid) ?? new Set()).add(sealOf.get(e.id)!));
    for (const seals of byTx.values()) expect(seals.size).toBe(1);
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, sealed: n });
  });

  it('concurrent sealers of one tenant (several instances) build one chain, each record once', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 3);
    const n = (await eventsOf(srv, tenant)).length;
    await Promise.all(Array.from({ length: 4 }, () => sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { batch: 3 })));
    await sealAll(srv, tenant);
    const ids = await sealedIds(srv, tenant);
    expect(ids.length).toBe(n);
    expect(new Set(ids).size).toBe(n);
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, sealed: n });
    // With skipIfBusy a sealer that finds the tenant taken returns at once instead of waiting.
    const both = await Promise.all([0, 1].map(() => sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { skipIfBusy: true })));
    expect(both.every((r) => r.sealed === 0)).toBe(true);
  });

  it('a sealing pass (the audit.seal job) seals every listed tenant in bounded batches and stops when aborted', async () => {
    const [a, b] = [await srv.newTenant(), await srv.newTenant()];
    // Only this test's tenants: on PostgreSQL other test files share the database.
    const tenants = async () => ({ ids: [a, b], complete: true });
    const deps = { db: srv.deps.db, key: srv.deps.audit.key, log: srv.deps.log, now: () => new Date() };
    const sealedAll = async (t: string) => (await sealedIds(srv, t)).length === (await eventsOf(srv, t)).length;
    await activity(srv, a, 2);
    await activity(srv, b, 1);
    // One batch of 2 per tenant and pass: the backlog takes several passes, each adding one seal at most.
    const first = await sealPendingRecords(deps, { tenants, batch: 2, maxBatchesPerTenant: 1 });
    expect(first).toMatchObject({ tenants: 2, failed: 0 });
    // (On PostgreSQL, `carebase serve` processes of other test files seal every tenant too.)
    if (mode === 'pglite') expect((await chainOf(srv, a)).length).toBe(1);
    await waitFor(async () => {
      await sealPendingRecords(deps, { tenants, batch: 2, maxBatchesPerTenant: 1 });
      return (await sealedAll(a)) && (await sealedAll(b));
    }, 10_000, () => 'both tenants sealed');
    if (mode === 'pglite') expect((await chainOf(srv, a)).length).toBeGreaterThan(1);
    // Aborted (shutdown): nothing more is sealed.
    await activity(srv, a, 1);
    const stop = new AbortController();
    stop.abort();
    expect(await sealPendingRecords(deps, { tenants, signal: stop.signal })).toMatchObject({ sealed: 0 });
    if (mode === 'pglite') expect(await sealedAll(a)).toBe(false);
    for (const t of [a, b]) expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, t)).toMatchObject({ ok: true });
  });

  describe('append-only', () => {
    let tenant: string;
    let before: { events: unknown[]; chain: unknown[] };
    beforeAll(async () => {
      tenant = await srv.newTenant();
      await activity(srv, tenant, 1);
      // And an audit_events row (a synchronous read record): writes' and batched reads' records are batch rows.
      const sync = createAuditor({ db: srv.deps.db, key: srv.deps.audit.key, log: createLogger('silent'), mode: 'sync', flushMs: 1000 });
      await sync.record({ tenantId: tenant, principal: { sub: 'reader', roles: new Set(['clinician']) }, requestId: randomUUID() }, { action: 'read', resourceType: 'Patient', resourceId: randomUUID() }, new Date());
      await sealAll(srv, tenant);
      before = { events: await eventsOf(srv, tenant), chain: await chainOf(srv, tenant) };
      expect(before.chain.length).toBeGreaterThan(0);
    });

    const attempts = [
      ['UPDATE audit_events', sql`update audit_events set actor_sub = 'mallory'`],
      ['DELETE audit_events', sql`delete from audit_events`],
      ['TRUNCATE audit_events', sql`truncate audit_events`],
      ['UPDATE audit_event_batches', sql`update audit_event_batches set records = '[]'`],
      ['DELETE audit_event_batches', sql`delete from audit_event_batches`],
      ['TRUNCATE audit_event_batches', sql`truncate audit_event_batches`],
      ['UPDATE audit_seals', sql`update audit_seals set position = position + 1000`],
      ['DELETE audit_seals', sql`delete from audit_seals`],
      ['TRUNCATE audit_seals', sql`truncate audit_seals`],
      // A write's record waits in its outbox row until the dispatcher stores it (migration 0014).
      ['UPDATE outbox', sql`update outbox set audit = null`],
      ['DELETE outbox', sql`delete from outbox`],
      ['TRUNCATE outbox', sql`truncate outbox`],
      // Nor can it switch the triggers off.
      ['SET session_replication_role', sql`set local session_replication_role = replica`],
    ] as const;

    it.each(attempts)('the application role cannot %s', async (_name, stmt) => {
      const err = await srv.deps.db.tx(tenant, (q) => q.execute(stmt)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(pgError(err)?.code).toBe('42501');
      expect(await eventsOf(srv, tenant)).toEqual(before.events);
      expect(await chainOf(srv, tenant)).toEqual(before.chain);
    });

    it.each([
      ['update audit_events', `update audit_events set actor_sub = 'mallory' where tenant_id = '%T'`],
      ['delete from audit_events', `delete from audit_events where tenant_id = '%T'`],
      ['update audit_event_batches', `update audit_event_batches set records = '[]' where tenant_id = '%T'`],
      ['delete from audit_event_batches', `delete from audit_event_batches where tenant_id = '%T'`],
      ['update audit_seals', `update audit_seals set hash = 'x' where tenant_id = '%T'`],
      ['delete from audit_seals', `delete from audit_seals where tenant_id = '%T'`],
    ])('the triggers refuse %s even to the owner', async (_name, text) => {
      const err = await srv.deps.db.withOwner((s) => s.exec(text.replace('%T', tenant))).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(pgError(err)?.code).toBe('42501');
      expect(String((err as Error).message)).toMatch(/append-only/);
      expect(await eventsOf(srv, tenant)).toEqual(before.events);
      expect(await chainOf(srv, tenant)).toEqual(before.chain);
    });
  });

  it('lists every tenant as the owner (superuser here), and says so', async () => {
    const t = await srv.newTenant();
    const list = await listTenantIds(srv.deps.db);
    expect(list.complete).toBe(true);
    expect(list.ids).toContain(t);
  });

  it('keeps tenants apart: sealing one tenant never touches another', async () => {
    const [a, b] = [await srv.newTenant(), await srv.newTenant()];
    await activity(srv, a, 1);
    await activity(srv, b, 1);
    await sealAll(srv, a);
    expect(await chainOf(srv, b)).toEqual([]);
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, b)).toMatchObject({ ok: true, sealed: 0 });
  });
});
