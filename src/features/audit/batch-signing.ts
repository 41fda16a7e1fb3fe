// Signing a closed batch of read records (pending-batch.ts): each line becomes a record with an id
// of its time, its canonical form and HMAC, and the batch the values of its audit_event_batches
// row. Runs in the signing thread (batch-signer.ts), or here when that thread is unavailable; the
// result is the same either way.
import { idAt } from '../../platform/ids.js';
import { canonicalFrom, hmacOf, signedElement, type AuditKey } from './audit-record.js';
import type { Batch, UnsignedBatch } from './pending-batch.js';

export function signBatch(key: AuditKey, b: UnsignedBatch): Batch {
  const elements: string[] = [];
  const ids: string[] = [];
  const hmacs: string[] = [];
  let firstId = '';
  let lastId = '';
  for (let start = 0; start < b.lines.length; ) {
    const end = b.lines.indexOf('\n', start);
    const bracket = b.lines.indexOf('[', start);
    const at = new Date(Number(b.lines.slice(start, bracket)));
    const id = idAt(at);
    const text = canonicalFrom(b.tenantId, id, at, b.lines.slice(bracket, end));
    const hmac = hmacOf(key, text);
    elements.push(signedElement(key, text, hmac));
    ids.push(id);
    hmacs.push(hmac);
    if (firstId === '' || id < firstId) firstId = id;
    if (id > lastId) lastId = id;
    start = end + 1;
  }
  return {
    tenantId: b.tenantId,
    firstId,
    lastId,
    count: ids.length,
    patientIds: b.patientIds,
    actorSubs: b.actorSubs,
    // Neither needs quoting in an array literal: UUIDs, and base64url (never NULL).
    records: `[${elements.join(',')}]`,
    ids: `{${ids.join(',')}}`,
    hmacs: `{${hmacs.join(',')}}`,
  };
}
