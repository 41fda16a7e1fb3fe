// Field schemas shared by features. They validate at the HTTP edge and generate the OpenAPI
// document, and the service layer validates merged PATCH results with the same objects.
import { Type, type TSchema } from 'typebox';

// Single-line text: at least one visible character, no control characters (PostgreSQL text
// cannot hold NUL, and line breaks or escapes have no place in a name or a city).
const LINE = '^(?=[\\s\\S]*\\S)[^\\u0000-\\u001F\\u007F]*$';

export const Line = (maxLength: number, description?: string) =>
  Type.String({ minLength: 1, maxLength, pattern: LINE, ...(description ? { description } : {}) });

export const Uuid = Type.String({ format: 'uuid', description: 'UUIDv7' });

export const HumanName = Type.Object(
  {
    given: Type.Array(Line(100), { minItems: 1, maxItems: 10, description: 'Given names, in order' }),
    family: Line(100, 'Family name'),
  },
  { additionalProperties: false },
);

export const Address = Type.Object(
  {
    line: Type.Optional(Type.Array(Line(200), { maxItems: 4 })),
    city: Type.Optional(Line(100)),
    state: Type.Optional(Line(100)),
    postalCode: Type.Optional(Type.String({ minLength: 1, maxLength: 20, pattern: '^[A-Za-z0-9][A-Za-z0-9 -]*$' })),
    country: Type.Optional(Line(100)),
  },
  { additionalProperties: false },
);

/** Server-managed fields every versioned resource carries. */
export const ResourceMeta = {
  id: Uuid,
  version: Type.Integer({ minimum: 1, description: 'Starts at 1, +1 per change; the ETag is W/"<version>"' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
};

/**
 * The body of a JSON merge patch (RFC 7396) for an object schema: every property optional, and
 * properties that are optional in the resource may be null (null removes them). Nested objects are
 * patches too (RFC 7396 merges them), so {"name":{"family":"X"}} is valid; arrays replace whole.
 */
export function MergePatchOf(resource: TSchema & { properties: Record<string, TSchema>; required?: string[] }) {
  return Type.Object(patchProperties(resource), { additionalProperties: false, minProperties: 1 });
}

type ObjectSchema = TSchema & { properties: Record<string, TSchema>; required?: string[]; additionalProperties?: unknown };
const isObjectSchema = (s: TSchema): s is ObjectSchema =>
  (s as { type?: unknown }).type === 'object' && typeof (s as { properties?: unknown }).properties === 'object';

/** Nested objects are merged (RFC 7396), so they are patches too; arrays and scalars are replaced whole. */
function patchProperties(resource: ObjectSchema): Record<string, TSchema> {
  const required = new Set(resource.required ?? []);
  const props: Record<string, TSchema> = {};
  for (const [k, v] of Object.entries(resource.properties)) {
    const s = isObjectSchema(v) ? Type.Object(patchProperties(v), v.additionalProperties === false ? { additionalProperties: false } : {}) : v;
    props[k] = Type.Optional(required.has(k) ? s : Type.Union([s, Type.Null()]));
  }
  return props;
}

export const ListQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page' })),
};

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    data: Type.Array(item),
    page: Type.Object({ limit: Type.Integer(), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
  });
