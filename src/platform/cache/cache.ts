// The cache port. Two adapters (Redis in server mode, an in-process LRU in embedded mode) pass one
// contract suite (cache.test.ts). The cache is an optimisation, never a source of truth: every
// operation swallows its own failures (logged, counted) so a cache outage cannot fail a request.
//
// Entries carry the resource version. Writers only ever go forward (setIfNewer is an atomic
// compare-and-set on the version), so a slow writer holding an old row can never overwrite a
// newer one, and a tombstone (value null) keeps a deleted resource from being revived by a stale
// fill for as long as the tombstone lives.

export interface CacheEntry<T> {
  version: number;
  /** null = tombstone: the resource was deleted at this version. */
  value: T | null;
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** Failed operations (connection, timeout, server or serialization errors). A failed get is an error, not a miss. */
  errors: number;
}

export interface Cache {
  readonly kind: 'memory' | 'redis';
  /** undefined on miss OR on any cache failure (failures are logged and counted, never thrown). */
  get<T>(key: string): Promise<CacheEntry<T> | undefined>;
  /**
   * Stores the entry only if the cache holds no entry or an older version (atomic compare-and-set);
   * returns whether it stored. ttlSeconds may be fractional (millisecond precision). Never throws.
   */
  setIfNewer<T>(key: string, entry: CacheEntry<T>, ttlSeconds: number): Promise<boolean>;
  /** Removes the key (used to heal after a failed write-through); false when the cache failed. Never throws. */
  delete(key: string): Promise<boolean>;
  stats(): CacheStats;
  /** Resolves when the cache answers (health checks); throws otherwise. */
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Why an entry cannot be stored, or undefined when it can. Both adapters apply the same rules. */
export function invalidEntry(entry: CacheEntry<unknown>, ttlSeconds: number): string | undefined {
  if (!Number.isSafeInteger(entry.version) || entry.version < 0) return 'version must be a non-negative safe integer';
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) return 'ttlSeconds must be a positive number';
  return undefined;
}

/** TTL in whole milliseconds, at least 1. */
export function ttlMs(ttlSeconds: number): number {
  return Math.max(1, Math.ceil(ttlSeconds * 1000));
}
