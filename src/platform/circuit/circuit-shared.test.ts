// Two instances (registries) sharing circuit state: through one store object, and — when
// TEST_REDIS_URL is set — through a real Redis, each test under its own key scope. One instance's
// breaker opens → the other refuses without calling; a trial success anywhere closes it for all;
// forced-open holds everywhere. And Redis at a closed port: calls go on through the local breaker.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../log.js';
import { createMemoryCircuitStore, type CircuitStore } from './circuit-store.js';
import type { CircuitPolicy } from './circuit.js';
import { createRedisCircuitStore } from './redis-circuit-store.js';
import { CircuitStoreUnavailable, createCircuitRegistry, type CircuitRegistry } from './registry.js';
import { UpstreamStatusError, UpstreamUnavailable } from './upstream-errors.js';

const FAST: CircuitPolicy = { failureThreshold: 3, halfOpenAfterMs: 150, timeoutMs: 100, retries: 0, retryDelayMs: 1, retryMaxDelayMs: 5 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const actor = { sub: 'ops-admin', tenant: 't-ops' };
const redisUrl = inject('redisUrl');

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => {
      expect(e).toBeInstanceOf(UpstreamUnavailable);
      return e as UpstreamUnavailable;
    },
  );

type Pair = () => [CircuitStore, CircuitStore];
const pairs: [string, Pair][] = [
  [
    'one in-process store',
    () => {
      const s = createMemoryCircuitStore();
      return [s, { ...s, close: async () => {} }];
    },
  ],
  ...(redisUrl
    ? ([
        [
          'Redis',
          () => {
            const scope = `test-${randomBytes(6).toString('hex')}`;
            return [createRedisCircuitStore({ url: redisUrl, scope }), createRedisCircuitStore({ url: redisUrl, scope })];
          },
        ],
      ] as [string, Pair][])
    : []),
];

describe.each(pairs)('two instances sharing circuits through %s', (_label, makePair) => {
  const registries: CircuitRegistry[] = [];
  const twoInstances = () => {
    const [sa, sb] = makePair();
    const make = (store: CircuitStore) => createCircuitRegistry({ store, log: createLogger('silent'), defaults: FAST });
    const a = make(sa);
    const b = make(sb);
    registries.push(a, b);
    return [a, b] as const;
  };
  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });

  it('one opens the circuit → the other refuses too, without calling the upstream; a successful trial closes it for both', async () => {
    const [a, b] = twoInstances();
    const ca = a.define('ehr');
    const cb = b.define('ehr');
    let up = false;
    let callsB = 0;
    const callA = () => ca.execute(async () => (up ? 'a' : Promise.reject(new UpstreamStatusError(503))));
    const callB = () =>
      cb.execute(async () => {
        callsB++;
        if (!up) throw new UpstreamStatusError(503);
        return 'b';
      });
    for (let i = 0; i < 3; i++) await failure(callA());
    const refused = await failure(callB());
    expect(refused).toMatchObject({ reason: 'open', circuit: 'ehr' });
    expect(Number(refused.headers?.['Retry-After'])).toBeGreaterThanOrEqual(1);
    expect(callsB).toBe(0);
    expect((await b.views())[0]).toMatchObject({ state: 'open', lastFailure: 'answered HTTP 503', failures: { total: 0 }, rejections: 1 });
    // After the open period each instance lets one trial through; B's succeeds …
    await sleep(170);
    up = true;
    await expect(callB()).resolves.toBe('b');
    expect(callsB).toBe(1);
    // … and A, whose breaker opened before that success, closes on learning of it.
    expect((await a.views())[0]).toMatchObject({ state: 'closed' });
    await expect(callA()).resolves.toBe('a');
  });

  it('a failed trial on one instance opens the circuit again for the other', async () => {
    const [a, b] = twoInstances();
    const ca = a.define('calendar');
    const cb = b.define('calendar');
    const fail = (c: typeof ca) => c.execute(async () => Promise.reject(new UpstreamStatusError(500)));
    for (let i = 0; i < 3; i++) await failure(fail(ca));
    expect((await failure(fail(cb))).reason).toBe('open'); // B adopts A's open period
    await sleep(170);
    expect((await failure(fail(cb))).reason).toBe('failed'); // B's trial fails: open again, for a new period …
    expect((await failure(fail(ca))).reason).toBe('open'); // … which A adopts instead of trying too
    expect((await a.views())[0]).toMatchObject({ state: 'open', failures: { total: 3 } });
  });

  it('forced open on one instance is refused on the other until set back to auto', async () => {
    const [a, b] = twoInstances();
    a.define('alert-webhook');
    const cb = b.define('alert-webhook');
    let calls = 0;
    await a.setMode('alert-webhook', 'forced-open', actor);
    expect(await failure(cb.execute(async () => ++calls))).toMatchObject({ reason: 'forced-open' });
    expect(calls).toBe(0);
    expect((await b.views())[0]).toMatchObject({ state: 'forced-open', mode: 'forced-open', forcedBy: 'ops-admin' });
    await a.setMode('alert-webhook', 'auto', actor);
    await expect(cb.execute(async () => ++calls)).resolves.toBe(1);
    expect((await b.views())[0]).toMatchObject({ state: 'closed', mode: 'auto' });
  });
});

describe('Redis unreachable (a closed port)', () => {
  it('calls go through the local breaker, which still opens and fails fast; fallbacks are counted; forcing is refused', async () => {
    const lines: string[] = [];
    const r = createCircuitRegistry({
      store: createRedisCircuitStore({ url: 'redis://127.0.0.1:1', scope: 'nowhere' }),
      log: createLogger('info', { write: (l: string) => void lines.push(l) }),
      defaults: FAST,
    });
    try {
      const c = r.define('ehr');
      const t0 = performance.now();
      await expect(c.execute(async () => 'ok')).resolves.toBe('ok');
      for (let i = 0; i < 3; i++) await failure(c.execute(async () => Promise.reject(new UpstreamStatusError(503))));
      expect((await failure(c.execute(async () => 'never'))).reason).toBe('open');
      expect(performance.now() - t0).toBeLessThan(1000); // no call waited for Redis
      expect((await r.views())[0]).toMatchObject({ state: 'open', failures: { total: 3 } });
      expect(r.stats().fallbacks).toBeGreaterThanOrEqual(5);
      await expect(r.setMode('ehr', 'forced-open', actor)).rejects.toBeInstanceOf(CircuitStoreUnavailable);
      expect((await r.views())[0]!.mode).toBe('auto');
      // Logged, but throttled: one line for the burst.
      expect(lines.filter((l) => l.includes('shared state unavailable'))).toHaveLength(1);
    } finally {
      await r.close();
    }
  });
});
