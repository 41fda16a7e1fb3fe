import { Type, type Static } from 'typebox';
import { Line, ListQuery, Uuid } from '../shared/schemas.js';
import { DECISIONS, PURPOSE_CODES, PURPOSES } from './purposes.js';

const purposeList = PURPOSE_CODES.map((p) => `\`${p}\`: ${PURPOSES[p]}`).join('; ');

export const PurposeSchema = Type.Enum(PURPOSE_CODES, { description: `What the consent is for. ${purposeList}` });
const DecisionSchema = Type.Enum(DECISIONS, { description: 'granted or revoked; a change of mind is a new record' });

export const ConsentInput = Type.Object(
  {
    purpose: PurposeSchema,
    decision: DecisionSchema,
    note: Type.Optional(Line(500, 'Optional short note (e.g. "signed paper form on file"); never put clinical details here')),
  },
  { additionalProperties: false },
);
export type ConsentInput = Static<typeof ConsentInput>;

export const Consent = Type.Object(
  {
    id: Uuid,
    patientId: Uuid,
    purpose: PurposeSchema,
    decision: DecisionSchema,
    recordedAt: Type.String({ format: 'date-time', description: 'When the decision was recorded (server time)' }),
    actor: Type.Object(
      { sub: Type.String({ description: 'Who recorded it (token sub)' }), roles: Type.Array(Type.String(), { description: 'Their roles at the time' }) },
      { additionalProperties: false },
    ),
    note: Type.Optional(Type.String()),
  },
  { additionalProperties: false, description: 'One consent decision; immutable (no version, no ETag)' },
);
export type Consent = Static<typeof Consent>;

export const CurrentConsents = Type.Object(
  {
    patientId: Uuid,
    purposes: Type.Array(
      Type.Object(
        {
          purpose: PurposeSchema,
          description: Type.String(),
          decision: Type.Union([DecisionSchema, Type.Null()], { description: 'The latest decision; null when none was ever recorded (no consent)' }),
          latest: Type.Union([Consent, Type.Null()], { description: 'The record of the latest decision, or null' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Every purpose, in the documented order' },
    ),
  },
  { additionalProperties: false },
);
export type CurrentConsents = Static<typeof CurrentConsents>;

export const ConsentListQuery = Type.Object({ ...ListQuery, purpose: Type.Optional(PurposeSchema) }, { additionalProperties: false });
export type ConsentListQuery = Static<typeof ConsentListQuery>;

export const ConsentParams = Type.Object({ id: Uuid, consentId: Uuid }, { additionalProperties: false });
