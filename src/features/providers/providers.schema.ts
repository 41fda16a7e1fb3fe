import { Type, type Static } from 'typebox';
import { HumanName, Line, ListQuery, MergePatchOf, ResourceMeta, Uuid } from '../shared/schemas.js';

const fields = {
  name: HumanName,
  npi: Type.String({ pattern: '^[0-9]{10}$', description: 'US National Provider Identifier (10 digits, Luhn check digit); unique per tenant' }),
  specialty: Type.Optional(Line(100)),
  locationIds: Type.Array(Uuid, { maxItems: 50, uniqueItems: true, default: [], description: 'Locations of this tenant where the provider practices' }),
};

export const ProviderInput = Type.Object(
  { ...fields, locationIds: Type.Optional(fields.locationIds) },
  { additionalProperties: false },
);
export type ProviderInput = Static<typeof ProviderInput>;

export const ProviderPatch = MergePatchOf(ProviderInput);

export const Provider = Type.Object({ ...ResourceMeta, ...fields }, { additionalProperties: false });
export type Provider = Static<typeof Provider>;

export const ProviderListQuery = Type.Object(
  {
    ...ListQuery,
    locationId: Type.Optional(Uuid),
    specialty: Type.Optional(Line(100, 'Exact specialty, case-insensitive')),
  },
  { additionalProperties: false },
);
export type ProviderListQuery = Static<typeof ProviderListQuery>;
