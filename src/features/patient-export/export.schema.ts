// Schemas of GET /v1/patients/{id}/export (validation, serialization and OpenAPI).
import { Type, type Static, type TSchema } from 'typebox';
import { Patient } from '../patients/patients.schema.js';
import { EXPORT_SECTIONS } from './sections.js';

export const EXPORT_FORMATS = ['json', 'fhir'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const ExportQuery = Type.Object(
  {
    format: Type.Optional(
      Type.Enum(EXPORT_FORMATS, {
        description: 'json (default): our representation, application/json; fhir: a FHIR R4 Bundle (type collection), application/fhir+json',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ExportQuery = Static<typeof ExportQuery>;

const sectionMembers: Record<string, TSchema> = Object.fromEntries(
  EXPORT_SECTIONS.map((s) => [s.key, Type.Array(s.schema, { description: `Every ${s.key} record of the patient, oldest first, as its own GET returns it` })]),
);

export const PatientExport = Type.Object(
  {
    exportedAt: Type.String({ format: 'date-time', description: 'When the export was read (one consistent snapshot)' }),
    patient: Patient,
    ...sectionMembers,
  },
  { additionalProperties: false, description: 'Everything the system holds about the patient' },
);

export interface PatientExportDocument {
  exportedAt: string;
  patient: Static<typeof Patient>;
  [section: string]: unknown;
}

const FhirResourceSchema = Type.Object(
  { resourceType: Type.String(), id: Type.String() },
  { additionalProperties: true, description: 'A FHIR R4 resource: Patient, QuestionnaireResponse, Consent' },
);

export const FhirBundle = Type.Object(
  {
    resourceType: Type.Literal('Bundle'),
    type: Type.Literal('collection'),
    timestamp: Type.String({ format: 'date-time' }),
    entry: Type.Array(
      Type.Object(
        { fullUrl: Type.String({ description: 'urn:uuid:<resource id>; references between entries use it' }), resource: FhirResourceSchema },
        { additionalProperties: false },
      ),
      { description: 'The Patient first, then its QuestionnaireResponses and Consents' },
    ),
  },
  { additionalProperties: false, description: 'FHIR R4 Bundle of type collection' },
);
export type FhirBundle = Static<typeof FhirBundle>;
