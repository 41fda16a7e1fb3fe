// Our patient as a FHIR R4 Patient (https://hl7.org/fhir/R4/patient.html). Only FHIR elements,
// and none empty: FHIR JSON forbids empty arrays, objects and strings, so a patient without an
// address has no `address` rather than an empty one. Every value already passed our schema
// (identifier systems are URIs, names and address lines are single visible lines), so the
// mapping needs no checks of its own beyond leaving out what is absent.
import type { Patient } from '../patients/patients.schema.js';

export interface FhirPatient {
  resourceType: 'Patient';
  id: string;
  meta: { versionId: string; lastUpdated: string };
  identifier?: { system: string; value: string }[];
  active: boolean;
  name: { family: string; given: string[] }[];
  telecom?: { system: 'email' | 'phone'; value: string }[];
  gender: Patient['gender'];
  birthDate: string;
  address?: { line?: string[]; city?: string; state?: string; postalCode?: string; country?: string }[];
}

/** Keeps only the members that hold a value (no undefined, no empty array). */
function present<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))) as Partial<T>;
}

export function toFhirPatient(p: Patient): FhirPatient {
  const telecom = [
    ...(p.email !== undefined ? [{ system: 'email' as const, value: p.email }] : []),
    ...(p.phone !== undefined ? [{ system: 'phone' as const, value: p.phone }] : []),
  ];
  const address = p.address ? present({ ...p.address }) : {};
  return {
    resourceType: 'Patient',
    id: p.id,
    // versionId is our resource version, lastUpdated its last change: what ETag and updatedAt say.
    meta: { versionId: String(p.version), lastUpdated: p.updatedAt },
    ...(p.identifiers.length > 0 ? { identifier: p.identifiers.map(({ system, value }) => ({ system, value })) } : {}),
    active: p.active,
    name: [{ family: p.name.family, given: [...p.name.given] }],
    ...(telecom.length > 0 ? { telecom } : {}),
    gender: p.gender,
    birthDate: p.birthDate,
    ...(Object.keys(address).length > 0 ? { address: [address] } : {}),
  };
}
