// Picks the cache adapter once, at start: Redis when a URL is configured (server mode, shared by
// every process), the in-process LRU otherwise (embedded mode).
import type { Logger } from '../log.js';
import type { Cache } from './cache.js';
import { createMemoryCache } from './memory.js';
import { createRedisCache } from './redis.js';

export type { Cache, CacheEntry, CacheStats } from './cache.js';
export { createMemoryCache } from './memory.js';
export { createRedisCache } from './redis.js';

export interface CreateCacheOptions {
  /** Set: Redis (server mode). Unset: in-process LRU. */
  redisUrl?: string;
  log: Logger;
  /** In-process LRU bound. Default 10,000. */
  maxEntries?: number;
  /** Redis only. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Redis only: a cache read that takes longer is a miss. Default 500 ms. */
  commandTimeoutMs?: number;
}

/** Synchronous: the Redis client connects in the background (call ping() to wait for it or to require it). */
export function createCache(o: CreateCacheOptions): Cache {
  if (o.redisUrl) {
    return createRedisCache({
      url: o.redisUrl,
      log: o.log,
      connectTimeoutMs: o.connectTimeoutMs ?? 2000,
      commandTimeoutMs: o.commandTimeoutMs ?? 500,
    });
  }
  return createMemoryCache({ maxEntries: o.maxEntries ?? 10_000, log: o.log });
}
