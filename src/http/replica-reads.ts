// Which database a list page is read from, and read-your-writes.
//
// With read replicas configured (DATABASE_READ_URLS), list pages are read from a replica
// (platform/db/replicas.ts), unless the user wrote in the last DATABASE_READ_AFTER_WRITE_SECONDS:
// then from the primary, so that no client misses its own change in a list it asks for next.
// A writer is marked before its answer leaves (onSend): in the cache, which Redis shares between
// instances, and in this instance's memory, which still holds when Redis does not answer.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Deps } from '../container.js';
import type { Db } from '../platform/db/db.js';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Writers remembered per instance (oldest forgotten first). */
const MAX_LOCAL = 10_000;

const writerKey = (tenantId: string, sub: string) => `t:${tenantId}:writer:${encodeURIComponent(sub)}`;

export interface ReplicaReads {
  /** Marks writers before their answers leave (with replicas only). */
  register(app: FastifyInstance): void;
  /** The database a list page of this request is read from. */
  listDbOf(request: FastifyRequest): Promise<Db>;
}

// One per Deps (one per running service; tests run several in a process).
const ofDeps = new WeakMap<Deps, ReplicaReads>();

export function replicaReadsOf(deps: Deps): ReplicaReads {
  let r = ofDeps.get(deps);
  if (!r) ofDeps.set(deps, (r = createReplicaReads(deps)));
  return r;
}

function createReplicaReads(deps: Deps): ReplicaReads {
  const replicas = deps.replicas;
  const d = deps.config.database;
  const windowSeconds = d.kind === 'postgres' ? (d.replicas?.afterWriteSeconds ?? 0) : 0;
  // This instance's writers: key → when their window ends (ms).
  const local = new Map<string, number>();

  return {
    register(app) {
      if (!replicas) return;
      app.addHook('onSend', async (request, reply) => {
        const p = request.principal;
        if (!p || READS.has(request.method) || reply.statusCode >= 400) return;
        const key = writerKey(p.tenantId, p.sub);
        const until = Date.now() + windowSeconds * 1000;
        local.delete(key);
        local.set(key, until);
        if (local.size > MAX_LOCAL) local.delete(local.keys().next().value!);
        await deps.cache.setIfNewer(key, { version: until, value: true }, windowSeconds);
      });
    },
    async listDbOf(request) {
      const p = request.principal;
      if (!replicas || !p) return deps.db;
      const key = writerKey(p.tenantId, p.sub);
      if ((local.get(key) ?? 0) > Date.now()) return deps.db;
      const marked = await deps.cache.get<boolean>(key);
      return marked && marked.version > Date.now() ? deps.db : replicas.db;
    },
  };
}
