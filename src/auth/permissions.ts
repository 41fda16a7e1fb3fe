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
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export function can(p: Principal, perm: Permission): boolean {
  return (PERMISSIONS[perm] as readonly Role[]).some((r) => p.roles.has(r));
}

export function authorize(p: Principal, perm: Permission): void {
  if (!can(p, perm)) throw new AppError('FORBIDDEN');
}

/** True when the principal is limited to one patient's data (role patient and no staff role). */
export function patientScope(p: Principal): string | undefined {
  return STAFF.some((r) => p.roles.has(r)) ? undefined : p.patientId;
}
