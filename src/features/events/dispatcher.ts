// Moves committed outbox rows into the event log and publishes them (see migration 0008). Every
// instance runs one; the database lets one dispatch at a time, so each event is dispatched once,
// and the instance that dispatched it publishes it to all. Also applies retention.
import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../../platform/db/db.js';
import type { Logger } from '../../platform/log.js';
import { EVENT_COLUMNS, toEvent, type EventRow } from './event-rows.js';
import type { EventBus, ScopedEvent } from './events.js';

export interface DispatcherOptions {
  /** Pause after a pass that did not fill its batch (about the most an event waits to be dispatched). */
  intervalMs: number;
  /** Outbox rows per dispatch transaction; a full batch is followed by another at once. */
  batch?: number;
  /** Events older than this are removed from the log (resuming from before them: resync-required). */
  retentionMs: number;
  /** How often retention runs. */
  purgeEveryMs?: number;
  /** Told after every pass what it dispatched (metrics). */
  onPass?: (events: readonly ScopedEvent[]) => void;
}

// The dispatch function works across tenants (SECURITY DEFINER); the session's own tenant
// setting plays no part, so it runs with none.
const NO_TENANT = '';

/** One dispatch transaction: the events it numbered and stored, in id order per tenant. */
export async function dispatchOnce(db: Db, batch: number): Promise<ScopedEvent[]> {
  const rows = await db.autocommit(NO_TENANT, async (q) =>
    rowsOf<EventRow>(await q.execute(sql`select ${EVENT_COLUMNS} from carebase_dispatch_events(${batch}) d order by d.tenant_id, d.id`)),
  );
  return rows.map(toEvent);
}

export async function purgeEvents(db: Db, olderThanMs: number): Promise<number> {
  const [r] = await db.autocommit(NO_TENANT, async (q) =>
    rowsOf<{ removed: string }>(await q.execute(sql`select carebase_purge_events(make_interval(secs => ${olderThanMs / 1000}))::text as removed`)),
  );
  return Number(r?.removed ?? 0);
}

/** Starts the loop; the returned stop() ends it after the pass in progress (graceful shutdown). */
export function startDispatcher(db: Db, bus: EventBus, log: Logger, o: DispatcherOptions): () => Promise<void> {
  const batch = o.batch ?? 500;
  const purgeEveryMs = o.purgeEveryMs ?? 60_000;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let lastPurge = Date.now();
  let failing = false;

  async function pass(): Promise<number> {
    const events = await dispatchOnce(db, batch);
    // Stored first, then published: a publish that fails loses nothing (transports read gaps back).
    if (events.length > 0) await bus.publish(events);
    o.onPass?.(events);
    if (Date.now() - lastPurge >= purgeEveryMs) {
      lastPurge = Date.now();
      const removed = await purgeEvents(db, o.retentionMs);
      if (removed > 0) log.debug({ removed }, 'events: retention removed old events');
    }
    return events.length;
  }

  function schedule(delay: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pass().then(
        (n) => {
          if (failing) log.info('events: dispatching works again');
          failing = false;
          // Straight on only after a full batch (there is a backlog). Otherwise the outbox held
          // what had committed, and the next pass takes what commits in the pause: under load
          // each pass carries many events, instead of a pass (and its round trips, and a tenant
          // switch of a pooled connection) for every event or two.
          schedule(n >= batch ? 0 : o.intervalMs);
        },
        (err: unknown) => {
          // Once per outage, not once per pass.
          if (!failing) log.error({ err }, 'events: dispatching failed; retrying');
          failing = true;
          schedule(Math.max(o.intervalMs, 1000));
        },
      );
    }, delay);
    timer.unref();
  }
  schedule(0);

  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
