// Times every database operation of the application (db_query_duration_seconds) without the
// adapters knowing: the Db port wrapped once in container.ts. When tracing is on, each operation
// is also a span (`db.tx`, `db.read`, `db.autocommit`) under the request or job that made it, on
// either driver: PGlite has no instrumentation of its own, and on PostgreSQL the span groups the
// pg spans of one transaction (BEGIN, the tenant setting, the statements, COMMIT).
import type { Db } from '../db/db.js';
import { inChildSpan } from '../tracing/tracing.js';
import type { Metrics } from './metrics.js';

export function instrumentDb(db: Db, m: Metrics): Db {
  const timed = <K extends 'read' | 'autocommit' | 'tx'>(operation: K): Db[K] => {
    const name = `db.${operation}`;
    const attributes = { 'db.system.name': 'postgresql', 'db.system': 'postgresql', 'carebase.db.driver': db.kind, 'db.operation.name': operation } as const;
    return (async (tenantId: string, fn: never) =>
      inChildSpan(name, attributes, async () => {
        const end = m.dbQueryDuration.startTimer({ operation });
        try {
          const r = await (db[operation] as (t: string, f: never) => Promise<unknown>)(tenantId, fn);
          end({ outcome: 'ok' });
          return r;
        } catch (err) {
          end({ outcome: 'error' });
          throw err;
        }
      })) as Db[K];
  };
  return { ...db, read: timed('read'), autocommit: timed('autocommit'), tx: timed('tx') };
}
