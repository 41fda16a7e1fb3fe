// Who may do what. One table, checked by the service layer (never by a transport), so every
// entry point enforces the same rules. Patient scope (a patient sees only its own record) is
// checked by the services that hold patient data, on top of these.
import { AppError } from '../errors.js';
import type { Principal, Role } from './principal.js';

const STAFF: Role[] = ['admin', 'manager', 'clinician', 'staff'];

export const PERMISSIONS = {
  'patients:read': [...STAFF, 'patient'],
  'patients:write': STAFF,
  'patients:delete': ['admin', 'manager'],
  // Erasure removes a patient's data for good: admins only (issue 4).
  'patients:erase': ['admin'],
  // The whole record at once (GET /v1/patients/{id}/export): the patient itself (its right of
  // access, patient scope) and the roles that manage or treat patients. Not `staff`: front-desk
  // work needs single records, not bulk disclosure of everything (minimum necessary).
  'patients:export': ['admin', 'manager', 'clinician', 'patient'],
  'providers:read': [...STAFF, 'patient'],
  'providers:write': ['admin', 'manager'],
  'providers:delete': ['admin', 'manager'],
  'locations:read': [...STAFF, 'patient'],
  'locations:write': ['admin', 'manager'],
  'locations:delete': ['admin'],
  // Clinicians author forms (create and edit drafts); publishing (activate, retire, importing a
  // non-draft) and deleting drafts stay with admins and managers.
  'questionnaires:read': [...STAFF, 'patient'],
  'questionnaires:write': ['admin', 'manager', 'clinician'],
  'questionnaires:publish': ['admin', 'manager'],
  'questionnaires:delete': ['admin', 'manager'],
  // Questionnaire responses: a patient starts, fills, submits and reads its own (patient scope);
  // any staff role may do so on a patient's behalf (e.g. intake at the front desk). Amending a
  // submitted response is a clinical correction: clinicians and admins only.
  'responses:read': [...STAFF, 'patient'],
  'responses:write': [...STAFF, 'patient'],
  'responses:amend': ['admin', 'clinician'],
  // Consents: the patient decides for itself (patient scope); any staff role may record a decision
  // on the patient's behalf (e.g. a signed form at the front desk) and read them.
  'consents:read': [...STAFF, 'patient'],
  'consents:write': [...STAFF, 'patient'],
  // The audit trail: searching and exporting it is for admins and managers; a patient's access log
  // (an accounting of disclosures) also for the staff who care for patients and, in patient
  // scope, for the patient itself.
  'audit:read': ['admin', 'manager'],
  'audit:export': ['admin', 'manager'],
  'audit:access-log': [...STAFF, 'patient'],
  // The state of the service's dependencies (no tenant data; operations staff).
  'health:read': ['admin', 'manager'],
  'performance:read': ['admin', 'manager'],
  // Circuit breakers of external calls: managers see them; forcing one open (or back to auto)
  // stops calls to an upstream for the whole deployment, so admins only.
  'circuits:read': ['admin', 'manager'],
  'circuits:write': ['admin'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export function can(p: Principal, perm: Permission): boolean {
  return (PERMISSIONS[perm] as readonly Role[]).some((r) => p.roles.has(r));
}

export function authorize(p: Principal, perm: Permission): void {
  if (!can(p, perm)) throw new AppError('FORBIDDEN');
}

/** True when the principal is limited to one patient's data (role patient and no staff role). */
/**
 * The patient whose data a principal may see: undefined for staff (every patient of the tenant),
 * null for a principal that may see no patient's data (no staff role and no patient id).
 */
export function patientLimit(p: Principal): string | null | undefined {
  return STAFF.some((r) => p.roles.has(r)) ? undefined : (p.patientId ?? null);
}

/** Whether data of `patientId` (null: no patient's) is within what the principal may see. */
export function inPatientScope(p: Principal, patientId: string | null): boolean {
  const own = patientLimit(p);
  return own === undefined || (own !== null && own === patientId);
}

export function patientScope(p: Principal): string | undefined {
  return STAFF.some((r) => p.roles.has(r)) ? undefined : p.patientId;
}
