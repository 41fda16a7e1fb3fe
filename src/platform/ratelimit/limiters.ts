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

export const RATE_LIMIT_GROUPS = ['READ', 'WRITE', 'AUTH', 'EXPORT', 'SYNC', 'REALTIME'] as const;
export type RateLimitGroup = (typeof RATE_LIMIT_GROUPS)[number];

export interface GroupLimit {
  points: number;
  durationSeconds: number;
}

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
  /** Whether `key` has a point left in `group`, without taking one. */
  peek(group: RateLimitGroup, key: string): Promise<Verdict>;
  stats(): { fallbacks: number; rejections: Record<RateLimitGroup, number> };
  close(): Promise<void>;
}

export interface RateLimitersOptions {
  limits: Record<RateLimitGroup, GroupLimit>;
  log: Logger;
  redisUrl?: string;
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
        // One write for every check issued in the same tick (one per request otherwise).
        enableAutoPipelining: true,
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

  async function consume(group: RateLimitGroup, key: string): Promise<Verdict> {
    const l = limiters[group];
    let res: RateLimiterRes;
    try {
      res = await (l.shared ?? l.memory).consume(key);
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
    peek,
    stats: () => ({ fallbacks: counts.fallbacks, rejections: { ...counts.rejections } }),
    async close() {
      redis?.disconnect();
    },
  };
}
