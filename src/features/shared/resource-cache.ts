// Write-through caching of resources read by id. Keys are tenant-scoped; entries carry the
// resource version and the cache only ever moves forward (compare-and-set on the version), so
// concurrent writers cannot leave an older version cached, and a deleted resource is kept as a
// tombstone at its final version so a late writer of an older version cannot bring it back.
// Failures are the cache adapter's to log and count: here they only mean "read from the database".
import type { Cache } from '../../platform/cache/cache.js';
import { inSpan, tracingEnabled, type TraceContext } from '../../platform/tracing/tracing.js';
import { rememberVersion } from './recent-versions.js';

export type CacheLookup<T> = { hit: true; value: T | null } | { hit: false };

export interface ResourceCache {
  get<T>(tenantId: string, type: string, id: string): Promise<CacheLookup<T>>;
  /** After a committed create or change, or a database read. */
  put<T extends { id: string; version: number }>(tenantId: string, type: string, resource: T): Promise<void>;
  /** After a committed delete that left the resource at `version`. */
  tombstone(tenantId: string, type: string, id: string, version: number): Promise<void>;
}

const keyOf = (tenantId: string, type: string, id: string) => `t:${tenantId}:${type}:${id.toLowerCase()}`;
/** The raw cache key of a resource, for tools that must drop an entry without a ResourceCache (`carebase keys rotate`). */
export const resourceCacheKey = keyOf;

// Keys whose write-through and repair both failed (the cache was down). Until a later delete
// succeeds, this process reads them from the database, and every cache access retries the
// deletes (at most once a second), so the old version is gone as soon as the cache is back.
const MAX_UNHEALED = 10_000;
const HEAL_INTERVAL_MS = 1000;

export function createResourceCache(cache: Cache, ttlSeconds: number, now = () => Date.now()): ResourceCache {
  const unhealed = new Set<string>();
  let lastHeal = Number.NEGATIVE_INFINITY;

  async function heal(): Promise<void> {
    if (unhealed.size === 0 || now() - lastHeal < HEAL_INTERVAL_MS) return;
    lastHeal = now();
    for (const key of [...unhealed]) {
      if (!(await cache.delete(key))) return; // still down: try again later
      unhealed.delete(key);
    }
  }

  function remember(key: string): void {
    // Past the bound the oldest entry is dropped; the TTL still bounds how stale it can be.
    if (unhealed.size >= MAX_UNHEALED) unhealed.delete(unhealed.values().next().value!);
    unhealed.add(key);
  }

  // setIfNewer says false both when a newer version is cached (fine) and when the cache failed;
  // in the second case the previous version must not stay readable, so the key is dropped.
  async function write<T>(key: string, version: number, value: T | null): Promise<void> {
    await heal();
    if (await cache.setIfNewer(key, { version, value }, ttlSeconds)) {
      unhealed.delete(key);
      return;
    }
    const current = await cache.get<T>(key);
    if (current && current.version >= version) return;
    if (await cache.delete(key)) unhealed.delete(key);
    else remember(key);
  }

  return {
    async get<T>(tenantId: string, type: string, id: string): Promise<CacheLookup<T>> {
      await heal();
      const key = keyOf(tenantId, type, id);
      if (unhealed.has(key)) return { hit: false };
      const entry = await cache.get<T>(key);
      return entry ? { hit: true, value: entry.value } : { hit: false };
    },
    put: (tenantId, type, resource) => write(keyOf(tenantId, type, resource.id), resource.version, resource),
    tombstone: (tenantId, type, id, version) => write(keyOf(tenantId, type, id), version, null),
  };
}

const spanAttributes = (operation: string) => ({ 'db.system.name': 'redis', 'db.system': 'redis', 'db.operation.name': operation }) as const;
const GET = spanAttributes('get');
const PUT = spanAttributes('put');
const TOMBSTONE = spanAttributes('tombstone');

/**
 * The cache as a request sees it when it is Redis and tracing is on: for a traced request, each
 * lookup and write-through a CLIENT span (`cache.get`, `cache.put`, `cache.tombstone`) naming no
 * key — keys hold tenant and resource ids. Every request gets one then, traced or not, as with the
 * Db (platform/tracing/traced-db.ts says why). The in-process cache (embedded mode) is not worth a
 * span.
 */
export function tracedResourceCache(rc: ResourceCache, kind: Cache['kind'], trace: TraceContext | undefined): ResourceCache {
  return kind === 'redis' && tracingEnabled() ? new TracedResourceCache(rc, trace) : rc;
}

// A class, not an object of arrow functions: made per request, and tsx (esbuild's keepNames)
// names each such arrow with Object.defineProperty as it is made.
class TracedResourceCache implements ResourceCache {
  constructor(
    private readonly rc: ResourceCache,
    private readonly trace: TraceContext | undefined,
  ) {}

  get<T>(tenantId: string, type: string, id: string): Promise<CacheLookup<T>> {
    const { rc, trace } = this;
    return trace ? inSpan(trace, 'cache.get', GET, () => rc.get<T>(tenantId, type, id), 'client') : rc.get<T>(tenantId, type, id);
  }

  put<T extends { id: string; version: number }>(tenantId: string, type: string, resource: T): Promise<void> {
    const { rc, trace } = this;
    return trace ? inSpan(trace, 'cache.put', PUT, () => rc.put(tenantId, type, resource), 'client') : rc.put(tenantId, type, resource);
  }

  tombstone(tenantId: string, type: string, id: string, version: number): Promise<void> {
    const { rc, trace } = this;
    return trace ? inSpan(trace, 'cache.tombstone', TOMBSTONE, () => rc.tombstone(tenantId, type, id, version), 'client') : rc.tombstone(tenantId, type, id, version);
  }
}

/** For contexts without a cache (seeding, CLI): every lookup misses, writes are dropped. */
export const noResourceCache: ResourceCache = {
  get: async () => ({ hit: false }),
  put: async () => {},
  tombstone: async () => {},
};

/** Reads a resource by id through the cache; a database hit fills the cache. */
export async function readThrough<T extends { id: string; version: number }>(
  ctx: { tenantId: string; cache: ResourceCache },
  type: string,
  id: string,
  load: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const cached = await ctx.cache.get<T>(ctx.tenantId, type, id);
  if (cached.hit) return cached.value ?? undefined;
  const value = await load();
  if (value) {
    rememberVersion(ctx.tenantId, type, value);
    await ctx.cache.put(ctx.tenantId, type, value);
  }
  return value;
}

/** Writes a committed resource through to the cache and passes it on. */
export async function cachePut<T extends { id: string; version: number }>(ctx: { tenantId: string; cache: ResourceCache }, type: string, resource: T): Promise<T> {
  rememberVersion(ctx.tenantId, type, resource);
  await ctx.cache.put(ctx.tenantId, type, resource);
  return resource;
}
