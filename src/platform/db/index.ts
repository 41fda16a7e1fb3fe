import type { Config } from '../../config.js';
import type { Db } from './db.js';
import { createPgliteDb } from './pglite.js';
import { createPostgresDb } from './postgres.js';

export function createDb(config: Config['database'], onPoolError?: (err: Error) => void): Promise<Db> {
  return config.kind === 'pglite'
    ? createPgliteDb(config.dataDir)
    : createPostgresDb({ ...config, onPoolError });
}
