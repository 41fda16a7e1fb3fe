// Online key rotation: every stored value not wrapped under the primary key is re-wrapped under
// it, a batch at a time, while the service keeps running. Reads never stop working, because the
// ring still holds the old keys and each value names the key it is under; writes made meanwhile
// already use the primary. A target (e.g. patients' identifiers) says how to page through its
// records and how to write a batch back; this file does the crypto, the counting and the pacing.
//
// Rewrapping touches only the wrapped data key (key-ring.ts), so it needs neither the plaintext
// nor the associated data. Runs are idempotent: values already under the primary are left alone,
// so a run that stopped (crash, abort, conflicts) is finished by running again, from its cursor
// or from the start.
import { setTimeout as sleep } from 'node:timers/promises';
import { DecryptionError, isCiphertext } from './ciphertext.js';
import type { KeyRing } from './key-ring.js';

export interface RotationChange<R> {
  readonly record: R;
  /** Old ciphertext → its re-wrapped replacement, for each value of the record that moved. */
  readonly replacements: ReadonlyMap<string, string>;
}

export interface RotationTarget<R> {
  /** Names the target in reports, e.g. "patients.identifiers". */
  readonly name: string;
  /**
   * Up to `limit` records after the cursor `after` (undefined: from the start) in a stable order,
   * and the cursor of the last one (undefined when there are no more). May skip records with
   * nothing to rotate; an empty page ends the run.
   */
  listBatch(after: string | undefined, limit: number): Promise<{ records: readonly R[]; next: string | undefined }>;
  /** The stored values of a record to consider; plaintext ones are ignored. */
  ciphertextsOf(record: R): readonly string[];
  /**
   * Writes the changed records (in one transaction, ideally) each with a compare-and-set on the
   * values it read, so a concurrent change wins: true where written, false where the record had
   * changed (it is then left to its writer, who used the primary key, or to the next run).
   * Do not bump the resource version: the resource did not change, clients' ETags stay valid.
   */
  write(changes: readonly RotationChange<R>[]): Promise<readonly boolean[]>;
}

export interface RotateOptions {
  /** Records per batch (1-10,000). Default 500. */
  readonly batchSize?: number;
  /** Resume after this cursor (a report's `cursor`). */
  readonly from?: string;
  /** Pause between batches, to leave room for live traffic. Default 0. */
  readonly pauseMs?: number;
  /** Aborting stops before the next batch; the report then carries the cursor to resume from. */
  readonly signal?: AbortSignal;
  /** After each batch, with the totals so far (e.g. to log progress). */
  readonly onBatch?: (progress: RotationReport) => void;
}

export interface RotationReport {
  readonly target: string;
  readonly primaryKeyId: string;
  readonly batches: number;
  /** Records read. */
  readonly scanned: number;
  /** Values now wrapped under the primary key that were not before (written). */
  readonly rotated: number;
  /** Values that already were under the primary key. */
  readonly current: number;
  /** Records changed concurrently and so not written; run again to be sure they are done. */
  readonly conflicts: number;
  /** Values that could not be re-wrapped (their key is not in the ring, or they are damaged). */
  readonly failed: number;
  /** Distinct failure reasons (never values), at most 10. */
  readonly failures: readonly string[];
  /** True when the run reached the end of the target. */
  readonly complete: boolean;
  /** Where to resume (`from`) when not complete. */
  readonly cursor?: string;
}

const MAX_FAILURE_REASONS = 10;

export async function rotate<R>(ring: KeyRing, target: RotationTarget<R>, o: RotateOptions = {}): Promise<RotationReport> {
  const batchSize = o.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new RangeError('batchSize must be a whole number from 1 to 10000');
  const t = { batches: 0, scanned: 0, rotated: 0, current: 0, conflicts: 0, failed: 0 };
  const failures = new Set<string>();
  let cursor = o.from;
  const report = (complete: boolean): RotationReport => ({
    target: target.name,
    primaryKeyId: ring.primaryKeyId,
    ...t,
    failures: [...failures],
    complete,
    ...(complete || cursor === undefined ? {} : { cursor }),
  });

  for (;;) {
    if (o.signal?.aborted) return report(false);
    const page = await target.listBatch(cursor, batchSize);
    if (page.records.length === 0) return report(true);
    const changes: RotationChange<R>[] = [];
    for (const record of page.records) {
      const replacements = new Map<string, string>();
      for (const value of target.ciphertextsOf(record)) {
        if (!isCiphertext(value)) continue;
        try {
          if (!ring.needsRotation(value)) t.current++;
          else replacements.set(value, ring.rewrap(value));
        } catch (err) {
          if (!(err instanceof DecryptionError)) throw err;
          t.failed++;
          if (failures.size < MAX_FAILURE_REASONS) failures.add(err.message);
        }
      }
      if (replacements.size > 0) changes.push({ record, replacements });
    }
    if (changes.length > 0) {
      const written = await target.write(changes);
      if (written.length !== changes.length) throw new Error(`rotation target ${target.name} answered ${written.length} results for ${changes.length} changes`);
      changes.forEach((c, i) => {
        if (written[i]) t.rotated += c.replacements.size;
        else t.conflicts++;
      });
    }
    t.batches++;
    t.scanned += page.records.length;
    cursor = page.next;
    o.onBatch?.(report(cursor === undefined));
    if (cursor === undefined) return report(true);
    if (o.pauseMs) await sleep(o.pauseMs, undefined, { signal: o.signal }).catch(() => undefined);
  }
}

export interface RotationSummary extends Omit<RotationReport, 'target' | 'cursor' | 'batches'> {
  readonly targets: readonly RotationReport[];
}

/** Targets of different record types side by side (a target's record type is its own business). */
export type AnyRotationTarget = RotationTarget<any>;

/** Every target in turn, and the totals: what `carebase keys rotate` prints. */
export async function rotateAll(ring: KeyRing, targets: readonly AnyRotationTarget[], o: Omit<RotateOptions, 'from'> = {}): Promise<RotationSummary> {
  const reports: RotationReport[] = [];
  for (const target of targets) {
    const r = await rotate(ring, target, o);
    reports.push(r);
    if (!r.complete) break; // aborted: the rest were not started
  }
  const sum = (k: 'scanned' | 'rotated' | 'current' | 'conflicts' | 'failed') => reports.reduce((n, r) => n + r[k], 0);
  return {
    primaryKeyId: ring.primaryKeyId,
    scanned: sum('scanned'),
    rotated: sum('rotated'),
    current: sum('current'),
    conflicts: sum('conflicts'),
    failed: sum('failed'),
    failures: [...new Set(reports.flatMap((r) => r.failures))].slice(0, MAX_FAILURE_REASONS),
    complete: reports.length === targets.length && reports.every((r) => r.complete),
    targets: reports,
  };
}
