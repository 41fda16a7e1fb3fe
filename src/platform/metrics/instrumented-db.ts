// Times every database operation of the application (db_query_duration_seconds) without the
// adapters knowing: the Db port wrapped once in container.ts. (Spans of database operations are
// tracing/traced-db.ts's, for traced work only.)
import type { Db } from '../db/db.js';
import type { Metrics } from './metrics.js';

export function instrumentDb(db: Db, m: Metrics): Db {
  const timed = <K extends 'read' | 'autocommit' | 'tx'>(operation: K): Db[K] => {
    const run = db[operation] as (t: string, f: never) => Promise<unknown>;
    return (async (tenantId: string, fn: never) => {
      const end = m.dbQueryDuration.startTimer({ operation });
      try {
        const r = await run(tenantId, fn);
        end({ outcome: 'ok' });
        return r;
      } catch (err) {
        end({ outcome: 'error' });
        throw err;
      }
    }) as Db[K];
  };
  return { ...db, read: timed('read'), autocommit: timed('autocommit'), tx: timed('tx') };
}
