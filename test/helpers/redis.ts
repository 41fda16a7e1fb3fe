// Keys a test left in the test Redis (TEST_REDIS_URL): job queues under a prefix of their own.
import { Redis } from 'ioredis';
import { inject } from 'vitest';

/** Deletes every key under `<prefix>:` (a test's job queue: jobs, schedules, events). */
export async function deleteKeys(...prefixes: string[]): Promise<void> {
  const url = inject('redisUrl');
  if (url) await deleteRedisKeys(url, ...prefixes);
}

/** deleteKeys on the Redis at url (also for global setup, where inject() is not available). */
export async function deleteRedisKeys(url: string, ...prefixes: string[]): Promise<void> {
  if (prefixes.length === 0) return;
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    for (const p of prefixes) {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${p}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await r.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    r.disconnect();
  }
}
