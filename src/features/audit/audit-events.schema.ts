// Schemas of the audit APIs: the audit record as clients see it, the list, access-log and export
// queries, and the lines of an export (validation + OpenAPI).
import { Type, type Static } from 'typebox';
import { Line, ListQuery, Uuid } from '../shared/schemas.js';
import { AUDIT_ACTIONS } from './audit-record.js';

export const AUDIT_OUTCOMES = ['success', 'denied', 'error'] as const;

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(s: T) => Type.Union([s, Type.Null()]);

export const AuditEvent = Type.Object(
  {
    id: Uuid,
    occurredAt: Type.String({ format: 'date-time' }),
    actor: Type.Object({
      sub: Type.String({ description: 'The token subject that acted' }),
      roles: Type.Array(Type.String(), { description: 'Its roles at the time, sorted' }),
    }),
    action: Type.Enum(AUDIT_ACTIONS),
    resource: Type.Object({
      type: Type.String({ description: 'Patient, QuestionnaireResponse, Questionnaire, AuditEvent…' }),
      id: Nullable(Type.String({ description: 'null for a search' })),
    }),
    patientId: Nullable(Uuid),
    outcome: Type.Enum(AUDIT_OUTCOMES, { description: 'denied: refused by role or patient scope; error: failed (detail.code says why)' }),
    requestId: Nullable(Type.String()),
    client: Type.Object({ ip: Nullable(Type.String()), userAgent: Nullable(Type.String()) }, { description: 'null for a patient reading its own access log' }),
    detail: Nullable(Type.Object({}, { additionalProperties: true, description: 'Codes and counts, never values' })),
    keyId: Type.String({ description: 'Which audit key signed the record' }),
    hmac: Type.String({ description: 'HMAC-SHA256 (base64url) of the record’s canonical form, under that key' }),
  },
  { additionalProperties: false },
);
export type AuditEvent = Static<typeof AuditEvent>;

const range = {
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Records at or after this instant (ISO 8601 with offset)' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Records before this instant; not before `from`' })),
};

const filters = {
  patientId: Type.Optional(Uuid),
  actor: Type.Optional(Line(255, 'The acting token subject (`sub`), exact')),
  action: Type.Optional(Type.Enum(AUDIT_ACTIONS)),
  resourceType: Type.Optional(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{0,63}$', description: 'e.g. Patient, QuestionnaireResponse, AuditEvent' })),
  resourceId: Type.Optional(Line(255)),
  outcome: Type.Optional(Type.Enum(AUDIT_OUTCOMES)),
  ...range,
};

export const AuditEventListQuery = Type.Object({ ...ListQuery, ...filters }, { additionalProperties: false });
export type AuditEventListQuery = Static<typeof AuditEventListQuery>;

export const AccessLogQuery = Type.Object({ ...ListQuery, ...range }, { additionalProperties: false });
export type AccessLogQuery = Static<typeof AccessLogQuery>;

export const AuditExportQuery = Type.Object(
  {
    ...filters,
    format: Type.Optional(Type.Enum(['fhir'], { description: 'fhir: FHIR R4 AuditEvent resources instead of our records' })),
  },
  { additionalProperties: false },
);
export type AuditExportQuery = Static<typeof AuditExportQuery>;

/** What every filter of the three routes comes down to. */
export type AuditFilters = Omit<AuditEventListQuery, 'limit' | 'cursor'>;

export const ExportTrailer = Type.Object(
  {
    trailer: Type.Object({
      scheme: Type.Literal('carebase-audit-export/1'),
      alg: Type.Literal('HMAC-SHA256'),
      tenantId: Type.String(),
      format: Type.Enum(['carebase', 'fhir']),
      keyId: Type.String(),
      count: Type.Integer({ minimum: 0, description: 'Lines before this one' }),
      exportedAt: Type.String({ format: 'date-time' }),
      signature: Type.String({ description: 'base64url HMAC over every line before this one and the canonical trailer; see README' }),
    }),
  },
  { additionalProperties: false, description: 'The last line of an export (format=fhir: the same fields as a FHIR Parameters resource)' },
);

/** One line of the export stream. */
export const ExportLine = Type.Union([AuditEvent, ExportTrailer, Type.Object({ resourceType: Type.Enum(['AuditEvent', 'Parameters']) }, { additionalProperties: true })], {
  description: 'One JSON document per line: audit records (or FHIR AuditEvents with format=fhir), then one trailer',
});
