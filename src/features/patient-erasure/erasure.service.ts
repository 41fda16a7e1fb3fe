// Erasure of a patient (GDPR right to erasure). In order, each step safe to repeat, so an
// interrupted erasure is finished by asking again:
//   1. One transaction: check If-Match, record the request ('in-progress'), soft-delete the
//      patient (with its 'erase' audit record). From here on every route answers 404.
//   2. Remove what holds the patient's data: idempotency records whose stored answer mentions the
//      patient, then the patient's consents, questionnaire responses and patient row (one
//      SECURITY DEFINER function: the application role has no DELETE on them).
//   3. Cache: a final tombstone for the patient and each response (nothing older can come back),
//      and this process forgets what it remembered of them.
//   4. Count again (rows and cache entries must be 0), record the report, mark 'completed'.
// Audit records are kept: they name the patient by id only, a pseudonym once the row is gone, and
// the chain stays verifiable. Asking again after completion returns the same report.
import { and, eq, sql } from 'drizzle-orm';
import { authorize } from '../../auth/permissions.js';
import type { Ctx } from '../../context.js';
import type { Querier } from '../../platform/db/db.js';
import { auditedWrite } from '../audit/audited.js';
import { countForPatient } from '../audit/audit-trail.sql.js';
import { writeMeta } from '../shared/write-meta.js';
import { changed } from '../patients/patients.service.js';
import type { AuditEntry } from '../audit/audit-record.js';
import { recordedBody } from '../idempotency/idempotency.js';
import { idempotencyKeys } from '../idempotency/idempotency.table.js';
import { patients } from '../patients/patients.table.js';
import { questionnaireResponses } from '../questionnaire-responses/questionnaire-responses.table.js';
import { forgetVersion } from '../shared/recent-versions.js';
import { assertCurrent, requireVersion } from '../shared/versioning.js';
import { writeTx } from '../shared/write-tx.js';
import type { ErasureReport, ErasureRequest } from './erasure.schema.js';
import { patientErasures, type ErasureRow } from './erasure.table.js';

// A tombstone at this version outranks any version a write could still be carrying.
const FINAL_VERSION = 2 ** 31 - 1;
const CACHE_TYPES = { patient: 'patients', response: 'questionnaire-responses' } as const;

const eraseEntry = (id: string): AuditEntry => ({ action: 'erase', resourceType: 'Patient', resourceId: id, patientId: id });

export function erasePatient(ctx: Ctx, id: string, expectedVersion: number | undefined, input: ErasureRequest): Promise<ErasureReport> {
  return auditedWrite(ctx, eraseEntry(id), async () => {
    authorize(ctx.principal, 'patients:erase');
    const existing = await ctx.db.read(ctx.tenantId, (q) => erasureOf(q, ctx.tenantId, id));
    if (existing?.status === 'completed' && existing.report) return existing.report;
    if (!existing) {
      await begin(ctx, id, requireVersion(expectedVersion), input.reason);
      // At once, not at the end: reads served by the cache must stop now too.
      await ctx.cache.tombstone(ctx.tenantId, CACHE_TYPES.patient, id, FINAL_VERSION);
    }
    return finish(ctx, id);
  });
}

async function erasureOf(q: Querier, tenantId: string, patientId: string): Promise<ErasureRow | undefined> {
  const [row] = await q.select().from(patientErasures).where(and(eq(patientErasures.tenantId, tenantId), eq(patientErasures.patientId, patientId)));
  return row;
}

/**
 * Step 1: from this commit on, the patient is gone for every route. A patient deleted earlier
 * (soft) still holds data and can be erased: If-Match names its last version.
 */
async function begin(ctx: Ctx, id: string, expected: number, reason: string): Promise<void> {
  await ctx.db.tx(ctx.tenantId, async (q) => {
    const byId = and(eq(patients.tenantId, ctx.tenantId), eq(patients.id, id));
    const [row] = await q.select({ version: patients.version, deletedAt: patients.deletedAt }).from(patients).where(byId).for('update');
    assertCurrent(row, expected, 'Patient');
    const now = ctx.now();
    await q.insert(patientErasures).values({ tenantId: ctx.tenantId, patientId: id, status: 'in-progress', reason, requestedBy: ctx.principal.sub, requestedAt: now });
    await q
      .update(patients)
      .set({ deletedAt: row!.deletedAt ?? now, updatedAt: now, version: sql`${patients.version} + 1`, writeMeta: writeMeta(ctx, now, changed('deleted', id), eraseEntry(id)) })
      .where(byId);
  });
}

/** Steps 2–4; safe to run again after an interruption at any point. */
async function finish(ctx: Ctx, id: string): Promise<ErasureReport> {
  const responseIds = await ctx.db.read(ctx.tenantId, async (q) =>
    (await q.select({ id: questionnaireResponses.id }).from(questionnaireResponses).where(and(eq(questionnaireResponses.tenantId, ctx.tenantId), eq(questionnaireResponses.patientId, id)))).map((r) => r.id),
  );
  const idempotencyRecords = await eraseIdempotencyRecords(ctx, [id, ...responseIds]);
  const rows = await ctx.db.tx(ctx.tenantId, async (q) => {
    const r = (await q.execute(sql`select carebase_erase_patient_rows(${id}::uuid) as counts`)) as unknown as { rows: { counts: { patients: number; questionnaireResponses: number; consents: number } }[] };
    return r.rows[0]!.counts;
  });
  const cacheKeys: [string, string][] = [[CACHE_TYPES.patient, id], ...responseIds.map((r): [string, string] => [CACHE_TYPES.response, r])];
  for (const [type, key] of cacheKeys) {
    await ctx.cache.tombstone(ctx.tenantId, type, key, FINAL_VERSION);
    forgetVersion(ctx.tenantId, type, key);
  }
  const verification = await verify(ctx, id, cacheKeys);
  return writeTx(ctx, async (q) => {
    const erasure = (await erasureOf(q, ctx.tenantId, id))!;
    if (erasure.status === 'completed' && erasure.report) return erasure.report;
    const now = ctx.now();
    const report: ErasureReport = {
      patientId: id,
      status: 'completed',
      requestedAt: erasure.requestedAt.toISOString(),
      completedAt: now.toISOString(),
      erased: { ...rows, idempotencyRecords, cacheEntries: cacheKeys.length },
      kept: { auditRecords: await countForPatient(q, ctx.tenantId, id) },
      verification,
    };
    await q
      .update(patientErasures)
      .set({ status: 'completed', completedAt: now, report })
      .where(and(eq(patientErasures.tenantId, ctx.tenantId), eq(patientErasures.patientId, id)));
    return report;
  });
}

/**
 * Stored answers of idempotent requests (kept 24 h for replays) can hold the patient's data: those
 * whose body names the patient or one of its responses are deleted.
 */
async function eraseIdempotencyRecords(ctx: Ctx, ids: string[]): Promise<number> {
  return ctx.db.tx(ctx.tenantId, async (q) => {
    const rows = await q.select({ principal: idempotencyKeys.principal, key: idempotencyKeys.key, body: idempotencyKeys.body }).from(idempotencyKeys).where(eq(idempotencyKeys.tenantId, ctx.tenantId));
    let erased = 0;
    for (const r of rows) {
      // Bodies are recorded encrypted: look at the answer itself.
      const text = JSON.stringify(recordedBody(ctx.keys, { tenantId: ctx.tenantId, ...r }) ?? null);
      if (!ids.some((id) => text.includes(id))) continue;
      await q.delete(idempotencyKeys).where(and(eq(idempotencyKeys.tenantId, ctx.tenantId), eq(idempotencyKeys.principal, r.principal), eq(idempotencyKeys.key, r.key)));
      erased++;
    }
    return erased;
  });
}

async function verify(ctx: Ctx, id: string, cacheKeys: [string, string][]): Promise<ErasureReport['verification']> {
  const remainingRows = await ctx.db.read(ctx.tenantId, async (q) => {
    const r = (await q.execute(sql`
      select (select count(*) from patients where tenant_id = ${ctx.tenantId} and id = ${id}::uuid)
           + (select count(*) from questionnaire_responses where tenant_id = ${ctx.tenantId} and patient_id = ${id}::uuid)
           + (select count(*) from consents where tenant_id = ${ctx.tenantId} and patient_id = ${id}::uuid) as n`)) as unknown as { rows: { n: string | number }[] };
    return Number(r.rows[0]!.n);
  });
  let remainingCacheEntries = 0;
  for (const [type, key] of cacheKeys) {
    const cached = await ctx.cache.get(ctx.tenantId, type, key);
    if (cached.hit && cached.value !== null) remainingCacheEntries++;
  }
  return { remainingRows, remainingCacheEntries };
}

