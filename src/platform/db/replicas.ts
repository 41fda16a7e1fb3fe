// Read replicas (DATABASE_READ_URLS): list pages are read from them, so the primary keeps its
// capacity for writes and for reads by id (which the cache serves, or the primary on a miss).
//
// - A replica is read from only while it answers and is at most maxLagSeconds behind: checked in
//   the background every few seconds and by every health check. A read on a replica that fails for
//   want of a connection is answered by the primary, and the replica is set aside until a check
//   finds it well again. Reads are spread round robin over the usable replicas; with none, the
//   primary answers.
// - Only reads that tolerate replication lag may come here (http/replica-reads.ts: list pages,
//   never for a user who has just written). Nothing a write is based on is read from a replica.
// - A replica runs the same role and row-level security as the primary: its reads are scoped to
//   the tenant the same way (the roles and policies replicate with everything else).
import type { Db } from './db.js';
import { isDatabaseUnavailable, pgError } from './errors.js';
import { errorLine } from '../log.js';

export interface ReplicaState {
  /** `postgresql-replica-<n>`, in DATABASE_READ_URLS order (URLs hold credentials: never shown). */
  name: string;
  usable: boolean;
  lagSeconds: number | null;
  lastError: string | null;
}

export interface ReplicaSet {
  /** The primary for writes; read() on a usable replica, or on the primary when there is none. */
  readonly db: Db;
  /** Checks the named replica now; rejects with the reason it is not read from. */
  check(name: string, timeoutMs: number): Promise<void>;
  states(): ReplicaState[];
  close(): Promise<void>;
}

export interface ReplicaOptions {
  maxLagSeconds: number;
  /** How long a background check may wait for a replica. */
  checkTimeoutMs: number;
  /** Background checks this often. */
  checkIntervalMs?: number;
}

/**
 * A replica that cannot serve at all: unreachable, or refusing the connection (its database gone:
 * 3D000; credentials: class 28). Statement errors are the read's own and are not retried.
 */
const replicaFailed = (err: unknown) => isDatabaseUnavailable(err) || /^(28|3D)/.test(pgError(err)?.code ?? '');

/** The replicas (PostgreSQL Dbs, in DATABASE_READ_URLS order) in front of the primary; checks each once before it resolves. */
export async function createReplicaSet(primary: Db, dbs: readonly Db[], o: ReplicaOptions): Promise<ReplicaSet> {
  const replicas = dbs.map((db, i) => ({
    state: { name: `postgresql-replica-${i + 1}`, usable: false, lagSeconds: null, lastError: 'not checked yet' } as ReplicaState,
    db,
  }));
  let turn = 0;

  async function probe(r: (typeof replicas)[number], timeoutMs: number): Promise<void> {
    try {
      const lag = await r.db.replicationLagSeconds!(timeoutMs);
      r.state.lagSeconds = lag;
      r.state.lastError = lag !== null && lag > o.maxLagSeconds ? `replication lag ${lag.toFixed(1)} s is over ${o.maxLagSeconds} s` : null;
    } catch (err) {
      r.state.lastError = errorLine(err);
    }
    r.state.usable = r.state.lastError === null;
  }
  await Promise.all(replicas.map((r) => probe(r, o.checkTimeoutMs)));
  const timer = setInterval(() => void Promise.all(replicas.map((r) => probe(r, o.checkTimeoutMs))), o.checkIntervalMs ?? 5000);
  timer.unref();

  function next() {
    for (let i = 0; i < replicas.length; i++) {
      const r = replicas[turn++ % replicas.length]!;
      if (r.state.usable) return r;
    }
    return undefined;
  }

  const db: Db = {
    ...primary,
    async read(tenantId, fn) {
      const r = next();
      if (!r) return primary.read(tenantId, fn);
      try {
        return await r.db.read(tenantId, fn);
      } catch (err) {
        if (!replicaFailed(err)) throw err;
        r.state.usable = false;
        r.state.lastError = errorLine(err);
        return primary.read(tenantId, fn);
      }
    },
  };

  return {
    db,
    async check(name, timeoutMs) {
      const r = replicas.find((x) => x.state.name === name);
      if (!r) throw new Error(`no replica ${name}`);
      await probe(r, timeoutMs);
      if (r.state.lastError) throw new Error(r.state.lastError);
    },
    states: () => replicas.map((r) => ({ ...r.state })),
    async close() {
      clearInterval(timer);
      await Promise.all(replicas.map((r) => r.db.close()));
    },
  };
}
