// A tenant's batched read records while they wait for their flush (auditor.ts), kept as the bytes
// of the batch row's values rather than as an object per record.
//
// A record waits up to AUDIT_FLUSH_MS (or until its batch is full: ~150 ms at 7,000 reads a
// second), long enough to outlive one or two young-generation collections. Kept as strings and
// objects, every waiting record was copied by the collector and promoted to the old generation:
// ~4 µs of GC per cached read (--trace-gc, tenth session). Appended to Buffers (memory outside the
// JS heap), a record's strings die young, and a batch is a handful of objects however many records
// it holds.
import { msOfId } from '../../platform/ids.js';
import { BATCH_SPAN_MS } from './audit.table.js';

/** Records per batch row at most. */
export const MAX_BATCH_RECORDS = 1000;

/**
 * A growing UTF-8 text: appends without reallocating each time, one flat string at the end (a
 * string made by concatenation would be flattened, i.e. copied, again when the driver sends it).
 */
class TextBuilder {
  private buf: Buffer;
  private length = 0;
  constructor(capacity: number, start: string) {
    this.buf = Buffer.allocUnsafe(capacity);
    this.append(start);
  }
  append(s: string): void {
    const needed = this.length + Buffer.byteLength(s);
    if (needed > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    this.length += this.buf.write(s, this.length, 'utf8');
  }
  /** The text with `end` appended: once, when the batch closes. */
  end(end: string): string {
    this.append(end);
    return this.buf.toString('utf8', 0, this.length);
  }
}

/** A closed batch: the values of its audit_event_batches row, as they will be inserted (and retried). */
export interface Batch {
  tenantId: string;
  /** The smallest record id: the row's id, so that a retry after a lost acknowledgement conflicts. */
  firstId: string;
  lastId: string;
  count: number;
  patientIds: string[];
  actorSubs: string[];
  /** JSON array of the records' elements (audit-record.ts, signedElement). */
  records: string;
  /** The records' ids and HMACs in the same order, as array literals (migration 0013). */
  ids: string;
  hmacs: string;
}

export class PendingBatch {
  count = 0;
  private firstId = '';
  private lastId = '';
  private firstMs = Infinity;
  private lastMs = -Infinity;
  private readonly patients = new Set<string>();
  private readonly actors = new Set<string>();
  // Small to start (a quiet tenant's batch holds a few records), doubling as needed.
  private readonly records = new TextBuilder(16 * 1024, '[');
  private readonly ids = new TextBuilder(2 * 1024, '{');
  private readonly hmacs = new TextBuilder(2 * 1024, '{');

  constructor(readonly tenantId: string) {}

  /** Whether a record with this id may join without the batch spanning more than BATCH_SPAN_MS. */
  fits(id: string): boolean {
    if (this.count === 0) return true;
    const ms = msOfId(id);
    return Math.max(this.lastMs, ms) - Math.min(this.firstMs, ms) <= BATCH_SPAN_MS;
  }

  /**
   * Adds a record: its element, id and HMAC (neither needs quoting in an array literal: a UUID, and
   * base64url, which is never NULL).
   */
  add(id: string, patientId: string | null, actorSub: string, element: string, hmac: string): void {
    if (this.count > 0) {
      this.records.append(',');
      this.ids.append(',');
      this.hmacs.append(',');
    }
    this.records.append(element);
    this.ids.append(id);
    this.hmacs.append(hmac);
    this.count++;
    if (this.count === 1 || id < this.firstId) this.firstId = id;
    if (this.count === 1 || id > this.lastId) this.lastId = id;
    const ms = msOfId(id);
    this.firstMs = Math.min(this.firstMs, ms);
    this.lastMs = Math.max(this.lastMs, ms);
    if (patientId !== null) this.patients.add(patientId);
    this.actors.add(actorSub);
  }

  close(): Batch {
    return {
      tenantId: this.tenantId,
      firstId: this.firstId,
      lastId: this.lastId,
      count: this.count,
      patientIds: [...this.patients],
      actorSubs: [...this.actors],
      records: this.records.end(']'),
      ids: this.ids.end('}'),
      hmacs: this.hmacs.end('}'),
    };
  }
}
