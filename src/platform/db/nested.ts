import type { Db, Querier } from './db.js';

/**
 * A Db whose operations run inside an outer transaction (inner transactions become savepoints),
 * so several service calls can commit or roll back together — e.g. seeding a tenant atomically
 * through the same service functions the API uses.
 */
export function withinTransaction(outer: Querier, base: Db): Db {
  return {
    kind: base.kind,
    read: (_tenantId, fn) => fn(outer),
    autocommit: (_tenantId, fn) => fn(outer),
    tx: (_tenantId, fn) => outer.transaction((tx) => fn(tx as unknown as Querier)),
    withOwner: (fn) => base.withOwner(fn),
    ping: (ms) => base.ping(ms),
    close: async () => {},
  };
}
