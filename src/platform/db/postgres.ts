// Server adapter: PostgreSQL through a pg connection pool.
import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { APP_ROLE, withTimeout, type Db, type Querier } from './db.js';
import { isDatabaseUnavailable } from './errors.js';

export interface PostgresOptions {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  onPoolError?: (err: Error) => void;
}

// The tenant a pooled connection is currently scoped to (session level). Reads skip the
// set_config round trip when it already matches; every checkout goes through scope(), so a
// connection is never used with another tenant's setting.
const SCOPE = Symbol('carebase.tenant');
// One drizzle handle per pooled connection, kept with it, so statements prepared through it
// (see versioned-repo's findLive) are reused for the life of the connection.
const HANDLE = Symbol('carebase.drizzle');
type ScopedClient = pg.PoolClient & { [SCOPE]?: string; [HANDLE]?: NodePgDatabase };

export async function createPostgresDb(o: PostgresOptions): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.poolSize,
    connectionTimeoutMillis: o.connectTimeoutMs,
    statement_timeout: o.statementTimeoutMs,
    idle_in_transaction_session_timeout: Math.max(o.statementTimeoutMs * 2, 10_000),
    application_name: 'carebase',
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => o.onPoolError?.(err));

  async function checkout(tenantId: string): Promise<ScopedClient> {
    const client: ScopedClient = await pool.connect();
    if (client[SCOPE] === tenantId) return client;
    try {
      await client.query("select set_config('role', $1, false), set_config('app.tenant_id', $2, false)", [APP_ROLE, tenantId]);
      client[SCOPE] = tenantId;
      return client;
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  async function run<T>(tenantId: string, inTx: boolean, fn: (q: Querier) => Promise<T>): Promise<T> {
    const client = await checkout(tenantId);
    let broken: Error | undefined;
    try {
      const db = (client[HANDLE] ??= drizzle({ client }));
      if (!inTx) return await fn(db as unknown as Querier);
      // checkout() scoped the session to this tenant, so the transaction needs no set_config of
      // its own (one round trip less per write); a connection whose state is in doubt is discarded.
      return await db.transaction((tx) => fn(tx as unknown as Querier));
    } catch (err) {
      // A lost connection leaves its session state unknown: discard it. Statement errors and the
      // application's own errors leave it usable (the transaction, if any, was rolled back).
      if (isDatabaseUnavailable(err)) broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  return {
    kind: 'postgres',
    read: (tenantId, fn) => run(tenantId, false, fn),
    autocommit: (tenantId, fn) => run(tenantId, false, fn),
    tx: (tenantId, fn) => run(tenantId, true, fn),
    async withOwner(fn) {
      const client = new pg.Client({ connectionString: o.url, connectionTimeoutMillis: o.connectTimeoutMs, application_name: 'carebase-owner' });
      await client.connect();
      try {
        return await fn({
          exec: async (text) => void (await client.query(text)),
          query: async <T extends Record<string, unknown>>(text: string, params?: unknown[]) =>
            (await client.query<T>(text, params)).rows,
        });
      } finally {
        await client.end();
      }
    },
    poolStats: () => ({ inUse: pool.totalCount - pool.idleCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async ping(timeoutMs) {
      await withTimeout(pool.query('select 1'), timeoutMs, 'database ping');
    },
    async replicationLagSeconds(timeoutMs) {
      // The time since the last replayed commit only counts while WAL received is still waiting
      // to be replayed: a standby of an idle primary is not behind.
      const r = await withTimeout(
        pool.query<{ lag: number | null }>(`select case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
          else extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 end as lag where pg_is_in_recovery()`),
        timeoutMs,
        'replication lag',
      );
      return r.rows[0]?.lag ?? null;
    },
    async close() {
      await pool.end();
    },
  };
}
