// Sealing audit records into the per-tenant hash chain: order, grace, late records within and
// beyond the margin, concurrent sealers, the background sealer; and that the application role
// cannot change or remove audit rows (grants), nor can the owner while the triggers are on.
import { randomUUID } from 'node:crypto';
import { asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { clientAs, startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { waitFor } from '../../../test/helpers/process.js';
import { pgError } from '../../platform/db/errors.js';
import { auditChain, auditEvents } from './audit.table.js';
import { chainHash, genesisOf } from './chain.js';
import { listTenantIds, sealTenant, startAuditSealer } from './sealer.js';
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
  srv.deps.db.read(tenant, (q) => q.select().from(auditChain).where(eq(auditChain.tenantId, tenant)).orderBy(asc(auditChain.position)));
const eventsOf = (srv: TestServer, tenant: string) =>
  srv.deps.db.read(tenant, (q) => q.select().from(auditEvents).where(eq(auditEvents.tenantId, tenant)).orderBy(asc(auditEvents.occurredAt), asc(auditEvents.id)));

/** Seals everything written so far (no grace: the test knows every write has committed). */
const sealNow = (srv: TestServer, tenant: string) => sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { graceMs: 0 });

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

  it('seals every record once, in (occurred_at, id) order, at positions 1..n, into a chain that recomputes', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant);
    const events = await eventsOf(srv, tenant);
    expect(events.length).toBeGreaterThanOrEqual(6);
    const r = await sealNow(srv, tenant);
    expect(r).toMatchObject({ sealed: events.length, head: events.length, rejected: [], busy: false, more: false });
    expect(r.sealed).toBeGreaterThan(0);
    const chain = await chainOf(srv, tenant);
    expect(chain.map((c) => c.eventId)).toEqual(events.map((e) => e.id));
    expect(chain.map((c) => c.position)).toEqual(events.map((_, i) => i + 1));
    let prev = genesisOf(tenant);
    for (const [i, c] of chain.entries()) {
      expect(c.eventHmac).toBe(events[i]!.hmac);
      expect(c.hash).toBe(chainHash(srv.deps.audit.key, prev, c.position, c.eventId, c.eventHmac));
      prev = c.hash;
    }
    // Nothing left: a second call appends nothing.
    expect(await sealNow(srv, tenant)).toMatchObject({ sealed: 0, head: events.length });
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toEqual({
      ok: true, tenantId: tenant, checked: events.length, sealed: events.length, pending: 0, head: { position: events.length, hash: prev },
    });
  });

  it('leaves records younger than the grace period for the next pass (they are pending, not a problem)', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 1);
    const n = (await eventsOf(srv, tenant)).length;
    expect(await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { graceMs: 60_000 })).toMatchObject({ sealed: 0, head: 0 });
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, sealed: 0, pending: n, checked: n });
    // Once they are older than the grace, they are sealed.
    expect(await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(Date.now() + 60_000), { graceMs: 60_000 })).toMatchObject({ sealed: n });
  });

  it('seals a record that lands late (older than the last sealed one, within the margin) at the end of the chain', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 1);
    const { head } = await sealNow(srv, tenant);
    await recordAt(srv, tenant, new Date(Date.now() - 5 * 60_000));
    expect(await sealNow(srv, tenant)).toMatchObject({ sealed: 1, head: head + 1 });
    const chain = await chainOf(srv, tenant);
    expect((await eventsOf(srv, tenant))[0]!.id).toBe(chain.at(-1)!.eventId);
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, sealed: head + 1, pending: 0 });
  });

  it('does not seal a record that lands later than the margin; verify names it as unsealed', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 1);
    const { head } = await sealNow(srv, tenant);
    await recordAt(srv, tenant, new Date(Date.now() - 60 * 60_000));
    const late = (await eventsOf(srv, tenant))[0]!;
    expect(await sealNow(srv, tenant)).toMatchObject({ sealed: 0, head });
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: false, problem: 'unsealed', eventId: late.id, checked: head });
    // Once looked into, an operator seals it anyway (`carebase audit seal --include-late`).
    expect(await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { marginMs: Infinity })).toMatchObject({ sealed: 1, head: head + 1 });
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, sealed: head + 1 });
  });

  it('seals in batches: a backlog larger than the batch takes several calls, each continuing the chain', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 2);
    const n = (await eventsOf(srv, tenant)).length;
    const first = await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { graceMs: 0, batch: 4 });
    expect(first).toMatchObject({ sealed: 4, head: 4, more: true });
    let head = first.head;
    for (let more = true; more; ) ({ head, more } = await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { graceMs: 0, batch: 4 }));
    expect(head).toBe(n);
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, sealed: n });
  });

  it('concurrent sealers of one tenant (several instances) build one chain, each record once', async () => {
    const tenant = await srv.newTenant();
    await activity(srv, tenant, 3);
    const n = (await eventsOf(srv, tenant)).length;
    const results = await Promise.all(Array.from({ length: 4 }, () => sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { graceMs: 0, batch: 3 })));
    let head = Math.max(...results.map((r) => r.head));
    while (head < n) head = (await sealNow(srv, tenant)).head;
    expect(results.reduce((s, r) => s + r.sealed, 0)).toBeLessThanOrEqual(n);
    const chain = await chainOf(srv, tenant);
    expect(new Set(chain.map((c) => c.eventId)).size).toBe(n);
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, sealed: n });
    // With skipIfBusy a sealer that finds the tenant taken returns at once instead of waiting.
    const both = await Promise.all([0, 1].map(() => sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { graceMs: 0, skipIfBusy: true })));
    expect(both.every((r) => r.sealed === 0)).toBe(true);
  });

  it('the background sealer seals its tenants continuously and stops cleanly', async () => {
    const [a, b] = [await srv.newTenant(), await srv.newTenant()];
    // Only this test's tenants: on PostgreSQL other test files share the database.
    const listTenants = async () => ({ ids: [a, b], complete: true });
    const stop = startAuditSealer({ db: srv.deps.db, key: srv.deps.audit.key }, srv.deps.log, 50, { graceMs: 0, tenantsRefreshMs: 0, listTenants });
    try {
      await activity(srv, a, 1);
      await activity(srv, b, 1);
      const sealedAll = async (t: string) => (await chainOf(srv, t)).length === (await eventsOf(srv, t)).length;
      await waitFor(async () => (await sealedAll(a)) && (await sealedAll(b)), 10_000, () => 'both tenants sealed');
      await activity(srv, a, 1);
      await waitFor(() => sealedAll(a), 10_000, () => 'new records of tenant a sealed');
    } finally {
      await stop();
    }
    await activity(srv, a, 1);
    await new Promise((r) => setTimeout(r, 200));
    expect((await chainOf(srv, a)).length).toBeLessThan((await eventsOf(srv, a)).length);
    for (const t of [a, b]) expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, t)).toMatchObject({ ok: true });
  });

  describe('append-only', () => {
    let tenant: string;
    let before: { events: unknown[]; chain: unknown[] };
    beforeAll(async () => {
      tenant = await srv.newTenant();
      await activity(srv, tenant, 1);
      await sealNow(srv, tenant);
      before = { events: await eventsOf(srv, tenant), chain: await chainOf(srv, tenant) };
      expect(before.chain.length).toBeGreaterThan(0);
    });

    const attempts = [
      ['UPDATE audit_events', sql`update audit_events set actor_sub = 'mallory'`],
      ['DELETE audit_events', sql`delete from audit_events`],
      ['TRUNCATE audit_events', sql`truncate audit_events`],
      ['UPDATE audit_chain', sql`update audit_chain set position = position + 1000`],
      ['DELETE audit_chain', sql`delete from audit_chain`],
      ['TRUNCATE audit_chain', sql`truncate audit_chain`],
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
      ['update audit_chain', `update audit_chain set hash = 'x' where tenant_id = '%T'`],
      ['delete from audit_chain', `delete from audit_chain where tenant_id = '%T'`],
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
    await sealNow(srv, a);
    expect(await chainOf(srv, b)).toEqual([]);
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, b)).toMatchObject({ ok: true, sealed: 0 });
  });
});
