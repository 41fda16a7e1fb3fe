// The Db port as a traced request or job sees it: each operation (`db.read`, `db.autocommit`,
// `db.tx`) is a CLIENT span under that work's span, on either driver. Made per traced request or
// job (http/ctx.ts, jobs/registry.ts); untraced work uses the Db as it is and pays nothing.
import type { Db } from '../db/db.js';
import { inSpan, type TraceContext } from './tracing.js';

export function tracedDb(db: Db, trace: TraceContext | undefined): Db {
  if (!trace) return db;
  const traced = <K extends 'read' | 'autocommit' | 'tx'>(operation: K): Db[K] => {
    const name = `db.${operation}`;
    const attributes = { 'db.system.name': 'postgresql', 'db.system': 'postgresql', 'carebase.db.driver': db.kind, 'db.operation.name': operation } as const;
    const run = db[operation] as (tenantId: string, fn: unknown) => Promise<unknown>;
    return ((tenantId: string, fn: unknown) => inSpan(trace, name, attributes, () => run(tenantId, fn), 'client')) as Db[K];
  };
  return { ...db, read: traced('read'), autocommit: traced('autocommit'), tx: traced('tx') };
}
