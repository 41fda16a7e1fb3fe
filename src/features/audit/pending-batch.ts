// A tenant's batched read records while they wait for their flush (auditor.ts), kept as the bytes
// of one text rather than as an object per record; signed only when the batch is flushed, off the
// request thread (batch-signer.ts).
//
// A record waits up to AUDIT_FLUSH_MS (or until its batch is full: ~150 ms at 7,000 reads a
// second), long enough to outlive one or two young-generation collections. Kept as strings and
// objects, every waiting record was copied by the collector and promoted to the old generation:
// ~4 µs of GC per cached read (--trace-gc, tenth session). Appended to Buffers (memory outside the
// JS heap), a record's strings die young, and a batch is a handful of objects however many records
// it holds.
//
// What a record keeps is one line: its time in milliseconds and its canonicalTail() (every field
// but tenant, id and time; the tenant is the batch's). The id, the canonical form and the HMAC are
// made from it when the batch is signed (batch-signing.ts).
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
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
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
  /** The text: once, when the batch closes. */
  text(): string {
    return this.buf.toString('utf8', 0, this.length);
  }
}

/** A closed batch, signed: the values of its audit_event_batches row, as they will be inserted (and retried). */
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

/** A closed batch before signing: its records as lines of `<ms><canonicalTail>`. */
export interface UnsignedBatch {
  tenantId: string;
  count: number;
  patientIds: string[];
  actorSubs: string[];
  lines: string;
}

export class PendingBatch {
  count = 0;
  private firstMs = Infinity;
  private lastMs = -Infinity;
  private readonly patients = new Set<string>();
  private readonly actors = new Set<string>();
  // Small to start (a quiet tenant's batch holds a few records), doubling as needed.
  private readonly lines = new TextBuilder(16 * 1024);

  constructor(readonly tenantId: string) {}

  /** Whether a record at `ms` may join without the batch spanning more than BATCH_SPAN_MS. */
  fits(ms: number): boolean {
    return this.count === 0 || Math.max(this.lastMs, ms) - Math.min(this.firstMs, ms) <= BATCH_SPAN_MS;
  }

  /** Adds a record: its time and canonicalTail() (JSON: never a raw line break). */
  add(ms: number, patientId: string | null, actorSub: string, tail: string): void {
    this.lines.append(`${ms}${tail}\n`);
    this.count++;
    this.firstMs = Math.min(this.firstMs, ms);
    this.lastMs = Math.max(this.lastMs, ms);
    if (patientId !== null) this.patients.add(patientId);
    this.actors.add(actorSub);
  }

  close(): UnsignedBatch {
    return { tenantId: this.tenantId, count: this.count, patientIds: [...this.patients], actorSubs: [...this.actors], lines: this.lines.text() };
  }
}
