export const ROLES = ['admin', 'manager', 'clinician', 'staff', 'patient'] as const;
export type Role = (typeof ROLES)[number];

/** Who is acting: taken from a verified token (or a system identity for seeding and jobs). */
export interface Principal {
  readonly sub: string;
  readonly tenantId: string;
  readonly roles: ReadonlySet<Role>;
  /** For the patient role: the only patient this principal may see. */
  readonly patientId?: string;
}

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function systemPrincipal(tenantId: string): Principal {
  return { sub: 'system', tenantId, roles: new Set<Role>(['admin']) };
}
