// One contract, two adapters: every test in `contract` runs against the in-process LRU and, when
// TEST_REDIS_URL is set, against real Redis. Then what only one adapter has: the outage behaviour
// of the Redis adapter (a closed port, a hung server, a Redis that goes away and comes back) and
// the LRU bound of the memory adapter.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, type Logger } from '../log.js';
import type { Cache, CacheEntry } from './cache.js';
import { createCache } from './index.js';
import { createMemoryCache } from './memory.js';
import { createRedisCache, type RedisCacheOptions } from './redis.js';

const redisUrl = inject('redisUrl');
// Every key this run writes to Redis lives under this prefix; afterAll removes them all.
const runPrefix = `carebase:test:${randomUUID()}:`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function capture(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const log = createLogger('debug', { write: (s: string) => void out.push(s) });
  return { log, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const opened: Cache[] = [];
function redisCache(o: Partial<RedisCacheOptions> & { url: string }): Cache {
  const c = createRedisCache({ log: capture().log, connectTimeoutMs: 1000, commandTimeoutMs: 500, keyPrefix: runPrefix, ...o });
  opened.push(c);
  return c;
}

afterAll(async () => {
  await Promise.all(opened.map((c) => c.close()));
  if (!redisUrl) return;
  const raw = new Redis(redisUrl);
  let cursor = '0';
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', `${runPrefix}*`, 'COUNT', 500);
    if (keys.length) await raw.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  await raw.quit();
});

const adapters: [string, (() => Promise<Cache>) | null][] = [
  ['memory', async () => createMemoryCache({ maxEntries: 10_000 })],
  [
    'redis',
    redisUrl
      ? async () => {
          const c = redisCache({ url: redisUrl });
          await c.ping(5000);
          return c;
        }
      : null,
  ],
];

describe.each(adapters)('cache contract: %s', (name, make) => {
  let cache: Cache;
  let n = 0;
  const key = () => `tenant-a:patient:${name}-${++n}`;

  beforeAll(async () => {
    if (make) cache = await make();
  });

  it.skipIf(!make)('reports its kind and answers ping', async () => {
    expect(cache.kind).toBe(name);
    await expect(cache.ping(1000)).resolves.toBeUndefined();
  });

  it.skipIf(!make)('a miss is undefined', async () => {
    expect(await cache.get(key())).toBeUndefined();
  });

  it.skipIf(!make)('returns what was set, as a copy', async () => {
    const k = key();
    const value = { name: 'Zoë', tags: ['a', 'b'], nested: { n: 1, ok: true, none: null } };
    expect(await cache.setIfNewer(k, { version: 1, value }, 60)).toBe(true);
    value.tags.push('mutated after set');
    const got = await cache.get<typeof value>(k);
    expect(got).toEqual({ version: 1, value: { name: 'Zoë', tags: ['a', 'b'], nested: { n: 1, ok: true, none: null } } });
    got!.value!.tags.push('mutated after get');
    expect((await cache.get<typeof value>(k))!.value!.tags).toEqual(['a', 'b']);
  });

  it.skipIf(!make)('round-trips any JSON value', async () => {
    for (const value of ['text', 0, 42.5, false, [1, [2]], {}, 'line\nbreak "quoted" ✓']) {
      const k = key();
      await cache.setIfNewer(k, { version: 3, value }, 60);
      expect(await cache.get(k)).toEqual({ version: 3, value });
    }
  });

  it.skipIf(!make)('refuses an older or equal version and accepts a newer one', async () => {
    const k = key();
    expect(await cache.setIfNewer(k, { version: 5, value: 'v5' }, 60)).toBe(true);
    expect(await cache.setIfNewer(k, { version: 4, value: 'v4' }, 60)).toBe(false);
    expect(await cache.setIfNewer(k, { version: 5, value: 'other v5' }, 60)).toBe(false);
    expect(await cache.get(k)).toEqual({ version: 5, value: 'v5' });
    expect(await cache.setIfNewer(k, { version: 6, value: 'v6' }, 60)).toBe(true);
    expect(await cache.get(k)).toEqual({ version: 6, value: 'v6' });
  });

  it.skipIf(!make)('a tombstone blocks a stale fill: a deleted resource never reappears', async () => {
    const k = key();
    await cache.setIfNewer(k, { version: 6, value: { id: 'p1' } }, 60);
    expect(await cache.setIfNewer(k, { version: 7, value: null }, 60)).toBe(true);
    // A reader that loaded version 6 before the delete committed now tries to fill the cache.
    expect(await cache.setIfNewer(k, { version: 6, value: { id: 'p1' } }, 60)).toBe(false);
    expect(await cache.get(k)).toEqual({ version: 7, value: null });
  });

  it.skipIf(!make)('expires entries after their TTL', async () => {
    const k = key();
    expect(await cache.setIfNewer(k, { version: 9, value: 'short-lived' }, 0.3)).toBe(true);
    expect(await cache.get(k)).toEqual({ version: 9, value: 'short-lived' });
    await sleep(450);
    expect(await cache.get(k)).toBeUndefined();
    // Gone means gone: the version guard only lives as long as the entry.
    expect(await cache.setIfNewer(k, { version: 1, value: 'refill' }, 60)).toBe(true);
  });

  it.skipIf(!make)('50 concurrent writers with shuffled versions always leave the newest', async () => {
    for (let round = 0; round < 5; round++) {
      const k = key();
      const versions = Array.from({ length: 50 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
      const stored = await Promise.all(versions.map((v) => cache.setIfNewer(k, { version: v, value: { v } }, 60)));
      expect(stored[versions.indexOf(50)]).toBe(true);
      expect(await cache.get(k)).toEqual({ version: 50, value: { v: 50 } });
    }
  });

  it.skipIf(!make)('delete removes an entry and tolerates a missing one', async () => {
    const k = key();
    await cache.setIfNewer(k, { version: 2, value: 'x' }, 60);
    await cache.delete(k);
    expect(await cache.get(k)).toBeUndefined();
    await expect(cache.delete(key())).resolves.toBe(true);
    // After a heal (delete) the next fill is accepted whatever its version.
    expect(await cache.setIfNewer(k, { version: 1, value: 'y' }, 60)).toBe(true);
  });

  it.skipIf(!make)('counts hits and misses', async () => {
    const before = cache.stats();
    const k = key();
    await cache.get(k);
    await cache.setIfNewer(k, { version: 1, value: 1 }, 60);
    await cache.get(k);
    await cache.get(k);
    expect(cache.stats()).toEqual({ hits: before.hits + 2, misses: before.misses + 1, errors: before.errors });
  });

  it.skipIf(!make)('refuses invalid entries without throwing, counting them as errors', async () => {
    const before = cache.stats().errors;
    const k = key();
    const bad: [CacheEntry<unknown>, number][] = [
      [{ version: 1.5, value: 'x' }, 60],
      [{ version: -1, value: 'x' }, 60],
      [{ version: 1, value: 'x' }, 0],
      [{ version: 1, value: undefined }, 60],
      [{ version: 1, value: { n: 1n } }, 60],
    ];
    for (const [entry, ttl] of bad) expect(await cache.setIfNewer(k, entry, ttl)).toBe(false);
    expect(cache.stats().errors).toBe(before + bad.length);
    expect(await cache.get(k)).toBeUndefined();
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await p;
  return [v, performance.now() - t];
}

describe('redis adapter during an outage', () => {
  it('fails fast, counts, logs and never throws when nothing listens', async () => {
    const { log, lines } = capture();
    const cache = redisCache({ url: `redis://127.0.0.1:${await freePort()}`, log, logIntervalMs: 0 });
    // Right after creation (still connecting) and later (reconnecting between attempts).
    for (const wait of [0, 300]) {
      await sleep(wait);
      const [got, getMs] = await timed(cache.get('tenant-a:patient:1'));
      expect(got).toBeUndefined();
      expect(getMs).toBeLessThan(200);
      const [stored, setMs] = await timed(cache.setIfNewer('tenant-a:patient:1', { version: 1, value: { secret: 'PHI-VALUE' } }, 60));
      expect(stored).toBe(false);
      expect(setMs).toBeLessThan(200);
      await expect(cache.delete('tenant-a:patient:1')).resolves.toBe(false);
    }
    expect(cache.stats()).toEqual({ hits: 0, misses: 0, errors: 6 });
    const [, pingMs] = await timed(expect(cache.ping(200)).rejects.toThrow(/not ready/));
    expect(pingMs).toBeLessThan(1000);

    const failures = lines().filter((l) => l.msg === 'cache operation failed');
    expect(failures.filter((l) => l.op !== 'connection').map((l) => [l.op, l.reason])).toEqual(
      Array(2).fill([['get', 'not connected'], ['setIfNewer', 'not connected'], ['delete', 'not connected']]).flat(),
    );
    expect(failures.some((l) => l.op === 'connection' && l.reason === 'connection error ECONNREFUSED')).toBe(true);
    expect(failures.every((l) => l.level === 'warn' && l.cache === 'redis')).toBe(true);
    const text = JSON.stringify(lines());
    expect(text).not.toContain('PHI-VALUE');
    expect(text).not.toContain('patient:1');
  });

  it('throttles failure logs but counts every failure', async () => {
    const { log, lines } = capture();
    const cache = redisCache({ url: `redis://127.0.0.1:${await freePort()}`, log, logIntervalMs: 60_000 });
    for (let i = 0; i < 20; i++) await cache.get(`k${i}`);
    expect(cache.stats().errors).toBe(20);
    expect(lines().filter((l) => l.op === 'get')).toHaveLength(1);
  });

  it('never becomes ready against a server that accepts but never answers: ops fail at once', async () => {
    const sockets: net.Socket[] = [];
    const hung = net.createServer((s) => void sockets.push(s)); // accepts, never answers
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    try {
      const cache = redisCache({ url: `redis://127.0.0.1:${(hung.address() as net.AddressInfo).port}`, commandTimeoutMs: 200 });
      await sleep(100);
      const [got, ms] = await timed(cache.get('k'));
      expect(got).toBeUndefined();
      expect(ms).toBeLessThan(500);
      expect(await cache.setIfNewer('k', { version: 1, value: 1 }, 60)).toBe(false);
      await expect(cache.ping(300)).rejects.toThrow();
      expect(cache.stats().errors).toBe(2);
      await cache.close();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => hung.close(r));
    }
  });

  it('operations after close neither throw nor count', async () => {
    const cache = redisCache({ url: `redis://127.0.0.1:${await freePort()}` });
    await cache.close();
    await cache.close();
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.setIfNewer('k', { version: 1, value: 1 }, 60)).toBe(false);
    await cache.delete('k');
    await expect(cache.ping(100)).rejects.toThrow(/closed/);
    expect(cache.stats()).toEqual({ hits: 0, misses: 0, errors: 0 });
  });
});

/** A TCP proxy in front of the real Redis, so a test can freeze it, cut it off and bring it back. */
async function startProxy(target: URL, port = 0) {
  const sockets = new Set<net.Socket>();
  let frozen = false;
  const held: [net.Socket, Buffer][] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', kill).on('close', kill);
    }
    client.on('data', (d) => upstream.write(d));
    // Frozen: Redis still receives and runs commands, but its replies are held back (a hung server).
    upstream.on('data', (d: Buffer) => void (frozen ? held.push([client, d]) : client.write(d)));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze(on: boolean) {
      frozen = on;
      if (!on) for (const [client, d] of held.splice(0)) client.write(d);
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe.skipIf(!redisUrl)('redis adapter against a real Redis', () => {
  it('stores a prefixed hash { v, d } with a TTL', async () => {
    const cache = redisCache({ url: redisUrl! });
    await cache.ping(5000);
    await cache.setIfNewer('tenant-a:patient:layout', { version: 12, value: { a: 1 } }, 30);
    const raw = new Redis(redisUrl!);
    try {
      expect(await raw.hgetall(`${runPrefix}tenant-a:patient:layout`)).toEqual({ v: '12', d: '{"a":1}' });
      const ttl = await raw.pttl(`${runPrefix}tenant-a:patient:layout`);
      expect(ttl).toBeGreaterThan(25_000);
      expect(ttl).toBeLessThanOrEqual(30_000);
      expect(await raw.exists('tenant-a:patient:layout')).toBe(0);

      // An entry this adapter could not have written is dropped and reported, not returned.
      await raw.hset(`${runPrefix}tenant-a:patient:corrupt`, 'v', 'abc', 'd', '{');
      expect(await cache.get('tenant-a:patient:corrupt')).toBeUndefined();
      expect(cache.stats().errors).toBe(1);
      expect(await raw.exists(`${runPrefix}tenant-a:patient:corrupt`)).toBe(0);
    } finally {
      await raw.quit();
    }
  });

  it('two processes racing with shuffled versions leave the newest', async () => {
    const [a, b] = [redisCache({ url: redisUrl! }), redisCache({ url: redisUrl! })];
    await Promise.all([a.ping(5000), b.ping(5000)]);
    const versions = Array.from({ length: 50 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    await Promise.all(versions.map((v, i) => (i % 2 ? a : b).setIfNewer('race', { version: v, value: v }, 60)));
    expect(await a.get('race')).toEqual({ version: 50, value: 50 });
  });

  it('bounds every command by the command timeout when a connected Redis stops answering', async () => {
    const proxy = await startProxy(new URL(redisUrl!));
    const via = new URL(redisUrl!);
    via.host = `127.0.0.1:${proxy.port}`;
    const { log, lines } = capture();
    const cache = redisCache({ url: via.toString(), log, commandTimeoutMs: 200, logIntervalMs: 0 });
    try {
      await cache.ping(5000);
      proxy.freeze(true);
      const [got, getMs] = await timed(cache.get('frozen'));
      expect(got).toBeUndefined();
      expect(getMs).toBeGreaterThanOrEqual(150);
      expect(getMs).toBeLessThan(600);
      const [stored, setMs] = await timed(cache.setIfNewer('frozen', { version: 1, value: 1 }, 60));
      expect(stored).toBe(false);
      expect(setMs).toBeLessThan(600);
      await expect(cache.ping(300)).rejects.toThrow(/timed out/);
      expect(cache.stats().errors).toBe(2);
      expect(lines().filter((l) => l.op === 'get' || l.op === 'setIfNewer').map((l) => l.reason)).toEqual(['command timed out', 'command timed out']);
      proxy.freeze(false);
      // The late replies still pair with their timed-out commands, so the next answers are right
      // (and the frozen set did run on the server: version 1 is there).
      expect(await cache.get('frozen')).toEqual({ version: 1, value: 1 });
      expect(await cache.setIfNewer('frozen', { version: 2, value: 2 }, 60)).toBe(true);
      expect(await cache.get('frozen')).toEqual({ version: 2, value: 2 });
    } finally {
      await cache.close();
      await proxy.stop();
    }
  });

  it('fails fast while Redis is unreachable and heals when it returns', async () => {
    const target = new URL(redisUrl!);
    let proxy = await startProxy(target);
    const via = new URL(redisUrl!);
    via.host = `127.0.0.1:${proxy.port}`;
    const { log, lines } = capture();
    const cache = redisCache({ url: via.toString(), log, commandTimeoutMs: 300, maxReconnectDelayMs: 100, logIntervalMs: 0 });
    await cache.ping(5000);
    expect(await cache.setIfNewer('heal', { version: 1, value: 'before' }, 60)).toBe(true);

    await proxy.stop();
    const [got, ms] = await timed(cache.get('heal'));
    expect(got).toBeUndefined();
    expect(ms).toBeLessThan(1000);
    expect(await cache.setIfNewer('heal', { version: 2, value: 'during' }, 60)).toBe(false);
    await expect(cache.ping(200)).rejects.toThrow();
    expect(cache.stats().errors).toBeGreaterThanOrEqual(2);

    proxy = await startProxy(target, proxy.port);
    try {
      await cache.ping(5000);
      expect(await cache.get('heal')).toEqual({ version: 1, value: 'before' });
      expect(await cache.setIfNewer('heal', { version: 2, value: 'after' }, 60)).toBe(true);
      expect(lines().some((l) => l.msg === 'cache connection restored')).toBe(true);
    } finally {
      await cache.close();
      await proxy.stop();
    }
  });
});

describe('memory adapter', () => {
  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = createMemoryCache({ maxEntries: 3 });
    for (const k of ['a', 'b', 'c']) await cache.setIfNewer(k, { version: 1, value: k }, 60);
    await cache.get('a'); // a is now more recent than b and c
    await cache.setIfNewer('d', { version: 1, value: 'd' }, 60);
    expect(await cache.get('b')).toBeUndefined();
    for (const k of ['a', 'c', 'd']) expect(await cache.get(k)).toEqual({ version: 1, value: k });
    await cache.setIfNewer('c', { version: 2, value: 'c2' }, 60); // a write is a use too
    await cache.setIfNewer('e', { version: 1, value: 'e' }, 60);
    expect(await cache.get('a')).toBeUndefined();
    expect((await Promise.all(['c', 'd', 'e'].map((k) => cache.get(k)))).every(Boolean)).toBe(true);
  });

  it('expires exactly at the TTL on its clock', async () => {
    let t = 1_000_000;
    const cache = createMemoryCache({ maxEntries: 10, now: () => t });
    await cache.setIfNewer('k', { version: 1, value: 'v' }, 10);
    t += 9_999;
    expect(await cache.get('k')).toEqual({ version: 1, value: 'v' });
    t += 1;
    expect(await cache.get('k')).toBeUndefined();
  });

  it('rejects a nonsensical bound and stops answering once closed', async () => {
    expect(() => createMemoryCache({ maxEntries: 0 })).toThrow(TypeError);
    const cache = createMemoryCache({ maxEntries: 10 });
    await cache.setIfNewer('k', { version: 1, value: 'v' }, 60);
    await cache.close();
    expect(await cache.get('k')).toBeUndefined();
    await expect(cache.ping(100)).rejects.toThrow(/closed/);
  });
});

describe('createCache', () => {
  it('picks Redis when a URL is configured and the in-process LRU otherwise', async () => {
    const { log } = capture();
    const memory = createCache({ log });
    const redis = createCache({ log, redisUrl: `redis://127.0.0.1:${await freePort()}` });
    expect([memory.kind, redis.kind]).toEqual(['memory', 'redis']);
    await Promise.all([memory.close(), redis.close()]);
  });
});
