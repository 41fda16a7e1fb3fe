import { Type, type Static } from 'typebox';
import { ListQuery, ResourceMeta, Uuid } from '../shared/schemas.js';

export const RESPONSE_STATUSES = ['in-progress', 'completed', 'amended'] as const;

/** FHIR QuestionnaireResponse.item entries; their content is checked against the questionnaire by the service. */
const Items = Type.Array(Type.Object({}, { additionalProperties: true }), {
  maxItems: 1000,
  description: 'FHIR R4 QuestionnaireResponse.item: linkId, answer (one value[x] each), nested item; checked against the questionnaire',
});

const Score = Type.Object(
  { total: Type.Number(), band: Type.Union([Type.String(), Type.Null()], { description: 'Severity band for known instruments (PHQ-9, GAD-7), else null' }) },
  { description: 'Computed by the server on submission; absent while in progress and for questionnaires without weights' },
);

export const QuestionnaireResponse = Type.Object(
  {
    ...ResourceMeta,
    questionnaireId: Uuid,
    questionnaireVersion: Type.Integer({ minimum: 1, description: 'The questionnaire version the response was started on (pinned)' }),
    patientId: Uuid,
    status: Type.Enum(RESPONSE_STATUSES, { description: 'in-progress (draft) → completed (submitted); amended = a submitted amendment of another response' }),
    item: Items,
    score: Type.Optional(Score),
    amends: Type.Optional(Uuid),
    amendReason: Type.Optional(Type.String()),
    submittedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);
export type QuestionnaireResponse = Static<typeof QuestionnaireResponse>;

/** The FHIR R4 QuestionnaireResponse returned by GET ?format=fhir. */
export const FhirQuestionnaireResponseSchema = Type.Object(
  {
    resourceType: Type.Literal('QuestionnaireResponse'),
    id: Type.String(),
    extension: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
    questionnaire: Type.String(),
    status: Type.Enum(RESPONSE_STATUSES),
    subject: Type.Object({ reference: Type.String() }),
    authored: Type.String(),
    item: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
  },
  { additionalProperties: false },
);

export const ResponseCreate = Type.Object(
  { questionnaireId: Uuid, patientId: Uuid, item: Type.Optional(Items) },
  { additionalProperties: false },
);
export type ResponseCreate = Static<typeof ResponseCreate>;

export const ResponseDraft = Type.Object({ item: Items }, { additionalProperties: false });
export type ResponseDraft = Static<typeof ResponseDraft>;

export const ResponseAmend = Type.Object(
  { item: Items, reason: Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S', description: 'Why the submitted response is amended' }) },
  { additionalProperties: false },
);
export type ResponseAmend = Static<typeof ResponseAmend>;

export const ResponseGetQuery = Type.Object(
  { format: Type.Optional(Type.Enum(['fhir'], { description: 'fhir: return a FHIR R4 QuestionnaireResponse instead of our representation' })) },
  { additionalProperties: false },
);
export type ResponseGetQuery = Static<typeof ResponseGetQuery>;

export const ResponseListQuery = Type.Object(
  {
    ...ListQuery,
    patientId: Type.Optional(Uuid),
    questionnaireId: Type.Optional(Uuid),
    status: Type.Optional(Type.Enum(RESPONSE_STATUSES)),
  },
  { additionalProperties: false },
);
export type ResponseListQuery = Static<typeof ResponseListQuery>;
