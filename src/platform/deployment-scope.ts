// One deployment's instances share Redis state (job queue, events channel, real-time keys,
// circuits); another deployment, or a test database, on the same Redis must not see it. What
// names a deployment is the database its instances write to.
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';

/** The database the instances write to: its URL without the password (hashed, never logged), or DATA_DIR. */
export function deploymentName(database: Config['database']): string {
  if (database.kind !== 'postgres') return database.dataDir;
  const u = new URL(database.url);
  u.password = '';
  return u.toString();
}

/** `<namespace>:<16 hex>`: a hash of the name, so a database URL never appears in Redis. */
export function scopedKey(namespace: string, name: string): string {
  return `${namespace}:${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}
