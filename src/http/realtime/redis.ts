// The Redis connections of the real-time layer (server mode): one for commands (tickets,
// presence) and one in subscriber mode (room messages), since a subscribed connection can run
// nothing else. Unlike the cache, these keep ioredis' offline queue with a command timeout: a
// ticket or a join issued while Redis reconnects waits briefly instead of failing at once, and
// still fails (503) rather than hanging when Redis stays away.
import { Redis } from 'ioredis';
import type { Config } from '../../config.js';
import { deploymentName, scopedKey } from '../../platform/deployment-scope.js';

/**
 * `carebase:rt:<scope>:`: instances of one deployment share rooms and tickets; another
 * deployment (or a test database) on the same Redis does not. The scope is named by the database
 * the instances write to (hashed; the URL without its password), as for the events channel.
 */
export function keyPrefix(database: Config['database']): string {
  return `${scopedKey('carebase:rt', deploymentName(database))}:`;
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
