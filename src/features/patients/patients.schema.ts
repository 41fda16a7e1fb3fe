import { Type, type Static } from 'typebox';
import { Address, HumanName, Line, ListQuery, MergePatchOf, ResourceMeta } from '../shared/schemas.js';

export const Identifier = Type.Object(
  {
    system: Type.String({ format: 'uri', maxLength: 255, description: 'Namespace of the value, e.g. an MRN system URI' }),
    value: Line(255),
  },
  { additionalProperties: false },
);

/**
 * An identifier as stored (the row, the cache, anything persisted). Whose system is in
 * ENCRYPTED_IDENTIFIER_SYSTEMS: `value` is the ciphertext (`enc:v1:…`) and `valueIndex` its blind
 * index (`bi1:…`), for exact-match search; `valueIndex` is what marks a value as encrypted. Never
 * part of the API: the service decrypts before answering.
 */
export interface StoredIdentifier {
  system: string;
  value: string;
  valueIndex?: string;
}

const fields = {
  name: HumanName,
  birthDate: Type.String({ format: 'date', description: 'YYYY-MM-DD, not in the future' }),
  gender: Type.Union([Type.Literal('male'), Type.Literal('female'), Type.Literal('other'), Type.Literal('unknown')]),
  identifiers: Type.Optional(Type.Array(Identifier, { maxItems: 20 })),
  email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
  phone: Type.Optional(Type.String({ pattern: '^(?=(?:[^0-9]*[0-9]){3})\\+?[0-9 ().-]{3,32}$', description: 'At least 3 digits, with an optional leading +, spaces, dots, dashes and parentheses' })),
  address: Type.Optional(Address),
  active: Type.Boolean({ default: true }),
};

export const PatientInput = Type.Object({ ...fields, active: Type.Optional(fields.active) }, { additionalProperties: false });
export type PatientInput = Static<typeof PatientInput>;

export const PatientPatch = MergePatchOf(PatientInput);

export const Patient = Type.Object(
  { ...ResourceMeta, ...fields, identifiers: Type.Array(Identifier) },
  { additionalProperties: false },
);
export type Patient = Static<typeof Patient>;

export const PatientListQuery = Type.Object(
  {
    ...ListQuery,
    name: Type.Optional(Line(100, 'Prefix of a given or family name; case- and accent-insensitive; several words must all match')),
    birthDate: Type.Optional(Type.String({ format: 'date' })),
    identifier: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: '`system|value`, or `value` alone for any system' })),
  },
  { additionalProperties: false },
);
export type PatientListQuery = Static<typeof PatientListQuery>;
