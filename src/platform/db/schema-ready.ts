// For processes that use the database but do not migrate it (`carebase worker`): wait until the
// schema this code expects is there, or say plainly why not.
import type { Logger } from '../log.js';
import type { Db } from './db.js';
import { loadMigrations, schemaVersion } from './migrate.js';

export class SchemaNotReady extends Error {
  override name = 'SchemaNotReady';
}

/**
 * Resolves once the database is at this code's schema version. Behind: polls every pollMs for
 * up to waitMs (a deployment's `carebase migrate` or first `serve` may be running), then throws.
 * Ahead (migrated by newer code): throws at once, as `migrate` would refuse it.
 */
export async function waitForSchema(db: Db, log: Logger, waitMs: number, pollMs = 1000): Promise<number> {
  const expected = loadMigrations().length;
  const until = Date.now() + waitMs;
  let said = false;
  for (;;) {
    const current = await db.withOwner((s) => schemaVersion(s));
    if (current === expected) return current;
    if (current > expected) throw new SchemaNotReady(`database schema is at version ${current}, newer than this code (${expected}); deploy the newer code`);
    if (Date.now() >= until) {
      throw new SchemaNotReady(`database schema is at version ${current}, this code needs ${expected}: run "carebase migrate" (or start "carebase serve", which migrates)${waitMs > 0 ? `; waited ${waitMs} ms` : ''}`);
    }
    if (!said) {
      said = true;
      log.info({ schemaVersion: current, expected, waitMs }, 'waiting for the database to be migrated');
    }
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, until - Date.now()))));
  }
}
