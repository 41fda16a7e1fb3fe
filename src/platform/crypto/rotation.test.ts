// The rotation engine against an in-memory target: values move to the primary key in batches,
// reads keep working throughout, concurrent changes win, failures are counted without values,
// a stopped run resumes from its cursor, and a second run finds nothing left to do.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isCiphertext, keyIdOf } from './ciphertext.js';
import { createKeyRing, type KeyRing } from './key-ring.js';
import { rotate, rotateAll, type RotationChange, type RotationTarget } from './rotation.js';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const indexKey = randomBytes(32);
const ring = (...keys: [string, Buffer][]): KeyRing => createKeyRing({ keys: keys.map(([id, key]) => ({ id, key })), blindIndexKey: indexKey });
const oldRing = ring(['k1', k1]);
const newRing = ring(['k2', k2], ['k1', k1]);
const onlyNew = ring(['k2', k2]);

interface Rec {
  id: string;
  values: string[];
}
const aadOf = (id: string, i: number) => ['tenant-a', id, String(i)];
const plainOf = (id: string, i: number) => `secret-${id}-${i}`;

/** A table of `n` records with two values each, all under k1, plus what the test needs to watch. */
function table(n: number) {
  const rows = new Map<string, Rec>();
  for (let r = 0; r < n; r++) {
    const id = `r${String(r).padStart(4, '0')}`;
    rows.set(id, { id, values: [0, 1].map((i) => oldRing.encrypt(plainOf(id, i), aadOf(id, i))) });
  }
  const lists: (string | undefined)[] = [];
  let conflictOn = new Set<string>();
  const target: RotationTarget<Rec> = {
    name: 'test.values',
    async listBatch(after, limit) {
      lists.push(after);
      const ids = [...rows.keys()].sort().filter((id) => after === undefined || id > after).slice(0, limit);
      // Records are read as copies, as from a database.
      return { records: ids.map((id) => ({ id, values: [...rows.get(id)!.values] })), next: ids.length === limit ? ids.at(-1) : undefined };
    },
    ciphertextsOf: (rec) => rec.values,
    async write(changes: readonly RotationChange<Rec>[]) {
      return changes.map(({ record, replacements }) => {
        const row = rows.get(record.id)!;
        // Compare-and-set on the values read; a record "changed meanwhile" refuses.
        if (conflictOn.has(record.id) || row.values.join() !== record.values.join()) return false;
        row.values = row.values.map((v) => replacements.get(v) ?? v);
        return true;
      });
    },
  };
  return {
    rows,
    target,
    lists,
    conflictOn: (ids: string[]) => (conflictOn = new Set(ids)),
    keyIds: () => [...rows.values()].flatMap((r) => r.values.filter(isCiphertext).map(keyIdOf)),
    /** Every value decrypts to what was written, with `r`. */
    readAll: (r: KeyRing) => [...rows.values()].every((row) => row.values.every((v, i) => !isCiphertext(v) || r.decrypt(v, aadOf(row.id, i)) === plainOf(row.id, i))),
  };
}

describe('rotate', () => {
  it('re-wraps every value under the primary key, in batches, and reports the counts', async () => {
    const t = table(25);
    const progress: number[] = [];
    const report = await rotate(newRing, t.target, {
      batchSize: 10,
      onBatch: (p) => {
        progress.push(p.scanned);
        // Reads keep working mid-rotation with the ring that holds both keys.
        expect(t.readAll(newRing)).toBe(true);
      },
    });
    expect(report).toEqual({
      target: 'test.values',
      primaryKeyId: 'k2',
      batches: 3,
      scanned: 25,
      rotated: 50,
      current: 0,
      conflicts: 0,
      failed: 0,
      failures: [],
      complete: true,
    });
    expect(progress).toEqual([10, 20, 25]);
    expect(new Set(t.keyIds())).toEqual(new Set(['k2']));
    // Done: the old key can leave the ring, and every value still reads back.
    expect(t.readAll(onlyNew)).toBe(true);
  });

  it('a second run finds nothing to do', async () => {
    const t = table(7);
    await rotate(newRing, t.target, { batchSize: 3 });
    const before = [...t.rows.values()].map((r) => r.values.join());
    const again = await rotate(newRing, t.target, { batchSize: 3 });
    expect(again).toMatchObject({ scanned: 7, rotated: 0, current: 14, complete: true });
    expect([...t.rows.values()].map((r) => r.values.join())).toEqual(before);
  });

  it('leaves plaintext alone and counts values under keys missing from the ring as failures, without their values', async () => {
    const t = table(3);
    const stray = ring(['k0', randomBytes(32)]).encrypt('do-not-print-me', ['x']);
    t.rows.get('r0001')!.values.push('plain text', stray);
    const report = await rotate(newRing, t.target);
    expect(report).toMatchObject({ rotated: 6, failed: 1, complete: true });
    expect(report.failures).toEqual([expect.stringMatching(/"k0"/)]);
    expect(JSON.stringify(report)).not.toContain('do-not-print-me');
    expect(JSON.stringify(report)).not.toContain(stray.slice(10));
    expect(t.rows.get('r0001')!.values.slice(2)).toEqual(['plain text', stray]);
  });

  it('records changed concurrently are not overwritten; the next run rotates them', async () => {
    const t = table(6);
    t.conflictOn(['r0002', 'r0004']);
    const first = await rotate(newRing, t.target, { batchSize: 4 });
    expect(first).toMatchObject({ scanned: 6, rotated: 8, conflicts: 2, complete: true });
    expect(t.keyIds().filter((k) => k === 'k1')).toHaveLength(4);
    t.conflictOn([]);
    const second = await rotate(newRing, t.target, { batchSize: 4 });
    expect(second).toMatchObject({ rotated: 4, current: 8, conflicts: 0 });
    expect(t.readAll(onlyNew)).toBe(true);
  });

  it('stops when aborted and resumes from the reported cursor', async () => {
    const t = table(10);
    const abort = new AbortController();
    const stopped = await rotate(newRing, t.target, { batchSize: 4, signal: abort.signal, onBatch: () => abort.abort() });
    expect(stopped).toMatchObject({ batches: 1, scanned: 4, rotated: 8, complete: false, cursor: 'r0003' });
    expect(t.keyIds().filter((k) => k === 'k1')).toHaveLength(12);
    expect(t.readAll(newRing)).toBe(true);

    const listed = t.lists.length;
    const resumed = await rotate(newRing, t.target, { batchSize: 4, from: stopped.cursor });
    expect(t.lists.slice(listed)).toEqual(['r0003', 'r0007']); // no record read twice
    expect(resumed).toMatchObject({ scanned: 6, rotated: 12, complete: true });
    expect(resumed.cursor).toBeUndefined();
    expect(t.readAll(onlyNew)).toBe(true);
  });

  it('pauses between batches when asked', async () => {
    const t = table(3);
    const started = Date.now();
    await rotate(newRing, t.target, { batchSize: 1, pauseMs: 40 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * 40 - 5);
  });

  it('refuses a silly batch size and a target that answers for the wrong number of changes', async () => {
    const t = table(2);
    await expect(rotate(newRing, t.target, { batchSize: 0 })).rejects.toThrow(RangeError);
    await expect(rotate(newRing, t.target, { batchSize: 10_001 })).rejects.toThrow(RangeError);
    await expect(rotate(newRing, { ...t.target, write: async () => [] })).rejects.toThrow(/answered 0 results for 2 changes/);
  });
});

describe('rotateAll', () => {
  it('with no targets yet: an honest empty report', async () => {
    expect(await rotateAll(newRing, [])).toEqual({ primaryKeyId: 'k2', scanned: 0, rotated: 0, current: 0, conflicts: 0, failed: 0, failures: [], complete: true, targets: [] });
  });

  it('sums the targets', async () => {
    const a = table(3);
    const b = table(4);
    const summary = await rotateAll(newRing, [a.target, { ...b.target, name: 'other' }], { batchSize: 2 });
    expect(summary).toMatchObject({ scanned: 7, rotated: 14, complete: true });
    expect(summary.targets.map((r) => r.target)).toEqual(['test.values', 'other']);
  });
});
