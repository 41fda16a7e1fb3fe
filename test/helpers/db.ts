// Direct SQL in tests, as the application role in one tenant (row-level security applies), with
// the rows typed — the same on PGlite and PostgreSQL, whose drivers' result objects differ.
import type { SQL } from 'drizzle-orm';
import type { TestServer } from './server.js';

export async function rowsOf<T = Record<string, unknown>>(srv: TestServer, tenant: string, query: SQL): Promise<T[]> {
  const result = (await srv.deps.db.read(tenant, (q) => q.execute(query))) as unknown as { rows: T[] };
  return result.rows;
}
