// Embedded adapter: a bounded in-process LRU. A Map keeps insertion order, so re-inserting a key on
// use moves it to the back and the first key is always the least recently used. TTL is honoured
// lazily (an expired entry is dropped when it is next touched, or evicted by LRU pressure), so there
// is no timer to keep the process alive or to clean up.
//
// Values are kept as JSON strings, as in Redis: callers never share a mutable object with the cache
// (a caller mutating what it put in or got out cannot corrupt the cached copy), anything that would
// not survive Redis fails here too, and the memory held is honest (one string per entry).
import type { Logger } from '../log.js';
import { safeError } from '../log.js';
import { invalidEntry, ttlMs, type Cache, type CacheEntry, type CacheStats } from './cache.js';

export interface MemoryCacheOptions {
  /** Upper bound on entries; the least recently used entry is evicted beyond it. */
  maxEntries: number;
  /** Clock in ms (tests). Defaults to Date.now. */
  now?: () => number;
  /** Where serialization failures are reported; optional because nothing else can fail here. */
  log?: Logger;
}

interface Slot {
  version: number;
  json: string;
  expiresAt: number;
}

export function createMemoryCache(o: MemoryCacheOptions): Cache {
  if (!Number.isSafeInteger(o.maxEntries) || o.maxEntries < 1) throw new TypeError('maxEntries must be a positive integer');
  const now = o.now ?? Date.now;
  const slots = new Map<string, Slot>();
  const counts: CacheStats = { hits: 0, misses: 0, errors: 0 };
  let closed = false;

  function fail(op: string, reason: string, err?: unknown): void {
    counts.errors++;
    // Never the key or the value: keys name tenants and resources, values are patient data.
    o.log?.warn({ cache: 'memory', op, reason, ...(err === undefined ? {} : { cause: safeError(err) }) }, 'cache operation failed');
  }

  /** The live slot for key, dropping it if expired. */
  function live(key: string): Slot | undefined {
    const slot = slots.get(key);
    if (slot && slot.expiresAt <= now()) {
      slots.delete(key);
      return undefined;
    }
    return slot;
  }

  return {
    kind: 'memory',

    async get<T>(key: string): Promise<CacheEntry<T> | undefined> {
      if (closed) return undefined;
      const slot = live(key);
      if (!slot) {
        counts.misses++;
        return undefined;
      }
      slots.delete(key);
      slots.set(key, slot);
      counts.hits++;
      return { version: slot.version, value: JSON.parse(slot.json) as T | null };
    },

    async setIfNewer<T>(key: string, entry: CacheEntry<T>, ttlSeconds: number): Promise<boolean> {
      if (closed) return false;
      const invalid = invalidEntry(entry, ttlSeconds);
      if (invalid) {
        fail('setIfNewer', invalid);
        return false;
      }
      let json: string | undefined;
      try {
        json = JSON.stringify(entry.value);
      } catch (err) {
        fail('setIfNewer', 'serialize', err);
        return false;
      }
      if (json === undefined) {
        fail('setIfNewer', 'value is not JSON-serializable');
        return false;
      }
      // Synchronous from here to the set: no other call can interleave, so the check and the
      // write are one atomic step, as the Lua script makes them in Redis.
      const current = live(key);
      if (current && current.version >= entry.version) return false;
      slots.delete(key);
      slots.set(key, { version: entry.version, json, expiresAt: now() + ttlMs(ttlSeconds) });
      while (slots.size > o.maxEntries) {
        const oldest = slots.keys().next();
        if (oldest.done) break;
        slots.delete(oldest.value);
      }
      return true;
    },

    async delete(key: string): Promise<boolean> {
      slots.delete(key);
      return true;
    },

    stats: () => ({ ...counts }),

    async ping(): Promise<void> {
      if (closed) throw new Error('cache is closed');
    },

    async close(): Promise<void> {
      closed = true;
      slots.clear();
    },
  };
}
