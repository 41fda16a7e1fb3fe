// `carebase keys rotate` for patients' encrypted identifiers (patients.crypto), online:
//
// - identifiersRotationTarget: re-wraps every encrypted identifier not under the primary key
//   (platform/crypto/rotation.ts does the crypto, counting and pacing);
// - sealPlaintextIdentifiers: encrypts identifiers of a listed system still stored in plaintext
//   (written before ENCRYPTED_IDENTIFIER_SYSTEMS named their system).
//
// Both page through one tenant at a time as the application role (row-level security applies),
// ordered by id, soft-deleted rows included (they hold identifiers too), and write each row back
// with a compare-and-set on the identifiers they read: a row changed meanwhile is left to its
// writer (who encrypted under the primary) or to the next run. Neither bumps the version: the
// patient as the API shows it is unchanged, so clients' ETags stay valid.
import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { FieldKeys } from '../../context.js';
import { ciphertextPrefixFor, type RotationChange, type RotationTarget } from '../../platform/crypto/index.js';
import type { Db, Querier } from '../../platform/db/db.js';
import { isEncrypted, sealIdentifier } from './patients.crypto.js';
import type { StoredIdentifier } from './patients.schema.js';
import { patients } from './patients.table.js';

export interface IdentifierRecord {
  readonly tenantId: string;
  readonly id: string;
  readonly identifiers: StoredIdentifier[];
}

/** Called after a row's identifiers were rewritten, e.g. to drop its cache entry. */
export type OnRewritten = (tenantId: string, id: string) => Promise<unknown>;

const SEP = '/'; // never in a tenant id ([a-z0-9-])

function page(q: Querier, tenantId: string, after: string | undefined, limit: number, which: SQL) {
  return q
    .select({ id: patients.id, identifiers: patients.identifiers })
    .from(patients)
    .where(and(eq(patients.tenantId, tenantId), after === undefined ? undefined : gt(patients.id, after), which))
    .orderBy(asc(patients.id))
    .limit(limit);
}

/**
 * Pages of one tenant after another (tenants in the order given, sorted); the cursor is
 * "<tenant>/<last id>". Returns the first non-empty page, or an empty one at the end.
 */
async function nextPage(db: Db, tenantIds: readonly string[], after: string | undefined, limit: number, which: SQL) {
  const at = after === undefined ? -1 : after.indexOf(SEP);
  const [fromTenant, fromId] = at < 0 ? [undefined, undefined] : [after!.slice(0, at), after!.slice(at + 1)];
  for (const tenantId of tenantIds) {
    if (fromTenant !== undefined && tenantId < fromTenant) continue;
    const rows = await db.read(tenantId, (q) => page(q, tenantId, tenantId === fromTenant ? fromId : undefined, limit, which));
    if (rows.length > 0) {
      const records = rows.map((r) => ({ tenantId, id: r.id, identifiers: r.identifiers }));
      return { records, next: `${tenantId}${SEP}${rows[rows.length - 1]!.id}` };
    }
  }
  return { records: [], next: undefined };
}

/** Compare-and-set of each record's identifiers, one transaction per tenant; true where written. */
async function writeBack(db: Db, updates: readonly { record: IdentifierRecord; identifiers: StoredIdentifier[] }[], onRewritten?: OnRewritten): Promise<boolean[]> {
  const tenants = [...new Set(updates.map((u) => u.record.tenantId))];
  const done = new Map<IdentifierRecord, boolean>();
  for (const tenantId of tenants) {
    await db.tx(tenantId, async (q) => {
      for (const { record, identifiers } of updates.filter((u) => u.record.tenantId === tenantId)) {
        const rows = await q
          .update(patients)
          .set({ identifiers })
          .where(and(eq(patients.tenantId, tenantId), eq(patients.id, record.id), sql`${patients.identifiers} = ${JSON.stringify(record.identifiers)}::jsonb`))
          .returning({ id: patients.id });
        done.set(record, rows.length === 1);
      }
    });
  }
  const written = updates.map((u) => done.get(u.record) === true);
  if (onRewritten) for (const [n, u] of updates.entries()) if (written[n]) await onRewritten(u.record.tenantId, u.record.id);
  return written;
}

/**
 * The rotation target of patients' encrypted identifiers in the given tenants. Lists only rows
 * holding a value not under `primaryKeyId` (the ring's primary), so a finished rotation scans nothing.
 */
export function identifiersRotationTarget(db: Db, tenantIds: readonly string[], primaryKeyId: string, onRewritten?: OnRewritten): RotationTarget<IdentifierRecord> {
  const sorted = [...tenantIds].sort();
  const stale = sql`exists (select 1 from jsonb_array_elements(${patients.identifiers}) e
    where e->'valueIndex' is not null and not starts_with(e->>'value', ${ciphertextPrefixFor(primaryKeyId)}))`;
  return {
    name: 'patients.identifiers',
    listBatch: (after, limit) => nextPage(db, sorted, after, limit, stale),
    // Only values marked encrypted: a plaintext value that looks like ciphertext is not ours.
    ciphertextsOf: (r) => r.identifiers.filter(isEncrypted).map((i) => i.value),
    write: (changes: readonly RotationChange<IdentifierRecord>[]) =>
      writeBack(
        db,
        changes.map(({ record, replacements }) => ({
          record,
          identifiers: record.identifiers.map((i) => (isEncrypted(i) && replacements.has(i.value) ? { ...i, value: replacements.get(i.value)! } : i)),
        })),
        onRewritten,
      ),
  };
}

export interface SealReport {
  /** Rows read that held a plaintext identifier of a listed system. */
  readonly scanned: number;
  /** Identifiers encrypted. */
  readonly sealed: number;
  /** Rows changed concurrently and so not written (their writer encrypted them, or run again). */
  readonly conflicts: number;
  readonly complete: boolean;
}

/** Encrypts every identifier of a listed system still stored in plaintext in the given tenants. */
export async function sealPlaintextIdentifiers(
  db: Db,
  keys: FieldKeys,
  tenantIds: readonly string[],
  o: { batchSize?: number; signal?: AbortSignal; onRewritten?: OnRewritten } = {},
): Promise<SealReport> {
  const t = { scanned: 0, sealed: 0, conflicts: 0 };
  if (keys.identifierSystems.length === 0) return { ...t, complete: true };
  const sorted = [...tenantIds].sort();
  const listed = sql.join(keys.identifierSystems.map((s) => sql`${s}`), sql`, `);
  const plaintext = sql`exists (select 1 from jsonb_array_elements(${patients.identifiers}) e
    where e->'valueIndex' is null and e->>'system' in (${listed}))`;
  let cursor: string | undefined;
  for (;;) {
    if (o.signal?.aborted) return { ...t, complete: false };
    const { records, next } = await nextPage(db, sorted, cursor, o.batchSize ?? 500, plaintext);
    if (records.length === 0) return { ...t, complete: true };
    const updates = records.map((record) => ({
      record,
      identifiers: record.identifiers.map((i) => (isEncrypted(i) || !keys.identifierSystems.includes(i.system) ? i : sealIdentifier(keys, record.tenantId, i))),
    }));
    const written = await writeBack(db, updates, o.onRewritten);
    t.scanned += records.length;
    updates.forEach((u, n) => {
      if (written[n]) t.sealed += u.identifiers.filter((i, k) => i !== u.record.identifiers[k]).length;
      else t.conflicts++;
    });
    cursor = next;
  }
}
