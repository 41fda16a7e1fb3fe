// The replica set's routing, against fake databases whose lag and failures the test sets: which
// reads go where, the lag limit, fallback to the primary, and what a health check reports.
import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from './db.js';
import { createReplicaSet, type ReplicaSet } from './replicas.js';

/** A database that answers reads with its name, and a replication lag (or an error) the test sets. */
function fakeDb(name: string) {
  const f = {
    lag: 0 as number | null,
    down: false,
    statementError: false,
    reads: 0,
    db: {
      kind: 'postgres',
      async read(_tenant: string, fn: (q: never) => Promise<unknown>) {
        if (f.down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5433'), { code: 'ECONNREFUSED' });
        if (f.statementError) throw Object.assign(new Error('division by zero'), { code: '22012', severity: 'ERROR' });
        f.reads++;
        return fn(name as never);
      },
      async replicationLagSeconds() {
        if (f.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5433');
        return f.lag;
      },
      async close() {},
    } as unknown as Db,
  };
  return f;
}

const readFrom = (set: ReplicaSet) => set.db.read('t1', async (q) => q as unknown as string);

describe('read replicas (routing)', () => {
  let set: ReplicaSet | undefined;
  afterEach(() => set?.close());

  it('spreads reads round robin over usable replicas; writes and owner work stay on the primary', async () => {
    const [primary, r1, r2] = [fakeDb('primary'), fakeDb('r1'), fakeDb('r2')];
    set = await createReplicaSet(primary.db, [r1.db, r2.db], { maxLagSeconds: 10, checkTimeoutMs: 100, checkIntervalMs: 60_000 });
    expect(await Promise.all([1, 2, 3, 4].map(() => readFrom(set!)))).toEqual(['r1', 'r2', 'r1', 'r2']);
    expect(set.db.tx).toBe(primary.db.tx);
    expect(set.db.autocommit).toBe(primary.db.autocommit);
    expect(set.states().map((s) => s.name)).toEqual(['postgresql-replica-1', 'postgresql-replica-2']);
  });

  it('a replica over the lag limit is not read from, until a check finds it caught up; a non-standby (no lag) is read from', async () => {
    const [primary, r1] = [fakeDb('primary'), fakeDb('r1')];
    r1.lag = 25.5;
    set = await createReplicaSet(primary.db, [r1.db], { maxLagSeconds: 10, checkTimeoutMs: 100, checkIntervalMs: 60_000 });
    expect(await readFrom(set)).toBe('primary');
    await expect(set.check('postgresql-replica-1', 100)).rejects.toThrow('replication lag 25.5 s is over 10 s');
    expect(set.states()[0]).toMatchObject({ usable: false, lagSeconds: 25.5 });
    r1.lag = null;
    await set.check('postgresql-replica-1', 100);
    expect(set.states()[0]).toMatchObject({ usable: true, lagSeconds: null, lastError: null });
    expect(await readFrom(set)).toBe('r1');
  });

  it('a replica that fails to connect is answered for by the primary and set aside; a statement error is the read\'s own', async () => {
    const [primary, r1] = [fakeDb('primary'), fakeDb('r1')];
    set = await createReplicaSet(primary.db, [r1.db], { maxLagSeconds: 10, checkTimeoutMs: 100, checkIntervalMs: 60_000 });
    r1.down = true;
    expect(await readFrom(set)).toBe('primary');
    expect(set.states()[0]).toMatchObject({ usable: false, lastError: expect.stringContaining('ECONNREFUSED') });
    expect(await readFrom(set)).toBe('primary');
    expect(r1.reads).toBe(0);
    r1.down = false;
    await set.check('postgresql-replica-1', 100);
    r1.statementError = true;
    await expect(readFrom(set)).rejects.toThrow('division by zero');
    expect(primary.reads).toBe(2);
    expect(set.states()[0]!.usable).toBe(true);
  });

  it('checks again in the background', async () => {
    const [primary, r1] = [fakeDb('primary'), fakeDb('r1')];
    r1.down = true;
    set = await createReplicaSet(primary.db, [r1.db], { maxLagSeconds: 10, checkTimeoutMs: 100, checkIntervalMs: 20 });
    expect(set.states()[0]!.usable).toBe(false);
    r1.down = false;
    await new Promise((r) => setTimeout(r, 80));
    expect(await readFrom(set)).toBe('r1');
  });
});
