// SQL of the audit APIs. Keyset pagination on id (UUIDv7, so about time order); the tenant filter
// is explicit although row-level security applies it too.
import { and, asc, desc, eq, gt, gte, lt, lte, type SQL } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { idFloor } from '../../platform/ids.js';
import { patients } from '../patients/patients.table.js';
import { auditEvents, type AuditEventRow } from './audit.table.js';

export interface AuditRowFilters {
  patientId?: string;
  actor?: string;
  action?: string;
  resourceType?: string;
  resourceId?: string;
  outcome?: 'success' | 'denied' | 'error';
  from?: Date;
  to?: Date;
}

function whereOf(tenantId: string, f: AuditRowFilters): (SQL | undefined)[] {
  const t = auditEvents;
  return [
    eq(t.tenantId, tenantId),
    f.patientId !== undefined ? eq(t.patientId, f.patientId) : undefined,
    f.actor !== undefined ? eq(t.actorSub, f.actor) : undefined,
    f.action !== undefined ? eq(t.action, f.action) : undefined,
    f.resourceType !== undefined ? eq(t.resourceType, f.resourceType) : undefined,
    f.resourceId !== undefined ? eq(t.resourceId, f.resourceId) : undefined,
    f.outcome !== undefined ? eq(t.outcome, f.outcome) : undefined,
    f.from !== undefined ? gte(t.occurredAt, f.from) : undefined,
    f.to !== undefined ? lt(t.occurredAt, f.to) : undefined,
    // A time range is also an id range (ids are UUIDv7s of occurred_at), so it uses the primary
    // key; the second of slack covers records signed before ids were made from occurred_at.
    f.from !== undefined ? gte(t.id, idFloor(f.from.getTime() - 1000)) : undefined,
    f.to !== undefined ? lt(t.id, idFloor(f.to.getTime() + 1000)) : undefined,
  ];
}

/** Up to `limit` matching rows after `afterId` (and not after `upToId`), in id order. */
export async function listAuditRows(
  q: Querier,
  tenantId: string,
  f: AuditRowFilters,
  page: { limit: number; afterId?: string; upToId?: string },
): Promise<AuditEventRow[]> {
  const where = and(
    ...whereOf(tenantId, f),
    page.afterId !== undefined ? gt(auditEvents.id, page.afterId) : undefined,
    page.upToId !== undefined ? lte(auditEvents.id, page.upToId) : undefined,
  );
  return q.select().from(auditEvents).where(where).orderBy(asc(auditEvents.id)).limit(page.limit);
}

/** The id of the newest matching row: where an export stops, so it ends even while records are added. */
export async function lastAuditId(q: Querier, tenantId: string, f: AuditRowFilters): Promise<string | undefined> {
  const [row] = await q.select({ id: auditEvents.id }).from(auditEvents).where(and(...whereOf(tenantId, f))).orderBy(desc(auditEvents.id)).limit(1);
  return row?.id;
}

/**
 * Whether the tenant has this patient's row, deleted (soft) or not. An erased patient has none:
 * like every route, its access log is then 404 (its records stay in the audit trail, which
 * admins and managers search by patient id).
 */
export async function patientKnown(q: Querier, tenantId: string, id: string): Promise<boolean> {
  const [row] = await q.select({ id: patients.id }).from(patients).where(and(eq(patients.tenantId, tenantId), eq(patients.id, id))).limit(1);
  return row !== undefined;
}
