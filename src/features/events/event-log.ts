// Reading dispatched events back, for a client that resumes after a disconnect. Runs as the
// application role scoped to the tenant (row-level security keeps tenants apart here too).
import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../../platform/db/db.js';
import { EVENT_COLUMNS, toEvent, type EventRow } from './event-rows.js';
import type { EventLog } from './events.js';

export function createEventLog(db: Db): EventLog {
  const headOf = async (tenantId: string) =>
    db.read(tenantId, async (q) => {
      const [h] = rowsOf<{ last_id: string; purged_through: string }>(
        await q.execute(sql`select last_id::text as last_id, purged_through::text as purged_through from event_heads where tenant_id = ${tenantId}`),
      );
      return { last: BigInt(h?.last_id ?? 0), purged: BigInt(h?.purged_through ?? 0) };
    });

  return {
    async after(tenantId, after, limit) {
      const { last, purged } = await headOf(tenantId);
      // Events after `after` were removed by retention, or the id was never given out (a client
      // of another database, or of this one before a restore): the client cannot be caught up.
      if (after < purged || after > last) return { events: [], resync: true };
      if (after === last) return { events: [], resync: false };
      const rows = await db.read(tenantId, async (q) =>
        rowsOf<EventRow>(
          await q.execute(sql`select ${EVENT_COLUMNS} from events where tenant_id = ${tenantId} and events.id > ${after.toString()}::bigint order by events.id limit ${limit}`),
        ),
      );
      // Retention may have run between the two reads: what follows `after` must be after + 1.
      if (rows[0]?.id !== (after + 1n).toString()) return { events: [], resync: true };
      return { events: rows.map(toEvent), resync: false };
    },
    async head(tenantId) {
      return (await headOf(tenantId)).last;
    },
  };
}
