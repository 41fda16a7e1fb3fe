// This feature's SQL. Every query names the tenant even though row-level security enforces it too.
import { and, asc, desc, eq, gt } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { consents, type ConsentRow } from './consents.table.js';
import type { Purpose } from './purposes.js';

const COLUMNS = {
  tenantId: consents.tenantId,
  id: consents.id,
  patientId: consents.patientId,
  purpose: consents.purpose,
  decision: consents.decision,
  recordedAt: consents.recordedAt,
  actorSub: consents.actorSub,
  actorRoles: consents.actorRoles,
  note: consents.note,
  createdAt: consents.createdAt,
};

export async function insertConsent(q: Querier, row: ConsentRow, writeMeta: Record<string, unknown>): Promise<void> {
  await q.insert(consents).values({ ...row, writeMeta });
}

export async function findConsent(q: Querier, tenantId: string, patientId: string, id: string): Promise<ConsentRow | undefined> {
  const [row] = await q.select(COLUMNS).from(consents).where(and(eq(consents.tenantId, tenantId), eq(consents.patientId, patientId), eq(consents.id, id)));
  return row;
}

/** A page of one patient's decisions, oldest first, limit + 1 of them (see toPage). */
export function listConsents(q: Querier, tenantId: string, patientId: string, limit: number, afterId?: string, purpose?: Purpose): Promise<ConsentRow[]> {
  const where = and(
    eq(consents.tenantId, tenantId),
    eq(consents.patientId, patientId),
    purpose ? eq(consents.purpose, purpose) : undefined,
    afterId ? gt(consents.id, afterId) : undefined,
  );
  return q.select(COLUMNS).from(consents).where(where).orderBy(asc(consents.id)).limit(limit + 1);
}

/** The latest decision per purpose (ids are UUIDv7, so the greatest id is the latest). */
export function latestConsents(q: Querier, tenantId: string, patientId: string): Promise<ConsentRow[]> {
  return q
    .selectDistinctOn([consents.purpose], COLUMNS)
    .from(consents)
    .where(and(eq(consents.tenantId, tenantId), eq(consents.patientId, patientId)))
    .orderBy(asc(consents.purpose), desc(consents.id));
}

/** The latest decision for one purpose, or undefined when none was ever recorded. */
export async function latestDecision(q: Querier, tenantId: string, patientId: string, purpose: Purpose): Promise<ConsentRow['decision'] | undefined> {
  const [row] = await q
    .select({ decision: consents.decision })
    .from(consents)
    .where(and(eq(consents.tenantId, tenantId), eq(consents.patientId, patientId), eq(consents.purpose, purpose)))
    .orderBy(desc(consents.id))
    .limit(1);
  return row?.decision;
}
