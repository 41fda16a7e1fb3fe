// Tamper evidence: records are audited through the API and sealed; then someone with the
// database's superuser (who can switch the append-only triggers off) alters, removes, inserts or
// reorders rows with plain SQL, and verification names the kind of change and the first record
// affected. Each case on a fresh tenant. Last, the `carebase audit verify` command end to end.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientInput } from '../../../test/helpers/factories.js';
import { cleanupDirs, cliEnv, killAll, migratedDataDir, procScope } from '../../../test/helpers/process.js';
import { clientAs, startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';
import { createPgliteDb } from '../../platform/db/pglite.js';
import { createLogger } from '../../platform/log.js';
import type { Db } from '../../platform/db/db.js';
import { insertTenant } from '../tenants/tenants.service.js';
import { loadAuditKey } from './audit-key.js';
import { auditChain } from './audit.table.js';
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
  /** Event ids by chain position (index 0 = position 1). */
  ids: string[];
}

/** A fresh tenant with two patients created, read and updated (9+ records), all sealed. */
async function sealedTenant(srv: TestServer): Promise<Sealed> {
  const tenant = await srv.newTenant();
  const api = await clientAs(srv, tenant, 'clinician');
  for (let i = 0; i < 2; i++) {
    const p = await api('POST', '/v1/patients', { body: patientInput() });
    expect(p.status).toBe(201);
    expect((await api('GET', `/v1/patients/${p.body.id}`)).status).toBe(200);
    expect((await api('PATCH', `/v1/patients/${p.body.id}`, { body: { phone: '+1 555 010 1111' }, headers: { 'if-match': 'W/"1"' } })).status).toBe(200);
  }
  await srv.deps.audit.flush();
  await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(), { graceMs: 0 });
  const chain = await srv.deps.db.read(tenant, (q) => q.select().from(auditChain).where(eq(auditChain.tenantId, tenant)).orderBy(asc(auditChain.position)));
  expect(chain.length).toBeGreaterThanOrEqual(6);
  return { tenant, ids: chain.map((c) => c.eventId) };
}

/** A copy of the record with id `from` under a new id, with an HMAC made up by someone without the key. */
const forgedCopy = (tenant: string, from: string, id: string) =>
  `insert into audit_events (tenant_id, id, occurred_at, actor_sub, actor_roles, action, resource_type, resource_id, patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, hmac)
   select tenant_id, '${id}', occurred_at, 'mallory', actor_roles, 'read', resource_type, resource_id, patient_id, outcome, request_id, client_ip, user_agent, detail, key_id, 'Zm9yZ2VkLWhtYWMtbWFkZS11cC1ieS1tYWxsb3J5'
   from audit_events where tenant_id = '${tenant}' and id = '${from}'`;

describe.each(storageModes())('audit verification on %s', (mode) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer(mode);
  });
  afterAll(() => srv?.close());

  const verify = (tenant: string, head?: { position: number; hash: string }) => verifyTenant(srv.deps.db, srv.deps.audit.key, tenant, head ? { head } : {});

  it('an untouched trail verifies: every record checked, and the head is reported', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    const r = await verify(tenant);
    expect(r).toMatchObject({ ok: true, tenantId: tenant, sealed: ids.length, checked: ids.length, pending: 0, head: { position: ids.length } });
  });

  it('a field of a sealed record changed (actor_sub): altered, at its position', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    await tamper(srv.deps.db, `update audit_events set actor_sub = 'someone-else' where tenant_id = '${tenant}' and id = '${ids[2]}'`);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'altered', position: 3, eventId: ids[2], checked: 2 });
  });

  it('a record re-signed by someone without the key (new HMAC, fields changed): altered', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    await tamper(srv.deps.db, `update audit_events set outcome = 'success', hmac = 'bm90LWEtcmVhbC1obWFj' where tenant_id = '${tenant}' and id = '${ids[4]}'`);
    const r = await verify(tenant);
    expect(r).toMatchObject({ ok: false, problem: 'altered', position: 5, eventId: ids[4] });
    expect((r as { message: string }).message).toMatch(/another HMAC than the one sealed/);
  });

  it('a record claiming another signing key: altered, naming the key ids', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    await tamper(srv.deps.db, `update audit_events set key_id = 'k000000000000' where tenant_id = '${tenant}' and id = '${ids[0]}'`);
    const r = await verify(tenant);
    expect(r).toMatchObject({ ok: false, problem: 'altered', position: 1, eventId: ids[0] });
    expect((r as { message: string }).message).toContain('k000000000000');
  });

  it('a sealed record deleted: removed, at its position', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    await tamper(srv.deps.db, `delete from audit_events where tenant_id = '${tenant}' and id = '${ids[1]}'`);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'removed', position: 2, eventId: ids[1], checked: 1 });
  });

  it('a link of the chain deleted: removed, naming the missing position', async () => {
    const { tenant } = await sealedTenant(srv);
    await tamper(srv.deps.db, `delete from audit_chain where tenant_id = '${tenant}' and position = 4`);
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'removed', position: 4, checked: 3 });
  });

  it('a link deleted and the later ones renumbered to close the gap: the chain breaks there', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    await tamper(
      srv.deps.db,
      `delete from audit_chain where tenant_id = '${tenant}' and position = 3;
       update audit_chain set position = position - 1 where tenant_id = '${tenant}' and position > 3`,
    );
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'bad-chain', position: 3, eventId: ids[3] });
  });

  it('two links swapped: reordered, at the first of them, naming where its link went', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    await tamper(
      srv.deps.db,
      `update audit_chain set position = 1000000 where tenant_id = '${tenant}' and position = 2;
       update audit_chain set position = 2 where tenant_id = '${tenant}' and position = 5;
       update audit_chain set position = 5 where tenant_id = '${tenant}' and position = 1000000`,
    );
    const r = await verify(tenant);
    expect(r).toMatchObject({ ok: false, problem: 'reordered', position: 2, eventId: ids[4], checked: 1 });
    expect((r as { message: string }).message).toMatch(/now at position 5/);
  });

  it('two records swapped in time (occurred_at exchanged): altered at the first', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    await tamper(
      srv.deps.db,
      `update audit_events a set occurred_at = b.occurred_at from audit_events b
        where a.tenant_id = '${tenant}' and b.tenant_id = '${tenant}' and ((a.id = '${ids[0]}' and b.id = '${ids[5]}') or (a.id = '${ids[5]}' and b.id = '${ids[0]}'))`,
    );
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'altered', position: 1, eventId: ids[0] });
  });

  it('a forged record inserted (made-up HMAC), not in the chain: inserted, naming it', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    const forged = randomUUID();
    await tamper(srv.deps.db, forgedCopy(tenant, ids[1]!, forged));
    const r = await verify(tenant);
    expect(r).toMatchObject({ ok: false, problem: 'inserted', eventId: forged, checked: ids.length });
    expect(r).not.toHaveProperty('position');
    // The sealer, which has the key, leaves it out of the chain.
    expect(await sealTenant(srv.deps.db, srv.deps.audit.key, tenant, new Date(Date.now() + 60_000), { graceMs: 0 })).toMatchObject({ sealed: 0, rejected: [forged] });
  });

  it('a forged record and a forged link appended to the chain: inserted, at the new position', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    const forged = randomUUID();
    const n = ids.length;
    await tamper(
      srv.deps.db,
      `${forgedCopy(tenant, ids[n - 1]!, forged)};
       insert into audit_chain (tenant_id, position, event_id, event_hmac, hash, sealed_at)
         values ('${tenant}', ${n + 1}, '${forged}', 'Zm9yZ2VkLWhtYWMtbWFkZS11cC1ieS1tYWxsb3J5', 'bWFkZS11cC1jaGFpbi1oYXNo', now())`,
    );
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'inserted', position: n + 1, eventId: forged, checked: n });
  });

  it('a forged record spliced into the middle of the chain (later links renumbered): inserted, at its position', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    const forged = randomUUID();
    await tamper(
      srv.deps.db,
      `${forgedCopy(tenant, ids[2]!, forged)};
       update audit_chain set position = position + 1000 where tenant_id = '${tenant}' and position >= 3;
       update audit_chain set position = position - 999 where tenant_id = '${tenant}' and position > 1000;
       insert into audit_chain (tenant_id, position, event_id, event_hmac, hash, sealed_at)
         values ('${tenant}', 3, '${forged}', 'Zm9yZ2VkLWhtYWMtbWFkZS11cC1ieS1tYWxsb3J5', 'bWFkZS11cC1jaGFpbi1oYXNo', now())`,
    );
    expect(await verify(tenant)).toMatchObject({ ok: false, problem: 'inserted', position: 3, eventId: forged, checked: 2 });
  });

  it('the tail cut off (last link and record deleted) passes alone, and is caught against a head recorded earlier', async () => {
    const { tenant, ids } = await sealedTenant(srv);
    const before = (await verify(tenant)) as Extract<VerifyResult, { ok: true }>;
    const n = ids.length;
    await tamper(
      srv.deps.db,
      `delete from audit_chain where tenant_id = '${tenant}' and position = ${n};
       delete from audit_events where tenant_id = '${tenant}' and id = '${ids[n - 1]}'`,
    );
    // The limitation, stated: a shorter chain is a valid chain.
    expect(await verify(tenant)).toMatchObject({ ok: true, sealed: n - 1 });
    expect(await verify(tenant, before.head!)).toMatchObject({ ok: false, problem: 'removed', position: n });
    // A head that the chain holds verifies; one that it holds with another hash does not.
    const still = (await verify(tenant)) as Extract<VerifyResult, { ok: true }>;
    expect(await verify(tenant, still.head!)).toMatchObject({ ok: true });
    expect(await verify(tenant, { position: 2, hash: still.head!.hash })).toMatchObject({ ok: false, problem: 'bad-chain', position: 2 });
  });

  it('records of other tenants are out of reach: verifying one tenant ignores tampering in another', async () => {
    const a = await sealedTenant(srv);
    const b = await sealedTenant(srv);
    await tamper(srv.deps.db, `update audit_events set actor_sub = 'x' where tenant_id = '${b.tenant}' and id = '${b.ids[0]}'`);
    expect(await verify(a.tenant)).toMatchObject({ ok: true });
    expect(await verify(b.tenant)).toMatchObject({ ok: false, problem: 'altered', position: 1 });
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
      const [link] = await db.read('bad', (q) => q.select().from(auditChain).where(and(eq(auditChain.tenantId, 'bad'), eq(auditChain.position, 2))));
      altered = link!.eventId;
      await tamper(db, `update audit_events set actor_sub = 'mallory' where tenant_id = 'bad' and id = '${altered}'`);
    } finally {
      await db.close();
    }

    const r = await cli.run(['audit', 'verify'], cliEnv({ DATA_DIR: dir }));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(new RegExp(`^FAIL bad: altered at position 2, event ${altered}: .* \\(1 records intact before it\\)$`)),
      expect.stringMatching(/^ok good: 3 sealed records verified, 0 pending; head 3:[\w-]{43}$/),
    ]);
    expect(r.stdout).not.toMatch(/mallory|alice/);
  });
});
