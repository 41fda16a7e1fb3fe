// Export section: every questionnaire response of the patient, whatever its status (in-progress,
// completed, amended; amendments and the responses they amend both), as GET
// /v1/questionnaire-responses/{id} returns them; in FHIR as GET ?format=fhir does, except that the
// subject is the Bundle's Patient entry.
import { eq } from 'drizzle-orm';
import { pinnedQuestionnaire } from '../questionnaire-responses/pinned-questionnaires.js';
import { QuestionnaireResponse } from '../questionnaire-responses/questionnaire-responses.schema.js';
import { fhirOfResponse, toResponse } from '../questionnaire-responses/questionnaire-responses.service.js';
import { questionnaireResponses as responses, type ResponseRow } from '../questionnaire-responses/questionnaire-responses.table.js';
import { listLive } from '../shared/versioned-repo.js';
import { collect, type ExportSection, type FhirResource, type SectionScope } from './export-section.js';

/** The patient's live responses (soft-deleted drafts are gone for GET too), limit + 1 after afterId. */
const page = (s: SectionScope) => (afterId: string | undefined, limit: number) =>
  listLive<ResponseRow>(s.q, responses, s.tenantId, limit, afterId, [eq(responses.patientId, s.patientId)]);

/** The same FHIR QuestionnaireResponse as GET ?format=fhir, read inside the export's snapshot. */
async function toFhir(s: SectionScope, row: ResponseRow): Promise<FhirResource> {
  const r = toResponse(row);
  const fhir = fhirOfResponse(r, await pinnedQuestionnaire((fn) => fn(s.q), s.tenantId, r.questionnaireId));
  // `Patient/<id>` would not resolve inside a Bundle whose entries are urn:uuid: refer to the entry.
  return { ...fhir, subject: { reference: s.patientRef } };
}

export const questionnaireResponsesSection: ExportSection = {
  key: 'questionnaireResponses',
  schema: QuestionnaireResponse,
  json: (s) => collect(page(s), toResponse),
  fhir: (s) => collect(page(s), (row) => toFhir(s, row)),
};
