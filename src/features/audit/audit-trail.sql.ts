// Reading the audit trail: records are rows of audit_events (synchronous reads), members of
// audit_event_batches rows (batched reads, one row per flush, migration 0010; writes, one row per
// dispatcher pass, migration 0014), or, for a write whose outbox row the dispatcher has not moved
// yet, that row's `audit` (0014). Searches read each table through its own indexes — audit_events
// by (tenant, patient|actor, id), batches by their GIN lists of patients and actors and their id
// ranges, the outbox (only what is waiting to be dispatched) whole — and merge by record id.
import { param, sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Querier } from '../../platform/db/db.js';
import { idFloor, msOfId } from '../../platform/ids.js';
import { BATCH_SPAN_MS, type AuditEventRow } from './audit.table.js';

export interface AuditRowFilters {
  patientId?: string;
  actor?: string;
  action?: string;
  resourceType?: string;
  resourceId?: string;
  outcome?: 'success' | 'denied' | 'error';
  from?: Date;
  to?: Date;
}

export interface IdRange {
  afterId?: string;
  upToId?: string;
}

const COLUMNS = sql.raw(
  'e.tenant_id, e.id::text as id, e.occurred_at, e.actor_sub, e.actor_roles, e.action, e.resource_type, e.resource_id, e.patient_id::text as patient_id, e.outcome, e.request_id, e.client_ip, e.user_agent, e.detail, e.key_id, e.hmac',
);
/** A batch's records as rows shaped like audit_events (alias e). */
const EXPANDED = sql.raw('cross join lateral carebase_audit_batch_records(b.records) e');
/** The record an outbox row (alias o) carries, as a row shaped like audit_events (alias e). */
const IN_OUTBOX = sql.raw('cross join lateral carebase_audit_batch_records(json_build_array(o.audit)) e');

interface RawRecord {
  tenant_id: string;
  id: string;
  occurred_at: Date | string;
  actor_sub: string;
  actor_roles: string[];
  action: string;
  resource_type: string;
  resource_id: string | null;
  patient_id: string | null;
  outcome: AuditEventRow['outcome'];
  request_id: string | null;
  client_ip: string | null;
  user_agent: string | null;
  detail: Record<string, unknown> | null;
  key_id: string;
  hmac: string;
}

const toRow = (r: RawRecord): AuditEventRow => ({
  tenantId: r.tenant_id,
  id: r.id,
  occurredAt: new Date(r.occurred_at),
  actorSub: r.actor_sub,
  actorRoles: r.actor_roles,
  action: r.action,
  resourceType: r.resource_type,
  resourceId: r.resource_id,
  patientId: r.patient_id,
  outcome: r.outcome,
  requestId: r.request_id,
  clientIp: r.client_ip,
  userAgent: r.user_agent,
  detail: r.detail,
  keyId: r.key_id,
  hmac: r.hmac,
});

const and = (parts: (SQL | undefined)[]) => sql.join(parts.filter((p): p is SQL => p !== undefined), sql` and `);

// A time range is also an id range (ids are UUIDv7s of occurred_at), so it narrows by index; the
// second of slack covers records signed before ids were made from occurred_at.
const fromId = (f: AuditRowFilters) => (f.from !== undefined ? idFloor(f.from.getTime() - 1000) : undefined);
const toId = (f: AuditRowFilters) => (f.to !== undefined ? idFloor(f.to.getTime() + 1000) : undefined);

/** The filters on one record (alias e), the same for both tables. */
function recordWhere(f: AuditRowFilters, r: IdRange): SQL {
  return and([
    sql`true`,
    f.patientId !== undefined ? sql`e.patient_id = ${f.patientId}::uuid` : undefined,
    f.actor !== undefined ? sql`e.actor_sub = ${f.actor}` : undefined,
    f.action !== undefined ? sql`e.action = ${f.action}` : undefined,
    f.resourceType !== undefined ? sql`e.resource_type = ${f.resourceType}` : undefined,
    f.resourceId !== undefined ? sql`e.resource_id = ${f.resourceId}` : undefined,
    f.outcome !== undefined ? sql`e.outcome = ${f.outcome}` : undefined,
    f.from !== undefined ? sql`e.occurred_at >= ${f.from.toISOString()}::timestamptz and e.id >= ${fromId(f)}::uuid` : undefined,
    f.to !== undefined ? sql`e.occurred_at < ${f.to.toISOString()}::timestamptz and e.id < ${toId(f)}::uuid` : undefined,
    r.afterId !== undefined ? sql`e.id > ${r.afterId}::uuid` : undefined,
    r.upToId !== undefined ? sql`e.id <= ${r.upToId}::uuid` : undefined,
  ]);
}

/** The batches that may hold a matching record (alias b): by their patient and actor lists and id range. */
function batchWhere(tenantId: string, f: AuditRowFilters, r: IdRange): SQL {
  const low = [r.afterId, fromId(f)].filter((v): v is string => v !== undefined);
  const high = [r.upToId, toId(f)].filter((v): v is string => v !== undefined);
  return and([
    sql`b.tenant_id = ${tenantId}`,
    f.patientId !== undefined ? sql`b.patient_ids @> array[${f.patientId}::uuid]` : undefined,
    f.actor !== undefined ? sql`b.actor_subs @> array[${f.actor}::text]` : undefined,
    ...low.map((id) => sql`b.last_id >= ${id}::uuid`),
    ...high.map((id) => sql`b.first_id <= ${id}::uuid`),
  ]);
}

/** Batches examined by a search's first round trip; each further one doubles it, up to the maximum. */
const FIRST_WINDOW = 16;
const MAX_WINDOW = 1024;

/**
 * Up to `limit` matching records after `afterId` (and not after `upToId`), in id order (ascending,
 * or descending with `newestFirst`). audit_events answers through its indexes in one query.
 * Batches are walked a window at a time — oldest first by first_id, newest first by last_id, each
 * an index range that starts at most BATCH_SPAN_MS (what one batch may span) before the cursor —
 * and once a window is read, the batches not read yet hold no record before the next one's
 * first_id (newest first: after its last_id), so the merge stops as soon as `limit` records lie
 * before that bound.
 */
export async function searchTrail(
  q: Querier,
  tenantId: string,
  f: AuditRowFilters,
  page: IdRange & { limit: number; newestFirst?: boolean },
): Promise<AuditEventRow[]> {
  const desc = page.newestFirst === true;
  const dir = sql.raw(desc ? 'desc' : 'asc');
  const before = (a: string, b: string) => (desc ? a > b : a < b);
  const byId = (a: AuditEventRow, b: AuditEventRow) => (a.id === b.id ? 0 : before(a.id, b.id) ? -1 : 1);
  const edge = sql.raw(desc ? 'b.last_id' : 'b.first_id');
  // Where the index range starts: a batch holding a record past the cursor starts (ends) at most
  // one span before (after) it.
  const cursorId = desc ? page.upToId : page.afterId ?? fromId(f);
  const seek = cursorId === undefined ? undefined : desc
    ? sql`b.last_id <= ${idFloor(msOfId(cursorId) + BATCH_SPAN_MS + 1)}::uuid`
    : sql`b.first_id >= ${idFloor(msOfId(cursorId) - BATCH_SPAN_MS)}::uuid`;

  // The outbox first: a record the dispatcher moves after this read is then found in its batch
  // (read later), never missed; one found in both is kept once.
  const found = new Map<string, AuditEventRow>();
  const add = (records: RawRecord[]) => {
    for (const r of records) if (!found.has(r.id)) found.set(r.id, toRow(r));
  };
  add(rowsOf<RawRecord>(
    await q.execute(sql`select ${COLUMNS} from outbox o ${IN_OUTBOX} where o.tenant_id = ${tenantId} and o.audit is not null and ${recordWhere(f, page)}
      order by e.id ${dir} limit ${page.limit}`),
  ));
  add(rowsOf<RawRecord>(
    await q.execute(sql`select ${COLUMNS} from audit_events e where e.tenant_id = ${tenantId} and ${recordWhere(f, page)} order by e.id ${dir} limit ${page.limit}`),
  ));
  let rows = [...found.values()].sort(byId);

  let cursor: { edge: string; id: string } | undefined;
  for (let window = FIRST_WINDOW; ; window = Math.min(window * 2, MAX_WINDOW)) {
    const after = cursor === undefined ? undefined : sql`(${edge}, b.id) ${sql.raw(desc ? '<' : '>')} (${cursor.edge}::uuid, ${cursor.id}::uuid)`;
    const batches = rowsOf<{ id: string; edge: string }>(
      await q.execute(sql`select b.id::text as id, ${edge}::text as edge from audit_event_batches b
        where ${and([batchWhere(tenantId, f, page), seek, after])} order by ${edge} ${dir}, b.id ${dir} limit ${window + 1}`),
    );
    const read = batches.slice(0, window);
    if (read.length > 0) {
      add(rowsOf<RawRecord>(
        await q.execute(sql`select ${COLUMNS} from audit_event_batches b ${EXPANDED}
          where b.tenant_id = ${tenantId} and b.id = any(${param(read.map((b) => b.id))}::uuid[]) and ${recordWhere(f, page)}
          order by e.id ${dir} limit ${page.limit}`),
      ));
      rows = [...found.values()].sort(byId);
    }
    const next = batches[window];
    if (next === undefined) return rows.slice(0, page.limit);
    const known = rows.filter((r) => before(r.id, next.edge));
    if (known.length >= page.limit) return known.slice(0, page.limit);
    cursor = read.at(-1)!;
  }
}

/** The id of the newest matching record: where an export stops, so it ends even while records are added. */
export async function lastAuditId(q: Querier, tenantId: string, f: AuditRowFilters): Promise<string | undefined> {
  const [row] = await searchTrail(q, tenantId, f, { limit: 1, newestFirst: true });
  return row?.id;
}

/**
 * Every record written by transactions in [from, to), in (txid, id) order. Open-ended (no `to`):
 * every record not sealed yet, those still in the outbox included (with their writing
 * transaction's id; they are sealed with their batch, after every other).
 */
export async function recordsByTxid(q: Querier, tenantId: string, from: string, to?: string): Promise<(AuditEventRow & { txid: string })[]> {
  const range = (col: string) =>
    to === undefined ? sql`${sql.raw(col)} >= ${from}::xid8` : sql`${sql.raw(col)} >= ${from}::xid8 and ${sql.raw(col)} < ${to}::xid8`;
  const waiting = to === undefined
    ? sql`union all select ${COLUMNS}, o.txid from outbox o ${IN_OUTBOX} where o.tenant_id = ${tenantId} and o.audit is not null`
    : sql``;
  const rows = rowsOf<RawRecord & { txid: string }>(
    await q.execute(sql`select * from (
        select ${COLUMNS}, e.txid from audit_events e where e.tenant_id = ${tenantId} and ${range('e.txid')}
        union all
        select ${COLUMNS}, b.txid from audit_event_batches b ${EXPANDED} where b.tenant_id = ${tenantId} and ${range('b.txid')}
        ${waiting}
      ) x order by txid, id`),
  );
  return rows.map((r) => ({ ...toRow(r), txid: String(r.txid) }));
}

/**
 * A batch's records' ids and HMACs (alias e): from its arrays (migration 0013), or, in a row
 * written before them, from its records. The second branch's condition names only the batch, so
 * it is checked once per batch, and a batch with arrays never has its JSON read.
 */
const SEAL_ITEMS = sql.raw(`cross join lateral (
    select u.id, u.hmac from unnest(b.record_ids, b.record_hmacs) as u(id, hmac)
    union all
    select r.id, r.hmac from carebase_audit_batch_records(b.records) r where b.record_ids is null
  ) e`);

/**
 * The records (txid, id, hmac) of transactions in the range as a derived table (alias s), every
 * one, or with `limit` the first `limit` in (txid, id) order: of the batches, only as many are then
 * read as can hold them (by their record counts, in transaction order), not every batch in the range.
 */
function sealItems(tenantId: string, range: SQL, limit?: number): SQL {
  const first = limit === undefined ? sql.raw('') : sql` limit ${limit}`;
  const chosen = limit === undefined
    ? sql`select id from audit_event_batches where tenant_id = ${tenantId} and ${range}`
    : sql`select id from (select id, sum(record_count) over (order by txid, id) - record_count as before
        from audit_event_batches where tenant_id = ${tenantId} and ${range}) c where before < ${limit}`;
  return sql`(select x.txid, x.id, x.hmac from (
      (select e.txid, e.id, e.hmac from audit_events e where e.tenant_id = ${tenantId} and ${range} order by e.txid, e.id${first})
      union all
      (select b.txid, e.id, e.hmac from audit_event_batches b join (${chosen}) chosen on b.tenant_id = ${tenantId} and b.id = chosen.id
        ${SEAL_ITEMS} order by b.txid, e.id${first})
    ) x order by x.txid, x.id${first}) s`;
}

/** SHA-256 over "id:hmac\n" lines in (txid, id) order, base64url: chain.ts's digestOf, computed by the database. */
const DIGEST = sql.raw(
  "rtrim(translate(encode(sha256(convert_to(string_agg(s.id::text || ':' || s.hmac || E'\\n', '' order by s.txid, s.id), 'UTF8')), 'base64'), '+/', '-_'), '=')",
);

/**
 * Where a seal of at most `limit` records may end, in one pass over the range's first limit + 1
 * records: how many there are, the first and last transaction among them, and their digest (the
 * seal's, when they all fit). Answered in the database: no record travels to the sealer.
 */
export async function sealExtent(q: Querier, tenantId: string, range: SQL, limit: number): Promise<{ count: number; firstTxid: string | null; lastTxid: string | null; digest: string }> {
  const [row] = rowsOf<{ n: number; first: string | null; last: string | null; digest: string | null }>(
    await q.execute(sql`select count(*)::int as n, min(s.txid)::text as first, max(s.txid)::text as last, ${DIGEST} as digest
      from ${sealItems(tenantId, range, limit + 1)}`),
  );
  return { count: Number(row?.n ?? 0), firstTxid: row?.first ?? null, lastTxid: row?.last ?? null, digest: row?.digest ?? '' };
}

/** The count and digest of every record in the range (a seal cut short of its extent). */
export async function sealDigest(q: Querier, tenantId: string, range: SQL): Promise<{ count: number; digest: string }> {
  const [row] = rowsOf<{ n: number; digest: string | null }>(
    await q.execute(sql`select count(*)::int as n, ${DIGEST} as digest from ${sealItems(tenantId, range)}`),
  );
  return { count: Number(row?.n ?? 0), digest: row?.digest ?? '' };
}

export interface SealRow {
  tenantId: string;
  position: number;
  fromTxid: string;
  toTxid: string;
  count: number;
  digest: string;
  hash: string;
  sealedAt: Date;
}

/**
 * Appends the seal of the records in the range, listing their ids in (txid, id) order as the
 * database reads them again; only if it still counts `count` of them (it must: every transaction
 * in a range has ended). Whether it was written.
 */
export async function insertSeal(q: Querier, range: SQL, s: SealRow): Promise<boolean> {
  const r = rowsOf<{ position: string }>(
    await q.execute(sql`insert into audit_seals (tenant_id, position, from_txid, to_txid, event_ids, digest, hash, sealed_at)
      select ${s.tenantId}, ${s.position}, ${s.fromTxid}::xid8, ${s.toTxid}::xid8, array_agg(s.id order by s.txid, s.id), ${s.digest}, ${s.hash}, ${s.sealedAt.toISOString()}::timestamptz
      from ${sealItems(s.tenantId, range)} having count(*) = ${s.count}
      returning position::text as position`),
  );
  return r.length === 1;
}

/** Whether the tenant's trail holds a record with this id anywhere. */
export async function recordExists(q: Querier, tenantId: string, id: string): Promise<boolean> {
  const r = await q.execute(sql`select 1 from audit_trail where tenant_id = ${tenantId} and id = ${id}::uuid limit 1`);
  return rowsOf(r).length > 0;
}

/** How many records name the patient (each table through its patient index; the outbox whole). */
export async function countForPatient(q: Querier, tenantId: string, patientId: string): Promise<number> {
  const [row] = rowsOf<{ n: number }>(
    await q.execute(sql`select (select count(*) from audit_events e where e.tenant_id = ${tenantId} and e.patient_id = ${patientId}::uuid)
      + (select count(*) from audit_event_batches b ${EXPANDED}
          where b.tenant_id = ${tenantId} and b.patient_ids @> array[${patientId}::uuid] and e.patient_id = ${patientId}::uuid)
      + (select count(*) from outbox o ${IN_OUTBOX} where o.tenant_id = ${tenantId} and o.audit is not null and e.patient_id = ${patientId}::uuid) as n`),
  );
  return Number(row?.n ?? 0);
}
