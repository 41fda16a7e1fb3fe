// Schemas of the HTTP layer itself: the error envelope (shared by every route's error responses
// in OpenAPI) and common parameters.
import { Type } from 'typebox';
import { ERRORS } from '../errors.js';
import { Uuid } from '../features/shared/schemas.js';

export const ErrorEnvelope = Type.Object(
  {
    success: Type.Literal(false),
    error: Type.Object({
      code: Type.Union(Object.keys(ERRORS).map((c) => Type.Literal(c))),
      message: Type.String(),
      details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
      requestId: Type.String(),
    }),
    timestamp: Type.String({ format: 'date-time' }),
  },
  { $id: 'ErrorEnvelope', description: 'Every error from every route has this shape' },
);

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ description: 'W/"<version>" from the ETag of the version being changed' })),
});
