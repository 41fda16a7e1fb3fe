import { Type, type Static } from 'typebox';
import { Address, Line, ListQuery, MergePatchOf, ResourceMeta } from '../shared/schemas.js';

const fields = {
  name: Line(200),
  address: Type.Optional(Address),
  timeZone: Type.String({ format: 'iana-time-zone', maxLength: 64, description: 'IANA time zone, e.g. America/New_York' }),
};

export const LocationInput = Type.Object(fields, { additionalProperties: false });
export type LocationInput = Static<typeof LocationInput>;

export const LocationPatch = MergePatchOf(LocationInput);

export const Location = Type.Object({ ...ResourceMeta, ...fields }, { additionalProperties: false });
export type Location = Static<typeof Location>;

export const LocationListQuery = Type.Object({ ...ListQuery }, { additionalProperties: false });
export type LocationListQuery = Static<typeof LocationListQuery>;
