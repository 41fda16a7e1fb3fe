// The signing thread signs a batch exactly as the request thread would; when the thread fails, or
// after close(), batches are still signed (here), and the failure is logged.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../platform/log.js';
import { canonical, canonicalTail, hmacMatches, type AuditKey } from './audit-record.js';
import { createBatchSigner, type BatchSigner } from './batch-signer.js';
import { PendingBatch } from './pending-batch.js';
import type { AuditEventRow } from './audit.table.js';

const key: AuditKey = { id: 'test-key', secret: randomBytes(32) };
const NAUGHTY = ['Mozilla/5.0 (Ünïcödé; 日本語) 🏥', 'quote " backslash \\ comma , braces {} [] ]', 'line\nbreak\r\u2028', 'NULL', '\u0000nul'];

function pending(tenantId: string): { batch: PendingBatch; at: Date[] } {
  const batch = new PendingBatch(tenantId);
  const at = NAUGHTY.map((ua, i) => {
    const when = new Date(Date.UTC(2026, 10, 24, 9, 0, 0, i * 7));
    batch.add(when.getTime(), i % 2 ? null : '0190b7e2-1111-7000-8000-00000000000' + i, `sub-${i}`, canonicalTail({ actorSub: `sub-${i}`, actorRoles: ['clinician', 'staff'], action: 'read', resourceType: 'Patient', resourceId: `r${i}`, patientId: null, outcome: 'success', requestId: `req-${i}`, clientIp: '::1', userAgent: ua, detail: i === 0 ? { n: 1, code: 'X' } : null }));
    return when;
  });
  return { batch, at };
}

/** Each element of a signed batch as the row it stands for. */
function rowsOf(records: string): AuditEventRow[] {
  return (JSON.parse(records) as unknown[][]).map((a) => ({
    tenantId: a[0] as string, id: a[1] as string, occurredAt: new Date(a[2] as string), actorSub: a[3] as string, actorRoles: a[4] as string[],
    action: a[5] as AuditEventRow['action'], resourceType: a[6] as string, resourceId: a[7] as string | null, patientId: a[8] as string | null,
    outcome: a[9] as AuditEventRow['outcome'], requestId: a[10] as string, clientIp: a[11] as string | null, userAgent: a[12] as string | null,
    detail: a[13] as Record<string, unknown> | null, keyId: a[14] as string, hmac: a[15] as string,
  }));
}

describe('batch signer', () => {
  let signer: BatchSigner | undefined;
  afterEach(async () => {
    await signer?.close();
    signer = undefined;
  });

  async function expectSigned(s: BatchSigner) {
    const { batch, at } = pending('tenant-a');
    const closed = batch.close();
    const signed = await s.sign(closed);
    const rows = rowsOf(signed.records);
    expect(rows.map((r) => r.userAgent)).toEqual(NAUGHTY);
    expect(rows.map((r) => r.occurredAt)).toEqual(at);
    for (const r of rows) expect(hmacMatches(key, r)).toBe(true);
    // The element is the record's canonical form followed by key id and HMAC.
    expect(signed.records).toBe(`[${rows.map((r) => `${canonical(r).slice(0, -1)},"test-key","${r.hmac}"]`).join(',')}]`);
    expect(signed).toMatchObject({ tenantId: 'tenant-a', count: NAUGHTY.length, patientIds: closed.patientIds, actorSubs: closed.actorSubs });
    expect(signed.ids).toBe(`{${rows.map((r) => r.id).join(',')}}`);
    expect(signed.hmacs).toBe(`{${rows.map((r) => r.hmac).join(',')}}`);
    const sorted = rows.map((r) => r.id).sort();
    expect([signed.firstId, signed.lastId]).toEqual([sorted[0], sorted.at(-1)]);
    // Ids are of the records' times (UUIDv7: the first 48 bits are the milliseconds).
    expect(rows.map((r) => parseInt(r.id.replace(/-/g, '').slice(0, 12), 16))).toEqual(at.map((d) => d.getTime()));
  }

  it('signs every record of a batch in its thread: each HMAC verifies, ids and HMACs listed in order', async () => {
    const lines: string[] = [];
    signer = createBatchSigner(key, createLogger('info', { write: (l: string) => void lines.push(l) }));
    await expectSigned(signer);
    await expectSigned(signer);
    expect(lines).toEqual([]);
  });

  it('a thread that fails: the batches are signed here, and that is logged once', async () => {
    const lines: string[] = [];
    const failing = new URL('data:text/javascript,process.exit(3)');
    signer = createBatchSigner(key, createLogger('info', { write: (l: string) => void lines.push(l) }), failing);
    await expectSigned(signer);
    await expectSigned(signer);
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 'warn', reason: 'exited with code 3', msg: 'audit: the signing thread failed; signing batches on the request thread' }),
    ]);
  });

  it('after close(), batches are signed here', async () => {
    signer = createBatchSigner(key, createLogger('silent'));
    await expectSigned(signer);
    await signer.close();
    await expectSigned(signer);
  });
});
