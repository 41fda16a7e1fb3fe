// The questionnaire-response engine: pure functions, no HTTP and no database.
// Typical submit pipeline: validateResponse(q, items, 'submit') → scoreResponse(q, items) →
// withServerScore(q, items, score) → store → toFhirQuestionnaireResponse({..., items, score}).

export { validateResponse, type ValidateOptions, type ValidationMode } from './validate.js';
export { scoreResponse, type Score } from './score.js';
export { findScoreItem, withServerScore } from './score-item.js';
export { detectInstrument, bandFor } from './instruments.js';
export {
  toFhirQuestionnaireResponse, SCORE_EXTENSION_URL, type FhirQuestionnaireResponse, type FhirResponseStatus, type ToFhirInput,
} from './to-fhir.js';
