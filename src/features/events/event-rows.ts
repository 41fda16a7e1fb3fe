// Rows of `events` (and of carebase_dispatch_events) as ScopedEvent. Ids are bigint in the
// database and decimal strings outside it; the drivers return timestamps as Date or text.
import { sql } from 'drizzle-orm';
import type { ScopedEvent } from './events.js';

export const EVENT_COLUMNS = sql.raw(
  'tenant_id, id::text as id, type, resource_type, resource_id, version, patient_id::text as patient_id, questionnaire_id::text as questionnaire_id, request_id, occurred_at, traceparent',
);

export interface EventRow {
  tenant_id: string;
  id: string;
  type: string;
  resource_type: string;
  resource_id: string;
  version: number;
  patient_id: string | null;
  questionnaire_id: string | null;
  request_id: string | null;
  occurred_at: Date | string;
  traceparent: string | null;
}

export const toEvent = (r: EventRow): ScopedEvent => ({
  id: r.id,
  type: r.type,
  resource: { type: r.resource_type, id: r.resource_id, version: Number(r.version) },
  occurredAt: new Date(r.occurred_at).toISOString(),
  requestId: r.request_id,
  tenantId: r.tenant_id,
  patientId: r.patient_id,
  questionnaireId: r.questionnaire_id,
  ...(r.traceparent ? { traceparent: r.traceparent } : {}),
});
