// `carebase keys rotate`: brings every stored encrypted value under the primary key of
// ENCRYPTION_KEYS, online, in batches, while servers keep serving with the same ring (which still
// holds the old keys, so reads work throughout). What it covers:
//
// - patients' encrypted identifiers: re-wrapped (patients.rotation);
// - patients' identifiers of a listed system still in plaintext: encrypted;
// - idempotency records: not rewritten (the application role may not update them, and they
//   expire 24 hours after they were recorded); counted, so the report says how long the old keys
//   are still needed for their replays.
//
// A cache entry may still hold a patient's previous stored form until CACHE_TTL_SECONDS after the
// run (a server can read the row just before it is rewritten and cache it after); with Redis the
// run also drops the entry of every rewritten patient. So an old key leaves the ring only after a
// run that reports `ok`, and once both CACHE_TTL_SECONDS and `idempotencyRecords.lastExpiresAt`
// have passed.
import type { FieldKeys } from '../../context.js';
import { rotateAll, type RotationReport, type RotationSummary } from '../../platform/crypto/index.js';
import type { Cache } from '../../platform/cache/cache.js';
import type { Db } from '../../platform/db/db.js';
import { recordsNotUnderKey } from '../idempotency/idempotency.js';
import { identifiersRotationTarget, sealPlaintextIdentifiers, type OnRewritten, type SealReport } from '../patients/patients.rotation.js';
import { resourceCacheKey } from '../shared/resource-cache.js';

export interface RotateKeysOptions {
  /** Rows per batch (1-10,000). Default 500. */
  readonly batchSize?: number;
  /** Pause between batches, to leave room for live traffic. */
  readonly pauseMs?: number;
  readonly signal?: AbortSignal;
  /** The shared cache (Redis): entries of rewritten patients are dropped from it. */
  readonly cache?: Cache;
  readonly onBatch?: (progress: RotationReport) => void;
  readonly now?: () => Date;
}

export interface RotateKeysSummary extends RotationSummary {
  /** Identifiers of a listed system found in plaintext and encrypted now. */
  readonly plaintextIdentifiers: SealReport;
  readonly idempotencyRecords: {
    readonly underOtherKeys: number;
    readonly plaintext: number;
    /** Until then the keys they are under must stay in the ring (null: none). */
    readonly lastExpiresAt: string | null;
  };
  /** With a shared cache: entries of rewritten patients dropped, and drops that failed (those live until CACHE_TTL_SECONDS). */
  readonly cacheEntries: { readonly dropped: number; readonly failed: number } | null;
  /** Complete, nothing failed, no concurrent change left a row behind: every value is under the primary key. */
  readonly ok: boolean;
}

export async function rotateKeys(db: Db, keys: FieldKeys, tenantIds: readonly string[], o: RotateKeysOptions = {}): Promise<RotateKeysSummary> {
  const cache = o.cache;
  const dropped = { dropped: 0, failed: 0 };
  const evict: OnRewritten | undefined =
    cache &&
    (async (tenantId, id) => {
      if (await cache.delete(resourceCacheKey(tenantId, 'patients', id))) dropped.dropped++;
      else dropped.failed++;
    });
  const rotation = await rotateAll(keys, [identifiersRotationTarget(db, tenantIds, keys.primaryKeyId, evict)], {
    ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
    ...(o.pauseMs !== undefined ? { pauseMs: o.pauseMs } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onBatch ? { onBatch: o.onBatch } : {}),
  });
  const plaintextIdentifiers = rotation.complete
    ? await sealPlaintextIdentifiers(db, keys, tenantIds, { ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}), ...(o.signal ? { signal: o.signal } : {}), ...(evict ? { onRewritten: evict } : {}) })
    : { scanned: 0, sealed: 0, conflicts: 0, complete: false };
  const now = (o.now ?? (() => new Date()))();
  let underOtherKeys = 0;
  let plaintext = 0;
  let last: Date | undefined;
  for (const tenantId of tenantIds) {
    const r = await db.read(tenantId, (q) => recordsNotUnderKey(q, tenantId, keys.primaryKeyId, now));
    underOtherKeys += r.underOtherKeys;
    plaintext += r.plaintext;
    if (r.lastExpiresAt && (!last || r.lastExpiresAt > last)) last = r.lastExpiresAt;
  }
  return {
    ...rotation,
    plaintextIdentifiers,
    idempotencyRecords: { underOtherKeys, plaintext, lastExpiresAt: last ? last.toISOString() : null },
    cacheEntries: cache ? dropped : null,
    ok: rotation.complete && rotation.failed === 0 && rotation.conflicts === 0 && plaintextIdentifiers.complete && plaintextIdentifiers.conflicts === 0,
  };
}
