// SQL of the audit APIs. Keyset pagination on id (UUIDv7, so about time order); the tenant filter
// is explicit although row-level security applies it too.
import { and, eq } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { patients } from '../patients/patients.table.js';
import type { AuditEventRow } from './audit.table.js';
import { searchTrail, type AuditRowFilters } from './audit-trail.sql.js';

export type { AuditRowFilters };

/** Up to `limit` matching records after `afterId` (and not after `upToId`), in id order. */
export function listAuditRows(q: Querier, tenantId: string, f: AuditRowFilters, page: { limit: number; afterId?: string; upToId?: string }): Promise<AuditEventRow[]> {
  return searchTrail(q, tenantId, f, page);
}

/** The id of the newest matching record: where an export stops, so it ends even while records are added. */
export async function lastAuditId(q: Querier, tenantId: string, f: AuditRowFilters): Promise<string | undefined> {
  const [row] = await searchTrail(q, tenantId, f, { limit: 1, newestFirst: true });
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
