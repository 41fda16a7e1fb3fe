// Picks the job queue adapter once, at start: BullMQ with REDIS_URL, the in-process runner without.
import type { Config } from '../../config.js';
import { deploymentName, scopedKey } from '../deployment-scope.js';
import type { JobQueue, JobQueueOptions } from './job-queue.js';
import { createMemoryQueue } from './memory-queue.js';

export type { JobQueue } from './job-queue.js';

/**
 * `carebase:jobs:<scope>`: the instances of one deployment share one queue, another deployment
 * (or a test database) on the same Redis does not. The scope is the database the instances write
 * to (hashed; the URL without its password), as for the events channel and the real-time keys.
 * JOBS_PREFIX overrides it when instances reach the one database by different URLs.
 */
export function jobQueuePrefix(database: Config['database']): string {
  return scopedKey('carebase:jobs', deploymentName(database));
}

export async function createJobQueue(o: JobQueueOptions & { redisUrl?: string | undefined; prefix: string }): Promise<JobQueue> {
  if (!o.redisUrl) return createMemoryQueue(o);
  // BullMQ (and its Lua scripts) load only in server mode.
  const { createBullmqQueue } = await import('./bullmq-queue.js');
  return createBullmqQueue({ ...o, url: o.redisUrl });
}
