// Export section: the patient's whole consent history (every decision, oldest first), as GET
// /v1/patients/{id}/consents/{consentId} returns each; in FHIR one Consent per decision, the
// latest per purpose active and the ones it replaced inactive (see fhir-consent.ts).
import { latestConsents, listConsents } from '../consents/consents.repo.js';
import { Consent } from '../consents/consents.schema.js';
import { toConsent } from '../consents/consents.service.js';
import { collect, type ExportSection, type SectionScope } from './export-section.js';
import { toFhirConsent } from './fhir-consent.js';

const page = (s: SectionScope) => (afterId: string | undefined, limit: number) => listConsents(s.q, s.tenantId, s.patientId, limit, afterId);

async function fhir(s: SectionScope) {
  // One row per purpose: the decisions in force.
  const inForce = new Set((await latestConsents(s.q, s.tenantId, s.patientId)).map((r) => r.id));
  return collect(page(s), (r) => toFhirConsent(r, inForce.has(r.id), s.patientRef));
}

export const consentsSection: ExportSection = {
  key: 'consents',
  schema: Consent,
  json: (s) => collect(page(s), toConsent),
  fhir,
};
