// SQL of the audit APIs besides the trail's own (audit-trail.sql.ts). The tenant filter is explicit
// although row-level security applies it too.
import { and, eq } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { patients } from '../patients/patients.table.js';

/**
 * Whether the tenant has this patient's row, deleted (soft) or not. An erased patient has none:
 * like every route, its access log is then 404 (its records stay in the audit trail, which
 * admins and managers search by patient id).
 */
export async function patientKnown(q: Querier, tenantId: string, id: string): Promise<boolean> {
  const [row] = await q.select({ id: patients.id }).from(patients).where(and(eq(patients.tenantId, tenantId), eq(patients.id, id))).limit(1);
  return row !== undefined;
}
