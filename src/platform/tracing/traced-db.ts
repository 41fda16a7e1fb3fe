// The Db port as a traced request or job sees it: each operation (`db.read`, `db.autocommit`,
// `db.tx`) is a CLIENT span under that work's span, on either driver. Made per traced request or
// job (http/ctx.ts, jobs/registry.ts); untraced work uses the Db as it is and pays nothing.
import type { Db } from '../db/db.js';
import { inSpan, type TraceContext } from './tracing.js';

type Operation = 'read' | 'autocommit' | 'tx';

// Made once per driver and operation, not per traced request.
const attributesOf = (driver: Db['kind'], operation: Operation) =>
  ({ 'db.system.name': 'postgresql', 'db.system': 'postgresql', 'carebase.db.driver': driver, 'db.operation.name': operation }) as const;
const ATTRIBUTES = {
  pglite: { read: attributesOf('pglite', 'read'), autocommit: attributesOf('pglite', 'autocommit'), tx: attributesOf('pglite', 'tx') },
  postgres: { read: attributesOf('postgres', 'read'), autocommit: attributesOf('postgres', 'autocommit'), tx: attributesOf('postgres', 'tx') },
};

function traced<K extends Operation>(db: Db, trace: TraceContext, operation: K): Db[K] {
  const name = `db.${operation}`;
  const attributes = ATTRIBUTES[db.kind][operation];
  const run = db[operation] as (tenantId: string, fn: unknown) => Promise<unknown>;
  return ((tenantId: string, fn: unknown) => inSpan(trace, name, attributes, () => run(tenantId, fn), 'client')) as Db[K];
}

export function tracedDb(db: Db, trace: TraceContext | undefined): Db {
  if (!trace) return db;
  return { ...db, read: traced(db, trace, 'read'), autocommit: traced(db, trace, 'autocommit'), tx: traced(db, trace, 'tx') };
}
