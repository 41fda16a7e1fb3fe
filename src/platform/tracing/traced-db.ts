// The Db port as a request or job sees it while tracing is on: each operation (`db.read`,
// `db.autocommit`, `db.tx`) is a CLIENT span under that work's span when the work is traced, on
// either driver, and the Db's own operation when it is not. Made per request or job (http/ctx.ts,
// jobs/registry.ts).
//
// While tracing is on, every request gets one, traced or not: handing the service layer the Db
// itself for most requests and a wrapper for the sampled few gave its call sites two kinds of
// object to call, and that cost more than the wrapper (bench/RESULTS.md, seventeenth session).
// With tracing off it is the Db itself, as always.
import type { Db, OwnerSession, Querier } from '../db/db.js';
import { inSpan, tracingEnabled, type TraceContext } from './tracing.js';

type Operation = 'read' | 'autocommit' | 'tx';

// Made once per driver and operation, not per traced request.
const attributesOf = (driver: Db['kind'], operation: Operation) =>
  ({ 'db.system.name': 'postgresql', 'db.system': 'postgresql', 'carebase.db.driver': driver, 'db.operation.name': operation }) as const;
const ATTRIBUTES = {
  pglite: { read: attributesOf('pglite', 'read'), autocommit: attributesOf('pglite', 'autocommit'), tx: attributesOf('pglite', 'tx') },
  postgres: { read: attributesOf('postgres', 'read'), autocommit: attributesOf('postgres', 'autocommit'), tx: attributesOf('postgres', 'tx') },
};

/** The pool's state and replication lag are the process's, not a request's: not offered here. */
class WorkDb implements Db {
  readonly kind: Db['kind'];

  constructor(
    private readonly db: Db,
    private readonly trace: TraceContext | undefined,
  ) {
    this.kind = db.kind;
  }

  read<T>(tenantId: string, fn: (q: Querier) => Promise<T>): Promise<T> {
    const { db, trace } = this;
    return trace ? inSpan(trace, 'db.read', ATTRIBUTES[db.kind].read, () => db.read(tenantId, fn), 'client') : db.read(tenantId, fn);
  }

  autocommit<T>(tenantId: string, fn: (q: Querier) => Promise<T>): Promise<T> {
    const { db, trace } = this;
    return trace ? inSpan(trace, 'db.autocommit', ATTRIBUTES[db.kind].autocommit, () => db.autocommit(tenantId, fn), 'client') : db.autocommit(tenantId, fn);
  }

  tx<T>(tenantId: string, fn: (q: Querier) => Promise<T>): Promise<T> {
    const { db, trace } = this;
    return trace ? inSpan(trace, 'db.tx', ATTRIBUTES[db.kind].tx, () => db.tx(tenantId, fn), 'client') : db.tx(tenantId, fn);
  }

  withOwner<T>(fn: (s: OwnerSession) => Promise<T>): Promise<T> {
    return this.db.withOwner(fn);
  }

  ping(timeoutMs: number): Promise<void> {
    return this.db.ping(timeoutMs);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

export function tracedDb(db: Db, trace: TraceContext | undefined): Db {
  return tracingEnabled() ? new WorkDb(db, trace) : db;
}
