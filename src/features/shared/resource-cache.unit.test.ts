// The healing rule of the resource cache, against a cache that can be switched off: a version
// that could neither be replaced nor removed while the cache was down is never served again.
import { describe, expect, it } from 'vitest';
import type { Cache } from '../../platform/cache/cache.js';
import { createMemoryCache } from '../../platform/cache/memory.js';
import { createResourceCache } from './resource-cache.js';

function flakyCache() {
  const inner = createMemoryCache({ maxEntries: 100 });
  const state = { down: false };
  const cache: Cache = {
    kind: 'memory',
    get: (k) => (state.down ? Promise.resolve(undefined) : inner.get(k)),
    setIfNewer: (k, e, ttl) => (state.down ? Promise.resolve(false) : inner.setIfNewer(k, e, ttl)),
    delete: (k) => (state.down ? Promise.resolve(false) : inner.delete(k)),
    stats: () => inner.stats(),
    ping: (ms) => inner.ping(ms),
    close: () => inner.close(),
  };
  return { cache, state };
}

describe('resource cache healing', () => {
  it('does not serve a version it failed to replace, and removes it once the cache is back', async () => {
    const { cache, state } = flakyCache();
    let clock = 0;
    const rc = createResourceCache(cache, 60, () => clock);
    await rc.put('t1', 'patients', { id: 'p1', version: 1, name: 'old' });
    expect(await rc.get('t1', 'patients', 'p1')).toEqual({ hit: true, value: { id: 'p1', version: 1, name: 'old' } });

    state.down = true; // version 2 commits while the cache is unreachable
    await rc.put('t1', 'patients', { id: 'p1', version: 2, name: 'new' });
    state.down = false; // back, still holding version 1

    expect(await rc.get('t1', 'patients', 'p1')).toEqual({ hit: false });
    expect(await cache.get('t:t1:patients:p1')).toBeUndefined(); // healed: the stale entry is gone
    await rc.put('t1', 'patients', { id: 'p1', version: 2, name: 'new' });
    clock += 5000;
    expect(await rc.get('t1', 'patients', 'p1')).toEqual({ hit: true, value: { id: 'p1', version: 2, name: 'new' } });
  });

  it('keeps bypassing a key while the cache stays down, retrying at most once a second', async () => {
    const { cache, state } = flakyCache();
    let clock = 0;
    const rc = createResourceCache(cache, 60, () => clock);
    await rc.put('t1', 'locations', { id: 'l1', version: 1 });
    state.down = true;
    await rc.tombstone('t1', 'locations', 'l1', 2);
    let deletes = 0;
    const del = cache.delete;
    cache.delete = (k) => (deletes++, del(k));
    state.down = false;
    state.down = true;
    for (let i = 0; i < 5; i++) expect(await rc.get('t1', 'locations', 'l1')).toEqual({ hit: false });
    expect(deletes).toBeLessThanOrEqual(1);
    state.down = false;
    clock += 1500;
    expect(await rc.get('t1', 'locations', 'l1')).toEqual({ hit: false }); // healed now, then a plain miss
    expect(await cache.get('t:t1:locations:l1')).toBeUndefined();
  });
});
