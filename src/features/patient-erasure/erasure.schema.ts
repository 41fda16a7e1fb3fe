import { Type, type Static } from 'typebox';

const Text = (max: number) => Type.String({ minLength: 1, maxLength: max, pattern: '\\S' });

export const ErasureRequest = Type.Object(
  { reason: { ...Text(500), description: 'Why the patient is erased (kept with the erasure record; no PHI, please)' } },
  { additionalProperties: false },
);
export type ErasureRequest = Static<typeof ErasureRequest>;

const Count = Type.Integer({ minimum: 0 });

export const ErasureReport = Type.Object(
  {
    patientId: Type.String({ format: 'uuid' }),
    status: Type.Literal('completed'),
    requestedAt: Type.String({ format: 'date-time' }),
    completedAt: Type.String({ format: 'date-time' }),
    erased: Type.Object(
      {
        patients: Count,
        questionnaireResponses: Count,
        consents: Count,
        idempotencyRecords: Count,
        cacheEntries: Count,
      },
      { description: 'Rows and cache entries removed' },
    ),
    kept: Type.Object(
      { auditRecords: Count },
      { description: 'Audit records stay, holding only the patient id (a pseudonym once the patient row is gone), so the trail stays verifiable' },
    ),
    verification: Type.Object(
      { remainingRows: Count, remainingCacheEntries: Count },
      { description: 'Counted again after erasing: both must be 0' },
    ),
  },
  { additionalProperties: false },
);
export type ErasureReport = Static<typeof ErasureReport>;
