// Rate limiters per route group (rate-limiter-flexible): Redis in server mode, so a limit holds
// across instances and restarts; in-process in embedded mode.
//
// When Redis fails, the request is limited by an in-process limiter with the same points (per
// instance, so a client spread over N instances gets up to N times its limit meanwhile) — never
// waved through unlimited, and never silently: each fallback is counted (stats().fallbacks, the
// rate_limit_fallbacks_total metric) and logged at most once per 10 s. The Redis client has no
// offline queue (STACK.md: otherwise consume() hangs while Redis is down).
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '../log.js';
import { RATE_LIMIT_GROUPS, type GroupLimit, type RateLimitGroup } from './groups.js';

export { RATE_LIMIT_GROUPS, type GroupLimit, type RateLimitGroup } from './groups.js';

export interface Verdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets (at least 1). */
  resetSeconds: number;
}

export interface RateLimiters {
  /** Takes one point of `key` in `group`. */
  consume(group: RateLimitGroup, key: string): Promise<Verdict>;
  /**
   * Takes one point of `key` in `group` from this instance's lease of it, without waiting: what
   * consume() would answer, when the lease has a point left and no take from Redis is in flight;
   * otherwise undefined, and the caller calls consume(). (Most requests of a busy client: no
   * promise, no microtask.)
   */
  consumeLeased(group: RateLimitGroup, key: string): Verdict | undefined;
  /** Whether `key` has a point left in `group`, without taking one. */
  peek(group: RateLimitGroup, key: string): Promise<Verdict>;
  stats(): { fallbacks: number; rejections: Record<RateLimitGroup, number> };
  /** Resolves once Redis is connected (or at once in memory mode), false after timeoutMs without it. */
  connected(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface RateLimitersOptions {
  limits: Record<RateLimitGroup, GroupLimit>;
  log: Logger;
  redisUrl?: string;
}

/**
 * Points a lease takes at most (see consumeShared). A chunk is also at most 1 % of the limit, so
 * what a lease may over-hold stays within 1 % of it per instance; the cap only matters for limits
 * of 10,000 points or more. At 16 a busy client's 16th request went to Redis, and that round trip
 * (its script, and the write that wakes Redis on two shared cores) was most of what rate limiting
 * cost a cached read.
 */
const MAX_CHUNK = 100;
/** Keys remembered per group and instance for leases (oldest forgotten first). */
const MAX_LEASES = 10_000;

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_LEASES) map.delete(map.keys().next().value!);
}

const verdict = (res: RateLimiterRes, limit: number, allowed: boolean): Verdict => ({
  allowed,
  limit,
  remaining: Math.max(0, res.remainingPoints),
  resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
});

export function createRateLimiters(o: RateLimitersOptions): RateLimiters {
  const redis = o.redisUrl
    ? new Redis(o.redisUrl, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        commandTimeout: 500,
        retryStrategy: (n) => Math.min(n * 100, 2000),
        connectionName: 'carebase-rate-limit',
        disableClientInfo: true,
        // No auto-pipelining (one write per command, not one per tick). With ioredis 6 it doubled
        // what survives each young-generation GC on cached reads (15 % of what was allocated
        // instead of 8 %: pipelines and what waits on them), and a cached read measured 31 % more
        // API CPU and 14 % fewer req/s than without it (bench/RESULTS.md, eighth session).
      })
    : undefined;
  redis?.on('error', () => {}); // failures surface (and are counted) where a limiter is used
  const counts = { fallbacks: 0, rejections: Object.fromEntries(RATE_LIMIT_GROUPS.map((g) => [g, 0])) as Record<RateLimitGroup, number> };
  let lastLog = 0;

  const make = (group: RateLimitGroup) => {
    const { points, durationSeconds: duration } = o.limits[group];
    const memory = new RateLimiterMemory({ keyPrefix: `rl:${group}`, points, duration });
    const shared: RateLimiterAbstract | undefined = redis ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `carebase:rl:${group}`, points, duration }) : undefined;
    return { points, memory, shared };
  };
  const limiters = Object.fromEntries(RATE_LIMIT_GROUPS.map((g) => [g, make(g)])) as Record<RateLimitGroup, ReturnType<typeof make>>;

  function fellBack(group: RateLimitGroup, err: unknown): void {
    counts.fallbacks++;
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      o.log.warn({ err: { message: (err as Error)?.message }, group, fallbacks: counts.fallbacks }, 'rate limit: Redis unavailable; limiting with this instance\'s in-memory limiter');
    }
  }

  // Leases (Redis only): a busy key takes `chunk` points from Redis at once and spends them here,
  // so a client making hundreds of requests a second costs Redis one call per chunk instead of
  // one per request (that round trip was most of the limiter's cost on a cached read). Exactness
  // near the limit is kept: a chunk is taken only while Redis says more than a chunk is left,
  // otherwise one point per request. What a lease may over-hold is at most `chunk` points per
  // key and instance, for one window. One take per key is in flight at a time (requests arriving
  // meanwhile wait for it, then spend its lease), so concurrent requests never take chunks they
  // cannot use.
  // Per group, by key: no string is built per request to find a key's lease.
  type Lease = { left: number; remaining: number; resetAt: number };
  const perGroup = <V>() => Object.fromEntries(RATE_LIMIT_GROUPS.map((g) => [g, new Map<string, V>()])) as Record<RateLimitGroup, Map<string, V>>;
  const leases = perGroup<Lease>();
  const taking = perGroup<Promise<unknown>>();
  const lastRemaining = perGroup<number>();
  const chunkOf = (group: RateLimitGroup) => Math.min(MAX_CHUNK, Math.max(1, Math.floor(o.limits[group].points / 100)));

  /** A point of `key`'s lease in `group`, if it has one left in its window. */
  function spendLease(group: RateLimitGroup, key: string, now: number): Verdict | undefined {
    const lease = leases[group].get(key);
    if (!lease || lease.left <= 0 || now >= lease.resetAt) return undefined;
    lease.left--;
    return { allowed: true, limit: limiters[group].points, remaining: lease.remaining + lease.left, resetSeconds: Math.max(1, Math.ceil((lease.resetAt - now) / 1000)) };
  }

  function consumeLeased(group: RateLimitGroup, key: string): Verdict | undefined {
    if (!limiters[group].shared) return undefined;
    return taking[group].has(key) ? undefined : spendLease(group, key, Date.now());
  }

  async function consumeShared(group: RateLimitGroup, key: string, shared: RateLimiterAbstract): Promise<Verdict> {
    const points = limiters[group].points;
    const inFlight = taking[group];
    for (let pending = inFlight.get(key); pending; pending = inFlight.get(key)) await pending.catch(() => {});
    const now = Date.now();
    const spent = spendLease(group, key, now);
    if (spent) return spent;
    leases[group].delete(key);
    const chunk = chunkOf(group);
    const take = chunk > 1 && (lastRemaining[group].get(key) ?? 0) > chunk ? chunk : 1;
    let res: RateLimiterRes;
    const took = shared.consume(key, take);
    inFlight.set(key, took);
    try {
      res = await took;
    } catch (err) {
      inFlight.delete(key);
      if (!(err instanceof RateLimiterRes) || take === 1) throw err;
      // Another instance spent the points meanwhile: give the chunk back and take just one.
      await shared.reward(key, take);
      lastRemaining[group].delete(key);
      return consumeShared(group, key, shared);
    }
    inFlight.delete(key);
    remember(lastRemaining[group], key, res.remainingPoints);
    if (take > 1) remember(leases[group], key, { left: take - 1, remaining: res.remainingPoints, resetAt: now + res.msBeforeNext });
    return { ...verdict(res, points, true), remaining: res.remainingPoints + take - 1 };
  }

  async function consume(group: RateLimitGroup, key: string): Promise<Verdict> {
    const l = limiters[group];
    let res: RateLimiterRes;
    try {
      if (l.shared) return await consumeShared(group, key, l.shared);
      res = await l.memory.consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        counts.rejections[group]++;
        return verdict(err, l.points, false);
      }
      fellBack(group, err);
      try {
        res = await l.memory.consume(key);
      } catch (inner) {
        if (!(inner instanceof RateLimiterRes)) throw inner;
        counts.rejections[group]++;
        return verdict(inner, l.points, false);
      }
    }
    return verdict(res, l.points, true);
  }

  async function peek(group: RateLimitGroup, key: string): Promise<Verdict> {
    const l = limiters[group];
    let res: RateLimiterRes | null;
    try {
      res = await (l.shared ?? l.memory).get(key);
    } catch (err) {
      fellBack(group, err);
      res = await l.memory.get(key);
    }
    if (!res) return { allowed: true, limit: l.points, remaining: l.points, resetSeconds: o.limits[group].durationSeconds };
    return verdict(res, l.points, res.consumedPoints < l.points);
  }

  return {
    consume,
    consumeLeased,
    peek,
    stats: () => ({ fallbacks: counts.fallbacks, rejections: { ...counts.rejections } }),
    connected(timeoutMs) {
      if (!redis || redis.status === 'ready') return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        redis.once('ready', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
    async close() {
      redis?.disconnect();
    },
  };
}
