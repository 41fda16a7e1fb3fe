// Consent: a patient's decisions (granted / revoked) per purpose, kept as an append-only history;
// the latest decision per purpose is the one in force. Recording a decision is audited (action
// 'consent') by the INSERT itself; reading decisions is audited as a read of the patient's data.
//
// For other services: requireConsent / hasConsent answer whether the patient has consented to a
// purpose. Anything that acts on one of the purposes (sharing with third parties, e.g. webhooks
// carrying patient data; research exports; marketing; reminders) must call requireConsent inside
// its own transaction, before it acts.
import { and, eq, isNull } from 'drizzle-orm';
import { newId } from '../../platform/ids.js';
import { authorize, patientScope } from '../../auth/permissions.js';
import type { Ctx } from '../../context.js';
import { AppError, notFound, OutOfScope } from '../../errors.js';
import type { Querier } from '../../platform/db/db.js';
import { auditedRead, auditedWrite } from '../audit/audited.js';
import { writeMeta } from '../shared/write-meta.js';
import type { AuditAction, AuditEntry } from '../audit/audit-record.js';
import { patients } from '../patients/patients.table.js';
import { pageRequest, toPage } from '../shared/pagination.js';
import { iso } from '../shared/versioning.js';
import { writeTx } from '../shared/write-tx.js';
import { findConsent, insertConsent, latestConsents, latestDecision, listConsents as listRows } from './consents.repo.js';
import type { Consent, ConsentInput, ConsentListQuery, CurrentConsents } from './consents.schema.js';
import type { ConsentRow } from './consents.table.js';
import { isPurpose, PURPOSE_CODES, PURPOSES, type Purpose } from './purposes.js';

export const toConsent = (r: ConsentRow): Consent => ({
  id: r.id,
  patientId: r.patientId,
  purpose: r.purpose as Purpose,
  decision: r.decision,
  recordedAt: iso(r.recordedAt),
  actor: { sub: r.actorSub, roles: r.actorRoles },
  ...(r.note !== null ? { note: r.note } : {}),
});

/** The audit entry of an access to the consents of `patientId` (one consent when `id` is given). */
const access = (action: AuditAction, patientId: string, id: string | null = null, detail?: Record<string, unknown>): AuditEntry => ({
  action, resourceType: 'Consent', resourceId: id, patientId, ...(detail ? { detail } : {}),
});

/** A patient principal acts for its own record only: any other patient is "not found" (and audited as denied). */
function assertInScope(ctx: Ctx, patientId: string): void {
  const own = patientScope(ctx.principal);
  if (own !== undefined && own !== patientId) throw new OutOfScope('Patient');
}

/**
 * 404 unless the patient is live in the tenant. Key-share locked when writing, so a concurrent
 * deletion of the patient either waits for the decision or makes it a 404, never both succeed.
 */
async function assertLivePatient(q: Querier, tenantId: string, patientId: string, lock = false): Promise<void> {
  const query = q.select({ id: patients.id }).from(patients).where(and(eq(patients.tenantId, tenantId), eq(patients.id, patientId), isNull(patients.deletedAt)));
  const rows = lock ? await query.for('key share') : await query;
  if (rows.length === 0) throw notFound('Patient');
}

/** Records a decision (a new row, never a change of an old one). */
export function recordConsent(ctx: Ctx, patientId: string, input: ConsentInput): Promise<Consent> {
  const id = newId();
  const change = access('consent', patientId, id, { purpose: input.purpose, decision: input.decision });
  return auditedWrite(ctx, change, async () => {
    authorize(ctx.principal, 'consents:write');
    assertInScope(ctx, patientId);
    return writeTx(ctx, async (q) => {
      await assertLivePatient(q, ctx.tenantId, patientId, true);
      const now = ctx.now();
      const row: ConsentRow = {
        tenantId: ctx.tenantId, id, patientId, purpose: input.purpose, decision: input.decision, recordedAt: now,
        actorSub: ctx.principal.sub, actorRoles: [...ctx.principal.roles].sort(), note: input.note ?? null, createdAt: now,
      };
      await insertConsent(q, row, writeMeta(ctx, now, { type: 'consent.created', patientId }, change));
      return toConsent(row);
    });
  });
}

/** Runs a read of a live, in-scope patient's consents. */
function readConsents<T>(ctx: Ctx, patientId: string, fn: (q: Querier) => Promise<T>): Promise<T> {
  authorize(ctx.principal, 'consents:read');
  assertInScope(ctx, patientId);
  return ctx.db.read(ctx.tenantId, async (q) => {
    await assertLivePatient(q, ctx.tenantId, patientId);
    return fn(q);
  });
}

export function getConsent(ctx: Ctx, patientId: string, consentId: string): Promise<Consent> {
  return auditedRead(ctx, access('read', patientId, consentId), () =>
    readConsents(ctx, patientId, async (q) => {
      const row = await findConsent(q, ctx.tenantId, patientId, consentId);
      if (!row) throw notFound('Consent');
      return toConsent(row);
    }),
  );
}

/** The patient's decisions, oldest first (newest last), optionally for one purpose. One audit record per request. */
export function listConsents(ctx: Ctx, patientId: string, query: ConsentListQuery) {
  const target = access('read', patientId, null, { view: 'list' });
  return auditedRead(ctx, target, async () => {
    const { limit, afterId } = pageRequest(query);
    const rows = await readConsents(ctx, patientId, (q) => listRows(q, ctx.tenantId, patientId, limit, afterId, query.purpose));
    return toPage(rows.map(toConsent), limit);
  }, (page) => [{ ...target, detail: { view: 'list', count: page.data.length } }]);
}

/** The decision in force for every purpose (null where none was ever recorded). */
export function currentConsents(ctx: Ctx, patientId: string): Promise<CurrentConsents> {
  return auditedRead(ctx, access('read', patientId, null, { view: 'current' }), async () => {
    const rows = await readConsents(ctx, patientId, (q) => latestConsents(q, ctx.tenantId, patientId));
    const byPurpose = new Map(rows.map((r) => [r.purpose, toConsent(r)]));
    return {
      patientId,
      purposes: PURPOSE_CODES.map((purpose) => {
        const latest = byPurpose.get(purpose) ?? null;
        return { purpose, description: PURPOSES[purpose], decision: latest?.decision ?? null, latest };
      }),
    };
  });
}

/**
 * True when the latest decision of the patient for `purpose` is 'granted' (in ctx's tenant only).
 * `q` must be a handle scoped to ctx.tenantId — ctx.db.read/tx or the caller's writeTx — so the
 * check can run inside the transaction of the action it guards. Not audited on its own: the
 * calling service's operation is. It sees the decisions committed before it runs.
 */
export async function hasConsent(ctx: Ctx, q: Querier, patientId: string, purpose: Purpose): Promise<boolean> {
  if (!isPurpose(purpose)) throw new Error(`unknown consent purpose ${String(purpose)}`);
  return (await latestDecision(q, ctx.tenantId, patientId, purpose)) === 'granted';
}

/** Throws 403 FORBIDDEN unless the patient's latest decision for `purpose` is 'granted'. */
export async function requireConsent(ctx: Ctx, q: Querier, patientId: string, purpose: Purpose): Promise<void> {
  if (!(await hasConsent(ctx, q, patientId, purpose))) throw new AppError('FORBIDDEN', `The patient has not consented to ${purpose}`);
}
