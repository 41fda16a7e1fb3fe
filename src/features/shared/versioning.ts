// Optimistic locking rules shared by every versioned resource.
import { AppError, notFound } from '../../errors.js';

/** PUT, PATCH and DELETE of a versioned resource must say which version they change. */
export function requireVersion(expected: number | undefined): number {
  if (expected === undefined) throw new AppError('PRECONDITION_REQUIRED');
  return expected;
}

/**
 * Called with the row locked (SELECT ... FOR UPDATE) inside the write transaction, so the check
 * and the change are atomic: of concurrent writers holding the same version, one wins.
 */
export function assertCurrent<T extends { version: number }>(row: T | undefined, expected: number, what: string): T {
  if (!row) throw notFound(what);
  if (row.version !== expected) {
    throw new AppError('VERSION_CONFLICT', `${what} is at version ${row.version}, not ${expected}; re-read it and retry`, undefined, {
      ETag: etag(row.version),
    });
  }
  return row;
}

export const etag = (version: number) => `W/"${version}"`;

export const iso = (d: Date) => d.toISOString();
