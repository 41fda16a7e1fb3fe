// Tamper evidence: records are audited through the API and sealed; then someone with the
// database's superuser (who can switch the append-only triggers off) alters, removes, inserts or
// reorders rows with plain SQL, and verification names the kind of change and the first record
// affected. Each case on a fresh tenant. Last, the `carebase audit verify` command end to end.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { cleanupDirs, cliEnv, killAll, migratedDataDir, procScope, waitFor } from '../../../test/helpers/process.js';
import { clientAs, startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { createPgliteDb } from '../../platform/db/pglite.js';
import { createLogger } from '../../platform/log.js';
import type { Db } from '../../platform/db/db.js';
import { insertTenant } from '../tenants/tenants.service.js';
import { loadAuditKey } from './audit-key.js';
import { auditSeals, type AuditSealRow } from './audit.table.js';
import { createAuditor } from './auditor.js';
import { sealTenant } from './sealer.js';
import { verifyTenant, type VerifyResult } from './verify.js';

/**
 * What an attacker holding the superuser does: switch the triggers off for one transaction
 * (session_replication_role = replica) and change rows directly.
 */
async function tamper(db: Db, statements: string): Promise<void> {
  await db.withOwner(async (s) => {
    try {
      await s.exec(`begin; set local session_replication_role = replica; ${statements}; commit;`);
    } catch (err) {
      await s.exec('rollback');
      throw err;
    }
  });
}

interface Sealed {
  tenant: string;
  /** The seals, by position (index 0 = seal 1). */
  seals: AuditSealRow[];
  /** Sealed record ids in chain order. */
  ids: string[];
}

/**
 * A fresh tenant with two patients, each read three times: 6 records, each an audit_events row of
 * its own transaction (synchronous reads), sealed one transaction per seal. The patients are
 * inserted directly, so that no write record (those are stored in batches: the next describe)
 * joins the chain.
 */
async function sealedTenant(srv: TestServer): Promise<Sealed> {
  const tenant = await srv.newTenant();
  const api = await clientAs(srv, tenant, 'clinician');
  const patients = [randomUUID(), randomUUID()];
  await srv.deps.db.withOwner((s) =>
    s.exec(`insert into patients (tenant_id, id, name, name_tokens, birth_date, gender, identifiers, active, created_at, updated_at)
      select '${tenant}', id::uuid, '{"family":"Doe","given":["Jo"]}', '{doe,jo}', '1980-01-01', 'unknown', '[]', true, now(), now()
      from unnest(array['${patients.join("','")}']) as x(id)`),
  );
  for (const id of patients) {
    for (let i = 0; i < 3; i++) expect((await api('GET', `/v1/patients/${id}`)).status).toBe(200);
  }
  await srv.deps.audit.flush();
  const seals = () => srv.deps.db.read(tenant, (q) => q.select().from(auditSeals).where(eq(auditSeals.tenantId, tenant)).orderBy(asc(auditSeals.position)));
  // A seal stops below the oldest transaction still running (other test files' too, on PostgreSQL).
  await waitFor(async () => {
    await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { batch: 1 });
    return (await seals()).flatMap((c) => c.eventIds).length === 6;
  }, 10_000, () => 'all six records sealed');
  const all = await seals();
  expect(all.length).toBeGreaterThanOrEqual(5);
  return { tenant, seals: all, ids: all.flatMap((c) => c.eventIds) };
}

/** The position of the seal holding record `id`, and how many records the seals before it hold. */
function whereIs(t: Sealed, id: string): { position: number; before: number } {
  const i = t.seals.findIndex((c) => c.eventIds.includes(id));
  return { position: i + 1, before: t.seals.slice(0, i).reduce((n, c) => n + c.eventIds.length, 0) };
}

/** A copy of the record with id `from` under a new id, with an HMAC made up by someone without the key (and, optionally, a chosen txid). */
const forgedCopy = (tenant: string, from: string, id: string, txid?: string) =>
  `insert into audit_events (tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id, patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac${txid ? ', txid' : ''})
   select tenant_id, '${id}', occurred_at, 'mallory', actor_roles, 'read', resource_type, resource_id, patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, 'Zm9yZ2VkLWhtYWMtbWFkZS11cC1ieS1tYWxsb3J5'${txid ? `, '${txid}'::xid8` : ''}
   from audit_events where tenant_id = '${tenant}' and id = '${from}'`;

describe.each(storageModes())('audit verification on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    // Synchronous read records: every record is an audit_events row, one transaction each
    // (batched reads are stored as batch rows; their tampering cases follow below).
    srv = await startServer(mode, { AUDIT_READS: 'sync' });
  });
  afterAll(() => srv?.close());

  const verify = (tenant: string, head?: { position: number; hash: string }) => verifyTenant(srv.deps.db, srv.deps.audit.key, tenant, head ? { head } : {});

  it('an untouched trail verifies: every record checked, and the head is reported', async () => {
    const { tenant, ids, seals } = await sealedTenant(srv);
    const r = await verify(tenant);
    expect(r).toMatchObject({ ok: true, tenantId: tenant, sealed: ids.length, checked: ids.length, pending: 0, head: { position: seals.length, hash: seals.at(-1)!.hash } });
  });

  it('a field of a sealed record changed (actor_sub): altered, naming it and its seal', async () => {
    const t = await sealedTenant(srv);
    const id = t.ids[2]!;
    await tamper(srv.deps.db, `update audit_events set actor_sub = 'someone-else' where tenant_id = '${t.tenant}' and id = '${id}'`);
    expect(await verify(t.tenant)).toMatchObject({ ok: false, problem: 'altered', position: whereIs(t, id).position, eventId: id, checked: whereIs(t, id).before });
  });

  it('a record re-signed by someone without the key (new HMAC, fields changed): altered', async () => {
    const t = await sealedTenant(srv);
    const id = t.ids[4]!;
    await tamper(srv.deps.db, `update audit_events set outcome = 'success', hmac = 'bm90LWEtcmVhbC1obWFj' where tenant_id = '${t.tenant}' and id = '${id}'`);
    const r = await verify(t.tenant);
    expect(r).toMatchObject({ ok: false, problem: 'altered', position: whereIs(t, id).position, eventId: id });
    expect((r as { message: string }).message).toMatch(/no longer matches its HMAC/);
  });

  it('a record claiming another signing key: altered, naming the key ids', async () => {
    const t = await sealedTenant(srv);
    await tamper(srv.deps.db, `update audit_events set key_id = 'k000000000000' where tenant_id = '${t.tenant}' and id = '${t.ids[0]}'`);
    const r = await verify(t.tenant);
    expect(r).toMatchObject({ ok: false, problem: 'altered', position: 1, eventId: t.ids[0] });
    expect((r as { message: string }).message).toContain('k000000000000');
  });

  it('a sealed record deleted: removed, naming it and its seal', async () => {
    const t = await sealedTenant(srv);
    const id = t.ids[1]!;
    await tamper(srv.deps.db, `delete from audit_events where tenant_id = '${t.tenant}' and id = '${id}'`);
    expect(await verify(t.tenant)).toMatchObject({ ok: false, problem: 'removed', position: whereIs(t, id).position, eventId: id, checked: whereIs(t, id).before });
  });

  it('a sealed record moved into another seal\'s range (its txid changed): reordered', async () => {
    const t = await sealedTenant(srv);
    const id = t.ids[0]!;
    await tamper(srv.deps.db, `update audit_events set txid = '${t.seals[3]!.fromTxid}'::xid8 where tenant_id = '${t.tenant}' and id = '${id}'`);
    const r = await verify(t.tenant);
    expect(r).toMatchObject({ ok: false, problem: 'reordered', position: 1, eventId: id, checked: 0 });
    expect((r as { message: string }).message).toMatch(/outside that seal's range/);
  });

  it('a seal deleted: removed, naming the missing position', async () => {
    const t = await sealedTenant(srv);
    await tamper(srv.deps.db, `delete from audit_seals where tenant_id = '${t.tenant}' and position = 4`);
    expect(await verify(t.tenant)).toMatchObject({ ok: false, problem: 'removed', position: 4, checked: whereIs(t, t.seals[3]!.eventIds[0]!).before });
  });

  it('a seal deleted and the later ones renumbered to close the gap: the chain breaks there', async () => {
    const t = await sealedTenant(srv);
    await tamper(
      srv.deps.db,
      `delete from audit_seals where tenant_id = '${t.tenant}' and position = 3;
       update audit_seals set position = position - 1 where tenant_id = '${t.tenant}' and position > 3`,
    );
    expect(await verify(t.tenant)).toMatchObject({ ok: false, problem: 'bad-chain', position: 3 });
  });

  it('two seals swapped: reordered, at the first of them, naming where its seal went', async () => {
    const t = await sealedTenant(srv);
    await tamper(
      srv.deps.db,
      `update audit_seals set position = 1000000 where tenant_id = '${t.tenant}' and position = 2;
       update audit_seals set position = 2 where tenant_id = '${t.tenant}' and position = 5;
       update audit_seals set position = 5 where tenant_id = '${t.tenant}' and position = 1000000`,
    );
    const r = await verify(t.tenant);
    expect(r).toMatchObject({ ok: false, problem: 'reordered', position: 2, checked: t.seals[0]!.eventIds.length });
    expect((r as { message: string }).message).toMatch(/now at position 5/);
  });

  it('two records swapped in time (occurred_at exchanged): altered at the first', async () => {
    const t = await sealedTenant(srv);
    await tamper(
      srv.deps.db,
      `update audit_events a set occurred_at = b.occurred_at from audit_events b
        where a.tenant_id = '${t.tenant}' and b.tenant_id = '${t.tenant}' and ((a.id = '${t.ids[0]}' and b.id = '${t.ids[5]}') or (a.id = '${t.ids[5]}' and b.id = '${t.ids[0]}'))`,
    );
    expect(await verify(t.tenant)).toMatchObject({ ok: false, problem: 'altered', position: 1, eventId: t.ids[0] });
  });

  it('a forged record inserted (made-up HMAC) after the last seal: inserted, naming it; sealed, it is still reported', async () => {
    const t = await sealedTenant(srv);
    const forged = randomUUID();
    await tamper(srv.deps.db, forgedCopy(t.tenant, t.ids[1]!, forged));
    const r = await verify(t.tenant);
    expect(r).toMatchObject({ ok: false, problem: 'inserted', eventId: forged, checked: t.ids.length });
    expect(r).not.toHaveProperty('position');
    // The sealer does not judge records; verify does, inside seals too.
    await waitFor(async () => (await sealTenant(srv.deps.db, srv.deps.audit.key, t.tenant, new Date())).head > t.seals.length, 10_000, () => 'sealed');
    expect(await verify(t.tenant)).toMatchObject({ ok: false, problem: 'altered', position: t.seals.length + 1, eventId: forged, checked: t.ids.length });
  });

  it('a forged record with a forged seal appended: inserted, at the new position', async () => {
    const t = await sealedTenant(srv);
    const forged = randomUUID();
    const n = t.seals.length;
    const last = t.seals.at(-1)!;
    await tamper(
      srv.deps.db,
      `${forgedCopy(t.tenant, t.ids.at(-1)!, forged, last.toTxid)};
       insert into audit_seals (tenant_id, position, from_txid, to_txid, event_ids, digest, hash, sealed_at)
         values ('${t.tenant}', ${n + 1}, '${last.toTxid}'::xid8, '${BigInt(last.toTxid) + 1n}'::xid8, array['${forged}']::uuid[], 'bWFkZS11cA', 'bWFkZS11cC1jaGFpbi1oYXNo', now())`,
    );
    expect(await verify(t.tenant)).toMatchObject({ ok: false, problem: 'inserted', position: n + 1, eventId: forged, checked: t.ids.length });
  });

  it('a forged record spliced into a sealed range (its txid set there): inserted, at that seal', async () => {
    const t = await sealedTenant(srv);
    const forged = randomUUID();
    await tamper(srv.deps.db, forgedCopy(t.tenant, t.ids[2]!, forged, t.seals[2]!.fromTxid));
    expect(await verify(t.tenant)).toMatchObject({ ok: false, problem: 'inserted', position: 3, eventId: forged, checked: whereIs(t, t.seals[2]!.eventIds[0]!).before });
  });

  it('the tail cut off (last seal and its records deleted) passes alone, and is caught against a head recorded earlier', async () => {
    const t = await sealedTenant(srv);
    const before = (await verify(t.tenant)) as Extract<VerifyResult, { ok: true }>;
    const n = t.seals.length;
    const gone = t.seals.at(-1)!.eventIds.map((id) => `'${id}'`).join(', ');
    await tamper(
      srv.deps.db,
      `delete from audit_seals where tenant_id = '${t.tenant}' and position = ${n};
       delete from audit_events where tenant_id = '${t.tenant}' and id in (${gone})`,
    );
    // The limitation, stated: a shorter chain is a valid chain.
    expect(await verify(t.tenant)).toMatchObject({ ok: true, sealed: t.ids.length - t.seals.at(-1)!.eventIds.length });
    expect(await verify(t.tenant, before.head!)).toMatchObject({ ok: false, problem: 'removed', position: n });
    // A head that the chain holds verifies; one that it holds with another hash does not.
    const still = (await verify(t.tenant)) as Extract<VerifyResult, { ok: true }>;
    expect(await verify(t.tenant, still.head!)).toMatchObject({ ok: true });
    expect(await verify(t.tenant, { position: 2, hash: still.head!.hash })).toMatchObject({ ok: false, problem: 'bad-chain', position: 2 });
  });

  it('records of other tenants are out of reach: verifying one tenant ignores tampering in another', async () => {
    const a = await sealedTenant(srv);
    const b = await sealedTenant(srv);
    await tamper(srv.deps.db, `update audit_events set actor_sub = 'x' where tenant_id = '${b.tenant}' and id = '${b.ids[0]}'`);
    expect(await verify(a.tenant)).toMatchObject({ ok: true });
    expect(await verify(b.tenant)).toMatchObject({ ok: false, problem: 'altered', position: 1 });
  });
});

describe.each(storageModes())('audit verification of batched read records on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(() => srv?.close());

  interface Flushed {
    tenant: string;
    /** The read batch (the auditor's): its id, which the tampering below is confined to, and its record ids. */
    batch: string;
    reads: string[];
    /** The create's record, in a batch of its own (the outbox dispatcher's, migration 0014). */
    created: string;
  }
  /**
   * A patient created and read three times: the reads are one batch row (one flush), the create's
   * record another (its outbox row's, once dispatched); not sealed yet.
   */
  async function flushedBatch(): Promise<Flushed> {
    // The reads land in one batch only if they fall within one flush interval (≤ 1 s); on a busy
    // machine they may not, and then the setup is tried again with a fresh tenant.
    for (let attempt = 1; ; attempt++) {
      const flushed = await tryFlushedBatch();
      if (flushed) return flushed;
      if (attempt === 3) throw new Error('three reads never fell into one flush');
    }
  }
  async function tryFlushedBatch(): Promise<Flushed | undefined> {
    const tenant = await srv.newTenant();
    const api = await clientAs(srv, tenant, 'clinician');
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    for (let i = 0; i < 3; i++) expect((await api('GET', `/v1/patients/${p.body.id}`)).status).toBe(200);
    await srv.deps.audit.flush();
    type Row = { id: string; ids: string[]; actions: string[]; hmacs: string[]; record_ids: string[]; record_hmacs: string[] };
    const batches = () => srv.deps.db.withOwner((s) => s.query<Row>(
      `select id::text as id, array(select r->>1 from json_array_elements(records) r) as ids, array(select r->>5 from json_array_elements(records) r) as actions,
         array(select r->>15 from json_array_elements(records) r) as hmacs, record_ids::text[] as record_ids, record_hmacs
       from audit_event_batches where tenant_id = $1`, [tenant]));
    await waitFor(async () => (await batches()).some((b) => b.actions.includes('create')), 10_000, () => 'the create dispatched');
    const all = await batches();
    const readBatches = all.filter((b) => b.actions.every((a) => a === 'read'));
    expect(readBatches.flatMap((b) => b.ids)).toHaveLength(3);
    if (readBatches.length > 1) return undefined;
    const reads = readBatches[0]!;
    const write = all.find((b) => b !== reads)!;
    expect(all).toHaveLength(2);
    expect(write.actions).toEqual(['create']);
    for (const b of all) {
      // The copy the sealer reads (migration 0013) is the records' ids and HMACs, in their order.
      expect(b.record_ids).toEqual(b.ids);
      expect(b.record_hmacs).toEqual(b.hmacs);
    }
    return { tenant, batch: reads.id, reads: [...reads.ids].sort(), created: write.ids[0]! };
  }
  async function sealed(tenant: string): Promise<void> {
    await waitFor(async () => {
      await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date());
      const r = await verifyTenant(srv.deps.db, srv.deps.audit.key, tenant);
      return !r.ok || r.pending === 0;
    }, 10_000, () => 'all four records sealed');
  }
  /** As flushedBatch, and sealed. */
  async function batchedTenant(): Promise<Flushed> {
    const b = await flushedBatch();
    await sealed(b.tenant);
    expect(await verify(b.tenant)).toMatchObject({ ok: true, sealed: 4 });
    return b;
  }
  const verify = (tenant: string) => verifyTenant(srv.deps.db, srv.deps.audit.key, tenant);
  /** The batch's array index of the record with this id (element 1 of a record is its id, 3 its actor; see migration 0010). */
  const indexOf = (id: string) => `(select i - 1 from audit_event_batches b, json_array_elements(b.records) with ordinality as x(r, i) where r->>1 = '${id}')`;

  it('an untouched batch verifies, each of its records counted', async () => {
    const { tenant } = await batchedTenant();
    expect(await verify(tenant)).toMatchObject({ ok: true, sealed: 4, pending: 0 });
  });

  it('a field of a record inside a batch changed: altered, naming the record', async () => {
    const { tenant, batch, reads } = await batchedTenant();
    const id = reads[1]!;
    await tamper(srv.deps.db, `update audit_event_batches set records = jsonb_set(records::jsonb, array[${indexOf(id)}::text, '3'], '"someone-else"')::json where tenant_id = '${tenant}' and id = '${batch}'`);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'altered', eventId: id });
  });

  it('a record removed from a batch: removed, naming it', async () => {
    const { tenant, batch, reads } = await batchedTenant();
    const id = reads[2]!;
    await tamper(srv.deps.db, `update audit_event_batches set records = (records::jsonb - ${indexOf(id)}::int)::json where tenant_id = '${tenant}' and id = '${batch}'`);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'removed', eventId: id });
  });

  it('a forged record added to a batch: inserted, naming it', async () => {
    const { tenant, batch, reads } = await batchedTenant();
    const forged = randomUUID();
    await tamper(srv.deps.db, `update audit_event_batches set records = (records::jsonb || jsonb_build_array(
      jsonb_set(jsonb_set(records::jsonb->0, '{1}', '"${forged}"'), '{15}', '"Zm9yZ2VkLWhtYWMtbWFkZS11cC1ieS1tYWxsb3J5"')))::json where tenant_id = '${tenant}' and id = '${batch}'`);
    expect(reads).not.toContain(forged);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'inserted', eventId: forged });
  });

  it('a batch row written before its id and HMAC arrays existed is sealed from its records and verifies', async () => {
    const { tenant, batch } = await flushedBatch();
    await tamper(srv.deps.db, `update audit_event_batches set record_ids = null, record_hmacs = null where tenant_id = '${tenant}' and id = '${batch}'`);
    await sealed(tenant);
    expect(await verify(tenant)).toMatchObject({ ok: true, sealed: 4, pending: 0 });
  });

  it('arrays changed before sealing are not believed: the seal built from them fails verification', async () => {
    const { tenant, batch } = await flushedBatch();
    await tamper(srv.deps.db, `update audit_event_batches set record_hmacs[2] = 'Zm9yZ2VkLWhtYWMtbWFkZS11cC1ieS1tYWxsb3J5' where tenant_id = '${tenant}' and id = '${batch}'`);
    await sealed(tenant);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'altered' });
  });

  it('a whole batch deleted: removed, naming its first record', async () => {
    const { tenant, batch, reads } = await batchedTenant();
    await tamper(srv.deps.db, `delete from audit_event_batches where tenant_id = '${tenant}' and id = '${batch}'`);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'removed', eventId: reads[0] });
  });

  it('a write\'s record, stored by the outbox dispatcher: sealed and verified like any other, and a change to it is caught', async () => {
    const { tenant, created } = await batchedTenant();
    await tamper(srv.deps.db, `update audit_event_batches set records = jsonb_set(records::jsonb, '{0,5}', '"read"')::json where tenant_id = '${tenant}' and id = '${created}'`);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'altered', eventId: created });
  });
});

describe('carebase audit verify (embedded, a real process)', () => {
  afterAll(async () => {
    await killAll();
    cleanupDirs();
  });

  // One run of the command (a process start costs seconds): the trail is written, sealed and
  // tampered with in-process on the DATA_DIR, with the key the command will load from it.
  it('prints one line per tenant and exits 1 naming the first altered record', { timeout: 120_000 }, async ({ onTestFinished }) => {
    const cli = procScope(onTestFinished);
    const dir = migratedDataDir();
    const db = await createPgliteDb(join(dir, 'pg'));
    let altered: string;
    try {
      const key = loadAuditKey({ keyDir: join(dir, 'audit') });
      const auditor = createAuditor({ db, key, log: createLogger('silent'), mode: 'sync', flushMs: 1000 });
      for (const tenant of ['bad', 'good']) {
        await db.tx(tenant, (q) => insertTenant(q, tenant, tenant));
        for (let i = 0; i < 3; i++) {
          await auditor.record({ tenantId: tenant, principal: { sub: 'alice', roles: new Set(['clinician']) }, requestId: `r${i}` }, { action: 'read', resourceType: 'Patient', resourceId: randomUUID() }, new Date(Date.now() - 60_000 + i));
        }
        expect(await sealTenant(db, key, tenant, new Date())).toMatchObject({ sealed: 3 });
      }
      const [seal] = await db.read('bad', (q) => q.select().from(auditSeals).where(and(eq(auditSeals.tenantId, 'bad'), eq(auditSeals.position, 1))));
      altered = seal!.eventIds[1]!;
      await tamper(db, `update audit_events set actor_sub = 'mallory' where tenant_id = 'bad' and id = '${altered}'`);
    } finally {
      await db.close();
    }

    const r = await cli.run(['audit', 'verify'], cliEnv({ DATA_DIR: dir }));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(new RegExp(`^FAIL bad: altered at position 1, event ${altered}: .* \\(0 records intact before it\\)$`)),
      expect.stringMatching(/^ok good: 3 sealed records verified, 0 pending; head 1:[\w-]{43}$/),
    ]);
    expect(r.stdout).not.toMatch(/mallory|alice/);
  });
});
