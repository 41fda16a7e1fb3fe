// The Redis connections of the real-time layer (server mode): one for commands (tickets,
// presence) and one in subscriber mode (room messages), since a subscribed connection can run
// nothing else. Unlike the cache, these keep ioredis' offline queue with a command timeout: a
// ticket or a join issued while Redis reconnects waits briefly instead of failing at once, and
// still fails (503) rather than hanging when Redis stays away.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Config } from '../../config.js';

/**
 * `carebase:rt:<scope>:`: instances of one deployment share rooms and tickets; another
 * deployment (or a test database) on the same Redis does not. The scope is named by the database
 * the instances write to (hashed; the URL without its password), as for the events channel.
 */
export function keyPrefix(database: Config['database']): string {
  let name: string;
  if (database.kind === 'postgres') {
    const u = new URL(database.url);
    u.password = '';
    name = u.toString();
  } else {
    name = database.dataDir;
  }
  return `carebase:rt:${createHash('sha256').update(name).digest('hex').slice(0, 16)}:`;
}

export function createRealtimeRedis(url: string, name: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 2000),
    connectionName: name,
    disableClientInfo: true,
    lazyConnect: false,
  });
}

/** Closes a client without waiting for a server that may be gone. */
export async function closeRedis(r: Redis): Promise<void> {
  try {
    await Promise.race([r.quit(), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
  } catch {
    // already closed
  }
  r.disconnect();
}
