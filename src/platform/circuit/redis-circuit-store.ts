// Server mode: circuit state shared through Redis.
//
// Keys, under `carebase:cb:<scope hash>:` (one deployment's instances share a scope):
//   <name>:open    {"until","since","failure"}  PX until the half-open time: it expires by itself
//   <name>:closed  epoch ms of the last recovery, remembered for an hour
//   <name>:forced  {"since","by"}                no TTL: held until an operator sets auto
//
// Like the cache, the client fails fast: no offline queue and a short command timeout, so a Redis
// outage costs a call at most `commandTimeoutMs` (usually nothing: "not connected" is immediate)
// and the circuit decides on this instance's breaker meanwhile (the caller counts and logs that).
import { scopedKey } from '../deployment-scope.js';
import { Redis } from 'ioredis';
import { CLOSED_MEMORY_MS, type CircuitStore, type SharedCircuitState } from './circuit-store.js';

export interface RedisCircuitStoreOptions {
  url: string;
  /** Instances with the same scope share circuits (default in container.ts: the database they use). */
  scope: string;
  /** The most one read or write may add to a call while Redis is slow. Default 250 ms. */
  commandTimeoutMs?: number;
}

/** `carebase:cb:<16 hex>:` — a hash, so the scope (a database URL) never appears in Redis. */
export function circuitKeyPrefix(scope: string): string {
  return `${scopedKey('carebase:cb', scope)}:`;
}

function parse<T>(raw: string | null | undefined, valid: (v: unknown) => v is T): T | undefined {
  if (!raw) return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    return valid(v) ? v : undefined;
  } catch {
    return undefined; // a foreign or corrupt value reads as absent, never as a crash
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isOpen = (v: unknown): v is NonNullable<SharedCircuitState['open']> =>
  isObject(v) && typeof v.until === 'number' && typeof v.since === 'number' && (v.failure === null || typeof v.failure === 'string');
const isForced = (v: unknown): v is NonNullable<SharedCircuitState['forced']> => isObject(v) && typeof v.since === 'number' && typeof v.by === 'string';
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export function createRedisCircuitStore(o: RedisCircuitStoreOptions): CircuitStore {
  const prefix = circuitKeyPrefix(o.scope);
  const redis = new Redis(o.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: o.commandTimeoutMs ?? 250,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 2000),
    connectionName: 'carebase-circuits',
    disableClientInfo: true,
  });
  redis.on('error', () => {}); // failures surface (and are counted) where the store is used
  // Right after start the connection is still being made: the first operations wait for its
  // outcome (at most the command timeout) instead of failing for want of a socket. Once the first
  // attempt has succeeded or failed, an unconnected client fails at once.
  const commandTimeout = o.commandTimeoutMs ?? 250;
  let firstAttempt: Promise<void> | undefined = new Promise<void>((resolve) => {
    const settle = () => {
      firstAttempt = undefined;
      resolve();
    };
    redis.once('ready', settle);
    redis.once('error', settle);
    redis.once('end', settle);
  });
  const connected = async () => {
    if (firstAttempt) await Promise.race([firstAttempt, new Promise((resolve) => setTimeout(resolve, commandTimeout).unref())]);
  };
  const key = (name: string, part: 'open' | 'closed' | 'forced') => `${prefix}${name}:${part}`;

  return {
    shared: true,
    async read(names) {
      if (names.length === 0) return new Map();
      await connected();
      const raw = await redis.mget(names.flatMap((n) => [key(n, 'open'), key(n, 'closed'), key(n, 'forced')]));
      return new Map(
        names.map((name, i) => {
          const open = parse(raw[i * 3], isOpen);
          const closedAt = parse(raw[i * 3 + 1], isTime);
          const forced = parse(raw[i * 3 + 2], isForced);
          return [name, { ...(open ? { open } : {}), ...(closedAt !== undefined ? { closedAt } : {}), ...(forced ? { forced } : {}) }];
        }),
      );
    },
    async markOpen(name, open) {
      await connected();
      await redis.set(key(name, 'open'), JSON.stringify(open), 'PX', Math.max(1, Math.round(open.until - Date.now())));
    },
    async markClosed(name, at) {
      await connected();
      const replies = await redis.multi().del(key(name, 'open')).set(key(name, 'closed'), String(at), 'PX', CLOSED_MEMORY_MS).exec();
      const failed = replies?.find(([err]) => err)?.[0];
      if (failed || !replies) throw failed ?? new Error('circuit store: transaction discarded');
    },
    async setForced(name, forced) {
      await connected();
      if (forced) await redis.set(key(name, 'forced'), JSON.stringify(forced));
      else await redis.del(key(name, 'forced'));
    },
    async close() {
      // QUIT when Redis answers, without waiting for one that is gone.
      await Promise.race([redis.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
      redis.disconnect();
    },
  };
}
