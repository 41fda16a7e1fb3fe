// What a write statement carries in its row's `write_meta` column (migration 0008): the change's
// event and, for patient data, its signed audit record. The row's trigger moves both into the
// outbox row and clears the column, so the change, its audit record and its event commit together
// — one statement, whichever transport or job made the change; the dispatcher then stores the
// record in the audit trail (migration 0014).
import type { Ctx } from '../../context.js';
import type { AuditEntry } from '../audit/audit-record.js';

export interface ChangeEvent {
  /** `<singular resource>.<created|updated|deleted>` (see features/events/events.ts). */
  type: string;
  /** The patient whose data changed (the patient itself for patients); the transports filter on it. */
  patientId?: string | null;
  /** For questionnaire responses: their questionnaire (topic questionnaires/{id}/responses). */
  questionnaireId?: string | null;
}

export function writeMeta(ctx: Ctx, at: Date, event: ChangeEvent, audit?: AuditEntry): Record<string, unknown> {
  // The trace the change was made in (when tracing is on and it is sampled) travels with its
  // event (migration 0011), so whatever the event causes can join that trace.
  const traceparent = ctx.trace?.traceparent;
  return {
    ...(audit ? { audit: ctx.audit.element(ctx, audit, at) } : {}),
    event: {
      type: event.type,
      patientId: event.patientId ?? null,
      questionnaireId: event.questionnaireId ?? null,
      requestId: ctx.requestId,
      at: at.toISOString(),
      ...(traceparent ? { traceparent } : {}),
    },
  };
}
