// Server adapter: Redis through ioredis, shared by every API and worker process.
//
// Fail fast, heal in the background. With ioredis' defaults a command issued while Redis is down
// waits in the offline queue (and in-flight commands are retried 20 times), so one Redis outage
// turns every cached read into a hung request (STACK.md's offline-queue trap). Here the offline
// queue is off, retries per request are few and every command has a timeout: during an outage an
// operation fails in microseconds (not connected) or at worst after commandTimeoutMs (hung
// server), is counted and logged, and the caller falls back to the database. The client keeps
// reconnecting on its own; the first operation after it is back simply succeeds.
//
// Storage: one hash per key, `carebase:<key>` → { v: version, d: JSON of the value ("null" for a
// tombstone) }, with a PEXPIRE TTL. A hash lets the compare-and-set script read the version
// without parsing the value, and get() read both fields in one HMGET.
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { safeError } from '../log.js';
import { invalidEntry, ttlMs, type Cache, type CacheEntry, type CacheStats } from './cache.js';

export interface RedisCacheOptions {
  url: string;
  log: Logger;
  /** How long one connection attempt may take (TCP + handshake). */
  connectTimeoutMs: number;
  /** How long one command may wait for its reply (a hung or overloaded Redis). */
  commandTimeoutMs: number;
  /** Prepended to every key so Carebase can share a Redis. Default 'carebase:'. */
  keyPrefix?: string;
  /** Ceiling of the reconnect back-off. Default 2000 ms. */
  maxReconnectDelayMs?: number;
  /**
   * At most one failure line per operation per interval; the line carries how many failures were
   * not logged since the previous one. Counting (stats().errors) is never throttled. Default 1000
   * ms; 0 logs every failure. Without it an outage at thousands of requests per second would turn
   * into as many log lines per second.
   */
  logIntervalMs?: number;
}

// Stores value + version + TTL only when the key is absent (or expired) or holds an older version.
// One script, so the read and the write are atomic on the server: two writers racing can never
// leave the older version in place. Returns 1 when it stored, 0 when it refused.
const SET_IF_NEWER_LUA = `
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

type ScriptedRedis = Redis & {
  carebaseSetIfNewer(key: string, version: string, json: string, ttlMs: string): Promise<number>;
};

export function createRedisCache(o: RedisCacheOptions): Cache {
  const prefix = o.keyPrefix ?? 'carebase:';
  const maxDelay = o.maxReconnectDelayMs ?? 2000;
  const logInterval = o.logIntervalMs ?? 1000;
  const counts: CacheStats = { hits: 0, misses: 0, errors: 0 };
  let closed = false;
  let wasDown = false;

  const redis = new Redis(o.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: o.connectTimeoutMs,
    commandTimeout: o.commandTimeoutMs,
    // Keep trying for ever, backing off to maxDelay: the cache heals on its own.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), maxDelay),
    connectionName: 'carebase-cache',
    // No auto-pipelining: it cost a cached read ~30 % more API CPU, not less (see limiters.ts).
    // No CLIENT SETINFO round trip at every (re)connect; also spares servers that reject it.
    disableClientInfo: true,
  }) as ScriptedRedis;
  // EVALSHA with a transparent EVAL fallback on NOSCRIPT (after a Redis restart or failover).
  redis.defineCommand('carebaseSetIfNewer', { numberOfKeys: 1, lua: SET_IF_NEWER_LUA });

  const throttle = new Map<string, { lastAt: number; suppressed: number }>();
  function logFailure(op: string, err: unknown, reason?: string): void {
    const now = Date.now();
    const t = throttle.get(op) ?? { lastAt: -Infinity, suppressed: 0 };
    throttle.set(op, t);
    if (now - t.lastAt < logInterval) {
      t.suppressed++;
      return;
    }
    const suppressed = t.suppressed;
    t.lastAt = now;
    t.suppressed = 0;
    // Never the key or the value: keys name tenants and resources, values are patient data.
    // safeError keeps only type, code and stack; describe() adds our own words for the cause.
    o.log.warn(
      { cache: 'redis', op, reason: reason ?? describe(err), ...(err === undefined ? {} : { cause: safeError(err) }), ...(suppressed ? { suppressed } : {}) },
      'cache operation failed',
    );
  }
  function fail(op: string, err: unknown, reason?: string): void {
    counts.errors++;
    logFailure(op, err, reason);
  }

  // An 'error' listener is mandatory (ioredis would print unhandled errors to stderr); during an
  // outage it fires on every reconnect attempt, hence the same throttle.
  redis.on('error', (err: unknown) => {
    if (closed) return;
    wasDown = true;
    logFailure('connection', err);
  });
  redis.on('close', () => {
    if (!closed) wasDown = true;
  });
  redis.on('ready', () => {
    if (!wasDown) return;
    wasDown = false;
    o.log.info({ cache: 'redis' }, 'cache connection restored');
  });

  function waitReady(timeoutMs: number): Promise<void> {
    if (redis.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', onReady);
        reject(new Error(`redis not ready after ${timeoutMs} ms (status ${redis.status})`));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      redis.once('ready', onReady);
    });
  }

  return {
    kind: 'redis',

    async get<T>(key: string): Promise<CacheEntry<T> | undefined> {
      if (closed) return undefined;
      let reply: (string | null)[];
      try {
        reply = await redis.hmget(prefix + key, 'v', 'd');
      } catch (err) {
        fail('get', err);
        return undefined;
      }
      const [v, d] = reply;
      if (v == null || d == null) {
        counts.misses++;
        return undefined;
      }
      const version = Number(v);
      let value: T | null;
      try {
        if (!Number.isSafeInteger(version)) throw new TypeError('stored version is not an integer');
        value = JSON.parse(d) as T | null;
      } catch (err) {
        // Not something this adapter wrote: drop it so the next fill replaces it.
        fail('get', err, 'corrupt entry');
        await redis.del(prefix + key).catch(() => {});
        return undefined;
      }
      counts.hits++;
      return { version, value };
    },

    async setIfNewer<T>(key: string, entry: CacheEntry<T>, ttlSeconds: number): Promise<boolean> {
      if (closed) return false;
      const invalid = invalidEntry(entry, ttlSeconds);
      if (invalid) {
        fail('setIfNewer', undefined, invalid);
        return false;
      }
      let json: string | undefined;
      try {
        json = JSON.stringify(entry.value);
      } catch (err) {
        fail('setIfNewer', err, 'value is not JSON-serializable');
        return false;
      }
      if (json === undefined) {
        fail('setIfNewer', undefined, 'value is not JSON-serializable');
        return false;
      }
      try {
        const stored = await redis.carebaseSetIfNewer(prefix + key, String(entry.version), json, String(ttlMs(ttlSeconds)));
        return stored === 1;
      } catch (err) {
        fail('setIfNewer', err);
        return false;
      }
    },

    async delete(key: string): Promise<boolean> {
      if (closed) return false;
      try {
        await redis.del(prefix + key);
        return true;
      } catch (err) {
        fail('delete', err);
        return false;
      }
    },

    stats: () => ({ ...counts }),

    async ping(timeoutMs: number): Promise<void> {
      if (closed) throw new Error('cache is closed');
      const started = Date.now();
      await waitReady(timeoutMs);
      const left = Math.max(1, timeoutMs - (Date.now() - started));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`redis ping timed out after ${timeoutMs} ms`)), left);
      });
      try {
        await Promise.race([redis.ping(), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (redis.status === 'ready') {
        try {
          await redis.quit();
          return;
        } catch {
          // fall through: drop the connection instead
        }
      }
      redis.disconnect();
    },
  };
}

/** Our own words for an ioredis failure (their messages are ours to read, not to log verbatim). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown';
  if (err.name === 'MaxRetriesPerRequestError') return 'connection lost during command';
  if (err.message === 'Command timed out') return 'command timed out';
  if (err.message.includes('enableOfflineQueue')) return 'not connected';
  if (err.message.startsWith('Connection is closed')) return 'connection closed';
  if (err.name === 'ReplyError') {
    // Redis error replies start with an upper-case code (WRONGTYPE, OOM, NOSCRIPT, READONLY...).
    const code = /^[A-Z]+/.exec(err.message)?.[0];
    return code ? `redis error ${code}` : 'redis error';
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return `connection error ${code}`;
  return 'error';
}
