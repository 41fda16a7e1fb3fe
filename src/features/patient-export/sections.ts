// What a patient export holds beyond the patient itself, in this order (JSON members and Bundle
// entries alike). A later kind of PHI (appointments, documents…) is one more ExportSection here:
// its JSON member, its schema in the OpenAPI document, its FHIR entries and its count in the audit
// record follow from this list.
import { consentsSection } from './consents.section.js';
import type { ExportSection } from './export-section.js';
import { questionnaireResponsesSection } from './questionnaire-responses.section.js';

export const EXPORT_SECTIONS: readonly ExportSection[] = [questionnaireResponsesSection, consentsSection];
