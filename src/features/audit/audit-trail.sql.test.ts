// Searching a trail spread over many batch rows and audit_events rows: the windowed merge of
// searchTrail must return exactly what one query over the audit_trail view returns, page by page,
// with and without filters, oldest or newest first.
import { randomUUID } from 'node:crypto';
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { createLogger } from '../../platform/log.js';
import { auditSeals, auditTrail } from './audit.table.js';
import { createAuditor } from './auditor.js';
import { sealTenant } from './sealer.js';
import { verifyTenant } from './verify.js';
import { countForPatient, searchTrail, type AuditRowFilters } from './audit-trail.sql.js';

describe.each(storageModes())('audit trail search over batches on %s', (mode) => {
  let srv: TestServer;
  let tenant: string;
  const patients = [randomUUID(), randomUUID(), randomUUID()];
  const t0 = Date.now() - 3_600_000;

  beforeAll(async () => {
    srv = await startServer(mode);
    tenant = await srv.newTenant();
    const batched = createAuditor({ db: srv.deps.db, key: srv.deps.audit.key, log: createLogger('silent'), mode: 'batched', flushMs: 1000 });
    const sync = createAuditor({ db: srv.deps.db, key: srv.deps.audit.key, log: createLogger('silent'), mode: 'sync', flushMs: 1000 });
    const who = (sub: string) => ({ tenantId: tenant, principal: { sub, roles: new Set(['clinician']) }, requestId: randomUUID() });
    // 40 flushes (more than two search windows of batches), each of 3 reads whose times overlap
    // the next batch's, with synchronous records in between: both tables interleave in id order.
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < 3; j++) {
        const patientId = patients[(i + j) % 3]!;
        await batched.record(who(j === 0 ? 'alice' : 'bob'), { action: 'read', resourceType: 'Patient', resourceId: patientId, patientId }, new Date(t0 + i * 1000 + j * 700));
      }
      await batched.flush();
      if (i % 3 === 0) await sync.record(who('carol'), { action: 'read', resourceType: 'Patient', resourceId: patients[0]!, patientId: patients[0]! }, new Date(t0 + i * 1000 + 350));
    }
    await batched.close();
    await sync.close();
  });
  afterAll(() => srv?.close());

  const viaView = async (f: AuditRowFilters) => {
    const rows = await srv.deps.db.read(tenant, (q) => q.select().from(auditTrail).where(eq(auditTrail.tenantId, tenant)).orderBy(asc(auditTrail.id)));
    return rows
      .filter((r) => (f.patientId === undefined || r.patientId === f.patientId) && (f.actor === undefined || r.actorSub === f.actor))
      .filter((r) => (f.from === undefined || r.occurredAt >= f.from) && (f.to === undefined || r.occurredAt < f.to))
      .map((r) => r.id);
  };
  const paged = async (f: AuditRowFilters, limit: number) => {
    const ids: string[] = [];
    for (let afterId: string | undefined; ; ) {
      const page = await srv.deps.db.read(tenant, (q) => searchTrail(q, tenant, f, { limit, ...(afterId ? { afterId } : {}) }));
      ids.push(...page.map((r) => r.id));
      if (page.length < limit) return ids;
      afterId = page.at(-1)!.id;
    }
  };

  it.each([
    ['no filter', {}],
    ['a patient', { patientId: patients[0] }],
    ['an actor', { actor: 'alice' }],
    ['a time range', { from: new Date(t0 + 10_500), to: new Date(t0 + 31_200) }],
    ['a patient and an actor', { patientId: patients[1], actor: 'bob' }],
  ] as [string, AuditRowFilters][])('pages (%s) exactly as the view lists, in id order, without gaps or duplicates', async (_name, f) => {
    const expected = await viaView(f);
    expect(expected.length).toBeGreaterThan(5);
    for (const limit of [1, 7, 50, 500]) expect(await paged(f, limit)).toEqual(expected);
  });

  it('the whole trail holds every record once: 120 batched and 14 synchronous', async () => {
    expect(await viaView({})).toHaveLength(134);
  });

  it('newest first: the last record, as the view orders them', async () => {
    for (const f of [{}, { patientId: patients[2] }, { actor: 'carol' }] as AuditRowFilters[]) {
      const [last] = await srv.deps.db.read(tenant, (q) => searchTrail(q, tenant, f, { limit: 1, newestFirst: true }));
      expect(last?.id).toBe((await viaView(f)).at(-1));
    }
  });

  it('counts a patient\'s records in both tables', async () => {
    for (const p of patients) expect(await srv.deps.db.read(tenant, (q) => countForPatient(q, tenant, p))).toBe((await viaView({ patientId: p })).length);
  });

  it('seals batches whole, a few at a time by their record counts, past ten seals, until every record is sealed and verifies', async () => {
    for (let i = 0; i < 100; i++) {
      const r = await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { batch: 10 });
      if (r.sealed === 0 && !r.more) break;
    }
    const seals = await srv.deps.db.read(tenant, (q) => q.select().from(auditSeals).where(eq(auditSeals.tenantId, tenant)).orderBy(asc(auditSeals.position)));
    // More than ten seals: positions compare as numbers (the head is position 10, not 9, after 9).
    expect(seals.length).toBeGreaterThan(10);
    expect(seals.map((s) => s.position)).toEqual(seals.map((_, i) => i + 1));
    // Each transaction (a batch of 3, or one synchronous record) lies whole in one seal of at most 10.
    for (const s of seals) expect(s.eventIds.length).toBeLessThanOrEqual(10);
    expect(seals.flatMap((s) => s.eventIds).sort()).toEqual(await viaView({}));
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant)).toMatchObject({ ok: true, sealed: 134, pending: 0 });
  });

  it('records arriving while batches are written wait for the next flush: full batches, not one row per few records', async () => {
    const t = await srv.newTenant();
    // Each batch insert takes 60 ms longer, so records keep arriving while one is written.
    const slow = { ...srv.deps.db, autocommit: (async (tenantId, fn) => {
      await new Promise((r) => setTimeout(r, 60));
      return srv.deps.db.autocommit(tenantId, fn);
    }) as typeof srv.deps.db.autocommit };
    const auditor = createAuditor({ db: slow, key: srv.deps.audit.key, log: createLogger('silent'), mode: 'batched', flushMs: 1000 });
    const read = (tenantId = t) => auditor.record({ tenantId, principal: { sub: 'busy', roles: new Set(['staff']) }, requestId: randomUUID() }, { action: 'read', resourceType: 'Patient', resourceId: patients[1]!, patientId: patients[1]! }, new Date());
    // The signing thread started (its start, not the 20 ms, would otherwise decide what waits).
    await read(await srv.newTenant());
    await auditor.flush();
    for (let i = 0; i < 10; i++) await read();
    const first = auditor.flush(); // still writing while 1,050 more arrive
    for (let i = 0; i < 1050; i++) await read();
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 120));
      await read();
    }
    await first;
    await auditor.close();
    expect(auditor.stats()).toMatchObject({ pending: 0, written: 1066, failedFlushes: 0 });
    const counts = await srv.deps.db.withOwner((s) => s.query<{ n: number }>('select record_count as n from audit_event_batches where tenant_id = $1 order by first_id', [t]));
    // The first flush took the 10 and the record pushed before it ran; the flush queued at the
    // 1,000th waited for it and took all 1,049 then pending; close() wrote the last 5. (Ids within
    // one millisecond do not order batches by time, hence sorted.)
    expect(counts.map((c) => c.n).sort((a, b) => a - b)).toEqual([5, 11, 49, 1000]);
  });

  it('stores any text a record holds exactly: multi-byte characters, quotes, separators, the words NULL and null', async () => {
    const t = await srv.newTenant();
    const auditor = createAuditor({ db: srv.deps.db, key: srv.deps.audit.key, log: createLogger('silent'), mode: 'batched', flushMs: 1000 });
    const texts = ['Mozilla/5.0 (Ünïcödé; 日本語) 🏥', 'quote " backslash \\ comma , braces {} [] ]', 'NULL', 'null', 'escape-looking text \\u0041 stays text', ' leading and trailing space ', 'زه‌ ا‌ی', 'a\tb'];
    for (const [i, text] of texts.entries()) {
      await auditor.record({ tenantId: t, principal: { sub: text, roles: new Set(['staff']) }, requestId: `r-${i}`, client: { ip: '::1', userAgent: text } },
        { action: 'read', resourceType: 'Patient', resourceId: patients[0]!, patientId: patients[0]!, detail: { note: text } }, new Date());
    }
    await auditor.close();
    expect(auditor.stats()).toMatchObject({ pending: 0, written: texts.length });
    const rows = await srv.deps.db.read(t, (q) => searchTrail(q, t, {}, { limit: 100 }));
    expect(rows.map((r) => r.requestId).sort()).toEqual(texts.map((_, i) => `r-${i}`).sort());
    for (const r of rows) {
      const text = texts[Number(r.requestId!.slice(2))]!;
      expect({ sub: r.actorSub, ua: r.userAgent, detail: r.detail }).toEqual({ sub: text, ua: text, detail: { note: text } });
    }
    // Sealed from the batch's id and HMAC arrays, verified from its records: the two agree.
    await sealTenant(srv.deps.db, srv.deps.audit.key, t, new Date());
    expect(await verifyTenant(srv.deps.db, srv.deps.audit.key, t)).toMatchObject({ ok: true, sealed: texts.length, pending: 0 });
  });

  it('a flush holding more than ten minutes of records (held through an outage) is stored as batches of at most ten minutes each', async () => {
    const t = await srv.newTenant();
    const auditor = createAuditor({ db: srv.deps.db, key: srv.deps.audit.key, log: createLogger('silent'), mode: 'batched', flushMs: 1000 });
    const start = Date.now() - 3_600_000;
    for (const minutes of [0, 4, 9, 11, 25, 26]) {
      await auditor.record({ tenantId: t, principal: { sub: 'late', roles: new Set(['staff']) }, requestId: randomUUID() }, { action: 'read', resourceType: 'Patient', resourceId: patients[0]!, patientId: patients[0]! }, new Date(start + minutes * 60_000));
    }
    await auditor.close();
    expect(auditor.stats()).toMatchObject({ pending: 0, written: 6, failedFlushes: 0 });
    const counts = await srv.deps.db.withOwner((s) => s.query<{ n: number }>('select record_count as n from audit_event_batches where tenant_id = $1 order by first_id', [t]));
    expect(counts.map((c) => c.n)).toEqual([3, 1, 2]);
    const all = await srv.deps.db.read(t, (q) => searchTrail(q, t, {}, { limit: 100 }));
    expect(all.map((r) => r.occurredAt.getTime() - start)).toEqual([0, 4, 9, 11, 25, 26].map((m) => m * 60_000));
    // From the middle of the first batch on: the search starts its walk up to ten minutes earlier.
    const later = await srv.deps.db.read(t, (q) => searchTrail(q, t, {}, { limit: 100, afterId: all[1]!.id }));
    expect(later.map((r) => r.id)).toEqual(all.slice(2).map((r) => r.id));
  });
});
