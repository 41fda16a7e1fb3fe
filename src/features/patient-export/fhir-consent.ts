// A consent decision as a FHIR R4 Consent (https://hl7.org/fhir/R4/consent.html). R4 requires
// status, scope, category (1..*) and, by invariant ppc-1, a policy or a policyRule; scopes privacy
// and research also need a patient (ppc-2, ppc-3). Mapping:
// * status: `active` for the decision in force for its purpose (the latest), `inactive` for one a
//   later decision replaced — the history is kept, as our API keeps it;
// * provision.type: granted → `permit`, revoked → `deny`; policyRule: v3-ActCode OPTIN / OPTOUT;
// * scope: `research` for the research purpose, `patient-privacy` for the others (they govern
//   sharing and use of the patient's data and contact details);
// * category: LOINC 59284-0 (Patient consent) and the purpose, in Carebase's purpose code system;
// * dateTime and meta.lastUpdated: when it was recorded (decisions never change).
// The optional free-text note and who recorded it have no R4 Consent element: they are in the JSON
// export only.
import type { ConsentRow } from '../consents/consents.table.js';
import { isPurpose, PURPOSES } from '../consents/purposes.js';
import { iso } from '../shared/versioning.js';
import type { FhirResource } from './export-section.js';

/** Carebase's consent purposes as a code system (codes = the API's purpose values; host reserved until the project publishes one). */
export const CONSENT_PURPOSE_SYSTEM = 'https://carebase.example/fhir/CodeSystem/consent-purpose';

const SCOPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/consentscope';
const ACT_CODE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

export function toFhirConsent(r: ConsentRow, inForce: boolean, patientRef: string): FhirResource {
  const recordedAt = iso(r.recordedAt);
  const research = r.purpose === 'research';
  const description = isPurpose(r.purpose) ? PURPOSES[r.purpose] : undefined;
  return {
    resourceType: 'Consent',
    id: r.id,
    meta: { lastUpdated: recordedAt },
    status: inForce ? 'active' : 'inactive',
    scope: { coding: [research ? { system: SCOPE_SYSTEM, code: 'research', display: 'Research' } : { system: SCOPE_SYSTEM, code: 'patient-privacy', display: 'Privacy Consent' }] },
    category: [
      { coding: [{ system: 'http://loinc.org', code: '59284-0' }] },
      { coding: [{ system: CONSENT_PURPOSE_SYSTEM, code: r.purpose, ...(description ? { display: description } : {}) }] },
    ],
    patient: { reference: patientRef },
    dateTime: recordedAt,
    policyRule: { coding: [{ system: ACT_CODE_SYSTEM, code: r.decision === 'granted' ? 'OPTIN' : 'OPTOUT' }] },
    provision: { type: r.decision === 'granted' ? 'permit' : 'deny' },
  };
}
