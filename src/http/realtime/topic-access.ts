// Who may subscribe to what. Every check is the service layer's own read of the resource, for
// this principal, so role, tenant, patient scope and the audit trail apply exactly as they do to
// the REST GET (a patient asking for another patient's record gets the same 404, audited as
// denied). Subscribing to a record is recorded as a read of it: the subscriber will learn of
// every change to it.
//
// Per-event visibility (events.ts's ScopedEvent) is checked again for every event delivered:
// see `visibleTo` below.
import { can, inPatientScope, patientLimit } from '../../auth/permissions.js';
import type { Principal } from '../../auth/principal.js';
import type { Ctx } from '../../context.js';
import { AppError } from '../../errors.js';
import type { ScopedEvent } from '../../features/events/events.js';
import { getPatient } from '../../features/patients/patients.service.js';
import { getResponse } from '../../features/questionnaire-responses/questionnaire-responses.service.js';
import { getQuestionnaire } from '../../features/questionnaires/questionnaires.service.js';
import type { RoomResource, Topic } from './topics.js';

async function readResource(ctx: Ctx, type: RoomResource, id: string): Promise<void> {
  if (type === 'patients') await getPatient(ctx, id);
  else await getResponse(ctx, id);
}

/** Resolves when the principal may subscribe to the topic; throws the AppError REST would. */
export async function authorizeTopic(ctx: Ctx, t: Topic): Promise<void> {
  switch (t.kind) {
    case 'patient':
      return readResource(ctx, 'patients', t.id);
    case 'response':
      return readResource(ctx, 'questionnaire-responses', t.id);
    case 'questionnaire-responses':
      // As GET /v1/questionnaire-responses?questionnaireId=…: the role must read responses, the
      // questionnaire must be visible (patients never see drafts); a patient then receives only
      // its own responses' events (visibleTo).
      if (!can(ctx.principal, 'responses:read')) throw new AppError('FORBIDDEN');
      await getQuestionnaire(ctx, t.questionnaireId);
      return;
    case 'room':
      // A room about a record is open to whoever may read that record. A free-named room (e.g.
      // a front-desk channel) is for staff: its member list shows who is on duty, which is not
      // a patient's business.
      if (t.resource) return readResource(ctx, t.resource.type, t.resource.id);
      if (patientLimit(ctx.principal) !== undefined) throw new AppError('FORBIDDEN', 'Only staff may join rooms not named for a record; patients may join rooms of their own records');
      return;
  }
}

/**
 * Whether one event may reach this principal at all, whatever it subscribed to: same tenant, and
 * for a patient-scoped principal only events of its own records. An event without a patient
 * (non-PHI resources) is not patient data, but no patient topic matches those either.
 */
export function visibleTo(p: Principal, e: ScopedEvent): boolean {
  // Not staff: the patient's own records only (a principal with no known role sees nothing).
  return e.tenantId === p.tenantId && inPatientScope(p, e.patientId);
}
