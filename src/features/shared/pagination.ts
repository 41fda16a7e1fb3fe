// Opaque keyset cursors. Lists are ordered by id (UUIDv7, so by creation time); a cursor is the
// last id of the previous page, so pages stay stable while rows are inserted.
import { validationFailed } from '../../errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface PageRequest {
  limit: number;
  afterId?: string;
}

export function pageRequest(q: { limit?: number; cursor?: string }): PageRequest {
  const limit = q.limit ?? 20;
  if (q.cursor === undefined) return { limit };
  let afterId: unknown;
  try {
    afterId = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')).after;
  } catch {
    afterId = undefined;
  }
  if (typeof afterId !== 'string' || !UUID.test(afterId)) {
    throw validationFailed([{ path: '/query/cursor', message: 'is not a cursor this API issued' }]);
  }
  return { limit, afterId };
}

/** Repositories fetch limit + 1 rows; this trims the extra one and derives the next cursor. */
export function toPage<T extends { id: string }>(rows: T[], limit: number) {
  const data = rows.slice(0, limit);
  const last = data.at(-1);
  const nextCursor = rows.length > limit && last ? Buffer.from(JSON.stringify({ after: last.id })).toString('base64url') : null;
  return { data, page: { limit, nextCursor } };
}
