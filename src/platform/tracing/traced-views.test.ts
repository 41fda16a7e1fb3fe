// The Db and resource cache as a request sees them (traced-db.ts, resource-cache.ts): with tracing
// on, every request gets a view of one class, traced or not, and only a traced request's operations
// become spans; with tracing off, the Db and cache themselves.
import { afterEach, describe, expect, it } from 'vitest';
import { tracedResourceCache, type ResourceCache } from '../../features/shared/resource-cache.js';
import type { Db } from '../db/db.js';
import { tracedDb } from './traced-db.js';
import { installTracing, type TraceContext, type TracingImpl } from './tracing.js';

const parent: TraceContext = { traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` };

/** Tracing that records the spans asked of it and runs their work under a child context. */
function recordingTracing() {
  const spans: { parent: TraceContext | undefined; name: string; kind: string; attributes: object }[] = [];
  const impl: TracingImpl = {
    serverSpan: () => undefined,
    span: (p, name, kind, attributes, fn) => {
      spans.push({ parent: p, name, kind, attributes });
      return fn({ ...parent, spanId: '3'.repeat(16) });
    },
    consumerSpan: (_carrier, _name, _attributes, fn) => fn(undefined),
    shutdown: async () => {},
  };
  installTracing(impl);
  return spans;
}

function fakeDb(): Db & { calls: string[] } {
  const calls: string[] = [];
  const op = (name: string) => async (tenantId: string, fn: (q: never) => Promise<unknown>) => {
    calls.push(`${name} ${tenantId}`);
    return fn(undefined as never);
  };
  return {
    kind: 'postgres',
    calls,
    read: op('read'),
    autocommit: op('autocommit'),
    tx: op('tx'),
    withOwner: async (fn) => fn(undefined as never),
    ping: async () => {},
    close: async () => {},
  } as Db & { calls: string[] };
}

function fakeCache(): ResourceCache & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    get: async (t, type, id) => (calls.push(`get ${t} ${type} ${id}`), { hit: false }),
    put: async (t, type, r) => void calls.push(`put ${t} ${type} ${r.id}`),
    tombstone: async (t, type, id) => void calls.push(`tombstone ${t} ${type} ${id}`),
  };
}

afterEach(() => installTracing(undefined));

describe('request views of the Db and the resource cache', () => {
  it('with tracing off, are the Db and the cache themselves', () => {
    const db = fakeDb();
    const rc = fakeCache();
    expect(tracedDb(db, undefined)).toBe(db);
    expect(tracedResourceCache(rc, 'redis', undefined)).toBe(rc);
  });

  it('with tracing on, traced and untraced requests get views of one class; only the traced one makes spans', async () => {
    const spans = recordingTracing();
    const db = fakeDb();
    const untraced = tracedDb(db, undefined);
    const traced = tracedDb(db, parent);
    expect(untraced).not.toBe(db);
    expect(Object.getPrototypeOf(untraced)).toBe(Object.getPrototypeOf(traced));
    expect(untraced.kind).toBe('postgres');

    expect(await untraced.read('t1', async () => 'r')).toBe('r');
    expect(await untraced.tx('t1', async () => 'x')).toBe('x');
    expect(spans).toEqual([]);
    expect(await traced.read('t1', async () => 'r')).toBe('r');
    expect(await traced.autocommit('t2', async () => 'a')).toBe('a');
    expect(await traced.tx('t3', async () => 'x')).toBe('x');
    expect(db.calls).toEqual(['read t1', 'tx t1', 'read t1', 'autocommit t2', 'tx t3']);
    expect(spans).toEqual(
      (['read', 'autocommit', 'tx'] as const).map((op) => ({
        parent,
        name: `db.${op}`,
        kind: 'client',
        attributes: { 'db.system.name': 'postgresql', 'db.system': 'postgresql', 'carebase.db.driver': 'postgres', 'db.operation.name': op },
      })),
    );
  });

  it('with tracing on, a Redis cache is seen through one class whether traced or not; the in-process cache is never wrapped', async () => {
    const spans = recordingTracing();
    const rc = fakeCache();
    const untraced = tracedResourceCache(rc, 'redis', undefined);
    const traced = tracedResourceCache(rc, 'redis', parent);
    expect(Object.getPrototypeOf(untraced)).toBe(Object.getPrototypeOf(traced));
    expect(tracedResourceCache(rc, 'memory', parent)).toBe(rc);

    await untraced.get('t1', 'patients', 'p1');
    expect(spans).toEqual([]);
    await traced.get('t1', 'patients', 'p1');
    await traced.put('t1', 'patients', { id: 'p1', version: 1 });
    await traced.tombstone('t1', 'patients', 'p1', 2);
    expect(rc.calls).toEqual(['get t1 patients p1', 'get t1 patients p1', 'put t1 patients p1', 'tombstone t1 patients p1']);
    expect(spans.map((s) => [s.name, s.kind, s.parent])).toEqual([
      ['cache.get', 'client', parent],
      ['cache.put', 'client', parent],
      ['cache.tombstone', 'client', parent],
    ]);
    // No key in a span: keys hold tenant and resource ids.
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toMatch(/t1|p1/);
  });
});
